// The agent's loop: `once` (one pass, for tests and operators) and `run`
// (the Windows service, or the same loop in a console).
#pragma once

namespace pwsync::win {

int run_once();
int run_service();

}  // namespace pwsync::win
