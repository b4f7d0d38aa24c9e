#include "service.h"

#include <windows.h>

#include <cstdio>
#include <optional>

#include "log.h"
#include "retry.h"
#include "spool_pass.h"
#include "winutil.h"

namespace pwsync::win {
namespace {

constexpr int kExitSetAside = 1;
constexpr int kExitUnreachable = 3;
constexpr DWORD kRescanMs = 60000;  // a missed signal costs at most this

std::optional<GatewayClient> make_client(AgentConfig& cfg_out) {
    auto text = read_file(base_dir() + L"\\agent.conf");
    if (!text) {
        log(Level::error, "not installed? " + text.error());
        return std::nullopt;
    }
    auto cfg = parse_agent_config(std::string(text->begin(), text->end()));
    if (!cfg) {
        log(Level::error, narrow(base_dir()) + "\\agent.conf: " + cfg.error());
        return std::nullopt;
    }
    auto sealed = read_file(base_dir() + L"\\secret.bin");
    if (!sealed) {
        log(Level::error, "the principal's secret: " + sealed.error());
        return std::nullopt;
    }
    DpapiSealer sealer;
    auto secret = sealer.unseal(*sealed);
    if (!secret) {
        log(Level::error, "the principal's secret: " + secret.error());
        return std::nullopt;
    }
    const std::uint8_t nul = 0;
    secret->append(&nul, 1);  // wldap32 takes it as a C string
    std::optional<PinnedCa> ca;
    if (cfg->pinned) {
        auto c = PinnedCa::load(widen(cfg->ca));
        if (!c) {
            log(Level::error, c.error());
            return std::nullopt;
        }
        ca.emplace(std::move(*c));
    }
    cfg_out = *cfg;
    return std::optional<GatewayClient>(std::in_place, std::move(*cfg), std::move(*secret), std::move(ca));
}

HANDLE g_stop = nullptr;
SERVICE_STATUS_HANDLE g_status = nullptr;

void set_status(DWORD state) {
    if (g_status == nullptr) return;
    SERVICE_STATUS st{};
    st.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    st.dwCurrentState = state;
    st.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    st.dwWaitHint = 10000;
    SetServiceStatus(g_status, &st);
}

int loop() {
    AgentConfig cfg;
    auto client = make_client(cfg);
    if (!client) return 1;
    Handle spool_event(CreateEventW(nullptr, FALSE, FALSE, kSpoolEvent));
    if (!spool_event) log(Level::warning, "cannot create the spool event; rescanning every minute");
    DpapiSealer sealer;
    RetryState retry(Backoff(1000, 5 * 60 * 1000));
    log(Level::info, "started");
    for (;;) {
        const std::uint64_t now = GetTickCount64();
        if (retry.due(now)) {
            const PassResult r = spool_pass(*client, sealer, cfg);
            if (r.unreachable) {
                retry.failed(now);
                log(Level::warning, std::to_string(r.left) + " change(s) wait for the gateway; next try in " +
                                        std::to_string(retry.wait_ms(now) / 1000) + " s");
            } else {
                retry.succeeded();
            }
        }
        const std::uint64_t wait = retry.due(GetTickCount64()) ? kRescanMs : retry.wait_ms(GetTickCount64());
        HANDLE handles[2] = {g_stop, spool_event.get()};
        const DWORD w = WaitForMultipleObjects(spool_event ? 2 : 1, handles, FALSE, static_cast<DWORD>(wait));
        if (w == WAIT_OBJECT_0) break;
    }
    log(Level::info, "stopped");
    return 0;
}

DWORD WINAPI control(DWORD code, DWORD, void*, void*) {
    if (code == SERVICE_CONTROL_STOP || code == SERVICE_CONTROL_SHUTDOWN) {
        set_status(SERVICE_STOP_PENDING);
        SetEvent(g_stop);
    }
    return NO_ERROR;
}

void WINAPI service_main(DWORD, LPWSTR*) {
    g_status = RegisterServiceCtrlHandlerExW(L"pwsync-agent", control, nullptr);
    set_status(SERVICE_RUNNING);
    loop();
    set_status(SERVICE_STOPPED);
}

BOOL WINAPI on_ctrl_c(DWORD) {
    SetEvent(g_stop);
    return TRUE;
}

}  // namespace

int run_once() {
    AgentConfig cfg;
    auto client = make_client(cfg);
    if (!client) return 1;
    DpapiSealer sealer;
    const PassResult r = spool_pass(*client, sealer, cfg);
    std::fprintf(stderr, "pwsync-agent: %zu sent, %zu set aside, %zu left in the spool\n", r.sent, r.set_aside, r.left);
    if (r.unreachable) return kExitUnreachable;
    return r.set_aside > 0 ? kExitSetAside : 0;
}

int run_service() {
    g_stop = CreateEventW(nullptr, TRUE, FALSE, nullptr);
    SERVICE_TABLE_ENTRYW table[] = {{const_cast<wchar_t*>(L"pwsync-agent"), service_main}, {nullptr, nullptr}};
    if (StartServiceCtrlDispatcherW(table)) return 0;
    if (GetLastError() != ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
        log(Level::error, "service dispatcher: " + last_error_text(GetLastError()));
        return 1;
    }
    // Started from a console: the same loop until Ctrl+C.
    log_to_console(true);
    SetConsoleCtrlHandler(on_ctrl_c, TRUE);
    return loop();
}

}  // namespace pwsync::win
