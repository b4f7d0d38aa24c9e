// pwsync-agent status: whether capture can work on this DC, and what stops
// it when it cannot (issue 18: the field's most common silent failure is a
// DC where the package was never loaded).
#pragma once

namespace pwsync::win {

// Prints one line per fact and a verdict; 0 when capture works, 1 when
// something stops it or keeps changes from being sent (each said).
int status();

}  // namespace pwsync::win
