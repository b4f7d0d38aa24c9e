// pwsync-agent.exe: sends the password changes pwsyncflt.dll spooled on this
// domain controller to the pwsync gateway.
//   pwsync-agent install --gateway ldaps://HOST[:PORT] [--gateway ...] --principal NAME --ca FILE
//                        [--max-age SECONDS] [--timeout SECONDS] [--tls-check pinned|system]
//                        (the principal's secret on stdin)
//   pwsync-agent uninstall
//   pwsync-agent status   can capture work here: package listed and loaded by
//                         lsass this boot, LSA protection off, service running;
//                         when it last spooled a change. 0 working, 1 not (why)
//   pwsync-agent run      the service (or, from a console, the same loop until Ctrl+C)
//   pwsync-agent once     one pass over the spool, then exit: 0 all sent, 1 some set
//                         aside, 3 gateway unreachable (entries kept), 2 usage
//   pwsync-agent check-cert --ca FILE CERT   the pinned-CA check on a certificate file
#include <windows.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cert_check.h"
#include "install.h"
#include "log.h"
#include "service.h"
#include "spool_pass.h"
#include "status.h"
#include "winutil.h"

using namespace pwsync::win;

namespace {

constexpr int kUsage = 2;

int usage(const std::string& why) {
    std::fprintf(stderr, "pwsync-agent: %s (see pwsync-agent --help)\n", why.c_str());
    return kUsage;
}

void help() {
    std::puts(
        "usage: pwsync-agent install --gateway ldaps://HOST[:PORT] [--gateway URI]... --principal NAME --ca FILE\n"
        "                            [--max-age SECONDS] [--timeout SECONDS] [--tls-check pinned|system]\n"
        "                            (the principal's secret is read from stdin)\n"
        "       pwsync-agent uninstall\n"
        "       pwsync-agent status\n"
        "       pwsync-agent run\n"
        "       pwsync-agent once\n"
        "       pwsync-agent check-cert --ca FILE CERTFILE");
}

// The whole of stdin, without a trailing newline.
SecretBytes read_stdin_secret() {
    SecretBytes s;
    HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
    std::uint8_t buf[256];
    DWORD n = 0;
    while (ReadFile(in, buf, sizeof buf, &n, nullptr) && n > 0) s.append(buf, n);
    wipe(buf, sizeof buf);
    auto& b = s.bytes();
    while (!b.empty() && (b.back() == '\n' || b.back() == '\r')) b.pop_back();
    return s;
}

int cmd_install(const std::vector<std::string>& args) {
    AgentConfig cfg;
    std::string ca;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (i + 1 >= args.size()) return usage(a + " needs a value");
        const std::string& v = args[++i];
        if (a == "--gateway") {
            if (auto u = parse_gateway_uri(v); !u) return usage(u.error());
            cfg.gateways.push_back(v);
        } else if (a == "--principal") {
            cfg.principal = v;
        } else if (a == "--ca") {
            ca = v;
        } else if (a == "--max-age" || a == "--timeout") {
            char* end = nullptr;
            const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0') return usage(a + " must be a number of seconds");
            if (a == "--max-age") cfg.max_age = n;
            else if (n == 0 || n > 600) return usage("--timeout must be 1 to 600 seconds");
            else cfg.timeout = static_cast<unsigned>(n);
        } else if (a == "--tls-check") {
            if (v != "pinned" && v != "system") return usage("--tls-check must be pinned or system");
            cfg.pinned = v == "pinned";
        } else {
            return usage("unknown option " + a);
        }
    }
    if (cfg.gateways.empty() || cfg.principal.empty() || ca.empty())
        return usage("install needs --gateway, --principal and --ca");
    if (auto c = PinnedCa::load(widen(ca)); !c) return usage(c.error());
    SecretBytes secret = read_stdin_secret();
    if (secret.size() == 0) return usage("no secret on stdin");
    return install(cfg, secret, widen(ca));
}

int cmd_check_cert(const std::vector<std::string>& args) {
    if (args.size() != 4 || args[1] != "--ca") return usage("check-cert --ca FILE CERTFILE");
    auto ca = PinnedCa::load(widen(args[2]));
    if (!ca) return usage(ca.error());
    auto cert = load_pem_certificate(widen(args[3]));
    if (!cert) return usage(cert.error());
    const std::string why = ca->check(*cert);
    CertFreeCertificateContext(*cert);
    std::printf("%s\n", why.empty() ? "ok: issued by the configured CA" : ("refused: " + why).c_str());
    return why.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return usage("no command");
    const std::string& cmd = args[0];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        help();
        return 0;
    }
    log_to_console(cmd != "run");
    if (cmd == "install") return cmd_install(args);
    if (cmd == "check-cert") return cmd_check_cert(args);
    if (args.size() != 1) return usage("unexpected argument " + args[1]);
    if (cmd == "uninstall") return uninstall();
    if (cmd == "status") return status();
    if (cmd == "once") return run_once();
    if (cmd == "run") return run_service();
    return usage("unknown command " + cmd);
}
