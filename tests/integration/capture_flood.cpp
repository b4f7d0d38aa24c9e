// capture_flood: sends password changes to a gateway the way a capture hook
// does, but many on one connection: RFC 3062 Password Modify as a principal,
// each change retried (on a new connection) until the gateway answers it, so
// a gateway killed mid-change loses nothing the client was not told about.
//
//   capture_flood URIS PRINCIPAL SECRET_FILE CA_FILE WORKERS DEADLINE_S [RATE] < changes
//
// URIS: one gateway URI or several, space-separated, tried in order on each
// new connection, as the hook's failover list. RATE: at most that many
// changes a second in all (default: as fast as the gateway answers), so that
// changes keep flowing for a while.
// stdin: one change a line, "account<TAB>password". Changes of one account
// keep their order: each worker owns the accounts hashed to it. Prints
// "sent N retries R" and exits 0 when every change was answered with success,
// 1 when one was refused (its reason on stderr), 2 on a usage error or when
// the deadline passes.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pwsync/directory.h"

using namespace pwsync;
using Steady = std::chrono::steady_clock;

namespace {

struct Change {
    std::string account;
    Secret password;
};

struct Shared {
    std::vector<std::string> uris;
    std::string principal, ca;
    Secret secret;
    Steady::time_point deadline, start;
    double rate = 0;
    std::atomic<long> issued{0};
    std::atomic<long> sent{0}, retries{0};
    std::atomic<bool> failed{false}, late{false};
    std::mutex err;
};

std::optional<directory::Connection> connect(Shared& s) {
    directory::ConnectOptions o;
    o.uris = s.uris;
    o.ca_file = s.ca;
    o.connect_timeout = std::chrono::seconds(3);
    o.op_timeout = std::chrono::seconds(10);
    o.credentials.method = directory::BindMethod::simple;
    o.credentials.name = s.principal;
    o.credentials.password = s.secret.clone();
    auto c = directory::Connection::open(std::move(o));
    if (!c) return std::nullopt;
    return std::move(*c);
}

void worker(Shared& s, std::vector<Change>& changes) {
    std::optional<directory::Connection> conn;
    for (auto& ch : changes) {
        if (s.rate > 0) {
            const std::chrono::duration<double> at(static_cast<double>(s.issued++) / s.rate);
            std::this_thread::sleep_until(s.start + std::chrono::duration_cast<Steady::duration>(at));
        }
        for (;;) {
            if (s.failed) return;
            if (Steady::now() > s.deadline) {
                s.late = true;
                return;
            }
            if (!conn) conn = connect(s);
            if (!conn) {
                ++s.retries;
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            auto r = directory::password_modify(*conn, ch.account, nullptr, &ch.password);
            if (r) break;
            if (r.error().retryable() || r.error().ldap_code < 0) {
                // No answer: the gateway may or may not have stored it; send it again.
                conn.reset();
                ++s.retries;
                continue;
            }
            std::lock_guard lock(s.err);
            std::cerr << "capture_flood: " << ch.account << " refused: " << r.error().message << "\n";
            s.failed = true;
            return;
        }
        ++s.sent;
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7 && argc != 8) {
        std::cerr << "usage: capture_flood URIS PRINCIPAL SECRET_FILE CA_FILE WORKERS DEADLINE_S [RATE] < changes\n";
        return 2;
    }
    Shared s;
    std::istringstream uris(argv[1]);
    for (std::string u; uris >> u;) s.uris.push_back(u);
    s.principal = argv[2];
    auto secret = directory::read_secret_file(argv[3]);
    if (!secret) {
        std::cerr << "capture_flood: " << secret.error().message << "\n";
        return 2;
    }
    s.secret = std::move(*secret);
    s.ca = argv[4];
    const unsigned workers = static_cast<unsigned>(std::max(1, std::atoi(argv[5])));
    s.deadline = Steady::now() + std::chrono::seconds(std::atoi(argv[6]));
    if (argc == 8) s.rate = std::atof(argv[7]);
    std::vector<std::vector<Change>> queues(workers);
    std::string line;
    while (std::getline(std::cin, line)) {
        const auto tab = line.find('\t');
        if (tab == std::string::npos) continue;
        Change c{line.substr(0, tab), Secret(std::string_view(line).substr(tab + 1))};
        queues[std::hash<std::string>{}(c.account) % workers].push_back(std::move(c));
        wipe(line.data(), line.size());
    }
    std::vector<std::thread> threads;
    s.start = Steady::now();
    for (auto& q : queues) threads.emplace_back(worker, std::ref(s), std::ref(q));
    for (auto& t : threads) t.join();
    std::cout << "sent " << s.sent << " retries " << s.retries << "\n";
    if (s.failed) return 1;
    if (s.late) {
        std::cerr << "capture_flood: deadline passed with changes unanswered\n";
        return 2;
    }
    return 0;
}
