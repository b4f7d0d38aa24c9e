// The agent's log: %ProgramData%\pwsync\agent.log, stderr when run from a
// console, and the event log for warnings and errors. Never a password.
#pragma once

#include <string>

namespace pwsync::win {

enum class Level { info, warning, error };

void log_to_console(bool on);
void log(Level level, const std::string& text);

}  // namespace pwsync::win
