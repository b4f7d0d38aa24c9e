// pwsync-agent install / uninstall: the service, the LSA notification
// package, the event source, and the agent's sealed configuration.
#pragma once

#include "agent_config.h"
#include "bytes.h"

namespace pwsync::win {

// 0 on success; errors are printed as one line.
int install(AgentConfig cfg, const SecretBytes& secret, const std::wstring& ca_file);
int uninstall();

}  // namespace pwsync::win
