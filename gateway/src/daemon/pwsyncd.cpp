// pwsyncd: the password synchronization gateway daemon.
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <boost/program_options.hpp>
#include <condition_variable>
#include <iostream>
#include <thread>

#include "config.h"
#include "daemon.h"
#include "health.h"
#include "log.h"
#include "sd_notify.h"

namespace po = boost::program_options;
using namespace pwsync;
using namespace pwsync::gateway;

#ifdef PWSYNC_SANITIZE
// Every freed block overwritten, as wiping_free.cpp does without the sanitizer.
extern "C" const char* __asan_default_options() { return "max_free_fill_size=2147483647:free_fill_byte=165"; }
#endif

int main(int argc, char** argv) {
    harden_process();  // freed memory is wiped by our own free(): wiping_free.cpp
    ::umask(077);
    // One descriptor per connection (max-connections 1024 by default) plus
    // the store, the log and outgoing connections: the soft limit is often 1024.
    if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    // A fixed threshold keeps glibc from raising it after the first free of
    // a big block: scrypt's 16 MiB buffers (principal binds) then always go
    // back to the system instead of staying resident in per-thread arenas.
    ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
    std::string config_path = "/etc/pwsync/pwsyncd.conf";
    bool check_only = false, health_check = false;
    try {
        po::options_description d("pwsyncd [--config FILE] [--check-config | --health-check]\nOptions");
        d.add_options()("config", po::value<std::string>(&config_path)->value_name("FILE"),
                        "configuration file (default /etc/pwsync/pwsyncd.conf)")
                       ("check-config", "read the configuration and open the store, then exit")
                       ("health-check", "exit 0 if the running gateway's first listen URI answers an LDAP WhoAmI")
                       ("version", "print the version")("help,h", "show this help");
        po::variables_map vm;
        po::store(po::parse_command_line(argc, argv, d), vm);
        po::notify(vm);
        if (vm.count("help")) { std::cout << d << "\n"; return 0; }
        if (vm.count("version")) { std::cout << "pwsyncd " PWSYNC_VERSION "\n"; return 0; }
        check_only = vm.count("check-config") > 0;
        health_check = vm.count("health-check") > 0;
    } catch (const po::error& e) {
        std::cerr << "pwsyncd: error: " << e.what() << " (see pwsyncd --help)\n";
        return 2;
    }

    // Signals are taken by sigwait below, in this thread only.
    sigset_t signals;
    sigemptyset(&signals);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    auto config = load_config(config_path);
    if (!config) {
        std::cerr << "pwsyncd: error: " << config.error().message << "\n";
        return 1;
    }
    if (health_check) {  // a probe of the running daemon: it opens neither the log nor the store
        auto answer = probe_listener(*config, 5);
        if (!answer) {
            std::cerr << "pwsyncd: unhealthy: " << answer.error().message << "\n";
            return 1;
        }
        std::cout << *answer << "\n";
        return 0;
    }
    if (!Log::instance().open(config->log_file, config->log_level)) {
        std::cerr << "pwsyncd: error: cannot open log file " << config->log_file << "\n";
        return 1;
    }
    auto daemon = Daemon::start(*config, check_only);
    if (!daemon) {
        std::cerr << "pwsyncd: error: " << daemon.error().message << "\n";
        return 1;
    }
    if (check_only) {
        std::cout << "configuration OK\n";
        return 0;
    }
    log_info("started (pwsyncd " PWSYNC_VERSION ")");
    // The listener is bound and the store open: systemd may order what
    // depends on us now (Type=notify). The variable is not passed on to
    // adapter programs (they get a fixed environment).
    sd_notify("READY=1\nSTATUS=serving");
    while (true) {
        int sig = 0;
        if (sigwait(&signals, &sig) != 0) continue;
        if (sig == SIGHUP) {
            Log::instance().reopen();
            log_info("SIGHUP: log reopened");
            continue;
        }
        log_info(std::string("signal ") + (sig == SIGTERM ? "TERM" : "INT") + ": finishing work in flight");
        break;
    }
    sd_notify("STOPPING=1");
    (*daemon)->stop();
    log_info("stopped");
    return 0;
}
