// pwsync-bench: the load generator of bench/run. One subcommand per
// measurement; each prints one JSON object on stdout. Threads are the
// concurrency; every thread keeps one connection (no process per change).
//
//   pwmod    Password Modify (RFC 3062) to slapd or to the gateway
//   reset    admin unicodePwd resets to the AD DC
//   check    the DC answering pwsyncd's state check alone (read_account_by_guid)
//   latency  AD change committed -> new password binds on the external LDAP
//   hookcost an AD reset with the capture hook / without it, interleaved
//   core     engine + store + dispatcher in-process with the `null` adapter
//   load-mappings / lookup   bulk mappings through the store API, one lookup
//   dirsync  cost of one DirSync poll (after a full sync done beforehand)
//
// Passwords are made from --tag and the user's index; they never appear in
// the output.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include "dispatcher.h"
#include "engine.h"
#include "pwsync/directory.h"
#include "pwsync/adapter.h"
#include "registry.h"
#include "pwsync/store.h"

namespace pwsync::bench {
namespace {

using Steady = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

// --name value pairs; a flag without a value is not used here.
struct Args {
    std::map<std::string, std::string> v;
    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = v.find(k);
        return it == v.end() ? def : it->second;
    }
    std::string need(const std::string& k) const {
        auto it = v.find(k);
        if (it == v.end()) throw std::runtime_error("missing --" + k);
        return it->second;
    }
    long num(const std::string& k, long def) const {
        auto it = v.find(k);
        return it == v.end() ? def : std::stol(it->second);
    }
};

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);)
        if (!l.empty()) out.push_back(l);
    return out;
}

// A complex password, unique per run tag and user.
Secret password_for(const std::string& tag, std::size_t i) { return Secret("Bn-" + tag + "-" + std::to_string(i) + ".x9Q"); }

directory::ConnectOptions connect(const Args& a, const std::string& uri_key, const std::string& dn_key,
                                  const std::string& pw_key) {
    directory::ConnectOptions o;
    o.uris = {a.need(uri_key)};
    o.ca_file = a.get("ca");
    o.connect_timeout = std::chrono::seconds(10);
    o.op_timeout = std::chrono::seconds(60);
    if (!a.get(dn_key).empty()) {
        o.credentials.method = directory::BindMethod::simple;
        o.credentials.name = a.get(dn_key);
        auto pw = directory::read_secret_file(a.need(pw_key));
        if (!pw) throw std::runtime_error(pw.error().message);
        o.credentials.password = std::move(*pw);
    }
    return o;
}

std::string fill(std::string templ, const std::string& v) {
    if (auto at = templ.find("%s"); at != std::string::npos) templ.replace(at, 2, v);
    return templ;
}

struct Percentiles {
    double p50 = 0, p95 = 0, p99 = 0, max = 0;
};
Percentiles percentiles(std::vector<double> v) {
    Percentiles p;
    if (v.empty()) return p;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<std::size_t>(q * static_cast<double>(v.size())))]; };
    p.p50 = at(0.50), p.p95 = at(0.95), p.p99 = at(0.99), p.max = v.back();
    return p;
}

// Runs `op(conn, index)` over all users, `threads` at once, one connection
// each. Returns {ok, failed, seconds, first error}.
struct RunResult {
    std::size_t ok = 0, failed = 0;
    double seconds = 0;
    std::string error;
};
RunResult run_threads(const directory::ConnectOptions& opts, std::size_t users, std::size_t threads,
                      const std::function<std::string(directory::Connection&, std::size_t)>& op) {
    std::vector<std::optional<directory::Connection>> conns(threads);
    for (auto& c : conns) {
        auto o = directory::Connection::open(opts.clone());
        if (!o) throw std::runtime_error("connect " + opts.uris.front() + ": " + o.error().message);
        c.emplace(std::move(*o));
    }
    std::atomic<std::size_t> next{0}, ok{0}, failed{0};
    std::mutex err_mutex;
    std::string first_error;
    const auto t0 = Steady::now();
    std::vector<std::thread> ts;
    for (std::size_t t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (std::size_t i; (i = next++) < users;) {
                std::string e = op(*conns[t], i);
                if (e.empty()) ++ok;
                else {
                    ++failed;
                    std::lock_guard l(err_mutex);
                    if (first_error.empty()) first_error = e;
                }
            }
        });
    for (auto& t : ts) t.join();
    return {ok, failed, seconds_since(t0), first_error};
}

// Waits until every user binds on --verify-uri with its new password.
// Returns the seconds until the last one did (from t0), or -1 on timeout.
double verify_binds(const Args& a, const std::vector<std::string>& users, const std::string& tag, Steady::time_point t0,
                    std::size_t& verified) {
    directory::ConnectOptions o;
    o.uris = {a.need("verify-uri")};
    o.ca_file = a.get("ca");
    const std::string templ = a.need("verify-dn-template");
    const double limit = static_cast<double>(a.num("verify-timeout", 300));
    const std::size_t threads = 4;
    std::atomic<std::size_t> next{0}, good{0};
    std::atomic<bool> timed_out{false};
    std::vector<std::thread> ts;
    for (std::size_t t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            auto c = directory::Connection::open(o.clone());
            if (!c) { timed_out = true; return; }
            for (std::size_t i; (i = next++) < users.size();) {
                directory::Credentials cr;
                cr.method = directory::BindMethod::simple;
                cr.name = fill(templ, users[i]);
                while (true) {
                    cr.password = password_for(tag, i);
                    directory::Credentials copy{cr.method, cr.name, cr.password.clone(), {}, {}};
                    if (c->bind(std::move(copy))) { ++good; break; }
                    if (seconds_since(t0) > limit) { timed_out = true; return; }
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                }
            }
        });
    for (auto& t : ts) t.join();
    verified = good;
    return timed_out ? -1 : seconds_since(t0);
}

// This process's CPU time so far (user + system, every thread), in ms: the
// load generator's own share of the machine.
double own_cpu_ms() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    const auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3; };
    return ms(u.ru_utime) + ms(u.ru_stime);
}

json result_json(const std::string& what, std::size_t threads, const RunResult& r) {
    json j{{"what", what}, {"threads", threads}, {"ok", r.ok}, {"failed", r.failed}, {"seconds", r.seconds},
           {"per_second", r.seconds > 0 ? static_cast<double>(r.ok) / r.seconds : 0}, {"bench_cpu_ms", own_cpu_ms()}};
    if (!r.error.empty()) j["first_error"] = r.error;
    return j;
}

// pwmod --uri U --ca CA --bind-dn D --bind-pw-file F --users FILE --threads N --tag T
//       [--identity-template T] [--verify-uri U --verify-dn-template T]
int cmd_pwmod(const Args& a) {
    const auto users = read_lines(a.need("users"));
    const auto threads = static_cast<std::size_t>(a.num("threads", 1));
    const std::string tag = a.need("tag"), templ = a.get("identity-template", "%s");
    const auto t0 = Steady::now();
    auto r = run_threads(connect(a, "uri", "bind-dn", "bind-pw-file"), users.size(), threads,
                         [&](directory::Connection& c, std::size_t i) -> std::string {
                             Secret pw = password_for(tag, i);
                             auto st = directory::password_modify(c, fill(templ, users[i]), nullptr, &pw);
                             return st ? "" : st.error().message;
                         });
    json j = result_json(a.get("what", "pwmod"), threads, r);
    if (!a.get("verify-uri").empty()) {
        std::size_t verified = 0;
        const double until = verify_binds(a, users, tag, t0, verified);
        j["verified"] = verified;
        j["seconds_until_all_arrived"] = until;
        j["arrived_per_second"] = until > 0 ? static_cast<double>(verified) / until : 0;
        j["bench_cpu_ms"] = own_cpu_ms();  // the verifying binds included
    }
    std::cout << j.dump() << std::endl;
    return r.failed == 0 ? 0 : 1;
}

// reset --uri U --ca CA --bind-dn D --bind-pw-file F --users FILE(dns) --threads N --tag T
int cmd_reset(const Args& a) {
    const auto users = read_lines(a.need("users"));
    const auto threads = static_cast<std::size_t>(a.num("threads", 1));
    const std::string tag = a.need("tag");
    auto r = run_threads(connect(a, "uri", "bind-dn", "bind-pw-file"), users.size(), threads,
                         [&](directory::Connection& c, std::size_t i) -> std::string {
                             auto st = directory::reset_password(c, users[i], password_for(tag, i));
                             return st ? "" : st.error().message;
                         });
    std::cout << result_json(a.get("what", "reset"), threads, r).dump() << std::endl;
    return r.failed == 0 ? 0 : 1;
}

// check --uri DC --ca CA --bind-dn D --bind-pw-file F --users FILE(dns) --threads N
// What a capture asks the DC before it is stored (Ad::state with the
// account's GUID known): one base search of <GUID=...> with tokenGroups.
// The GUIDs are read first, untimed.
int cmd_check(const Args& a) {
    const auto users = read_lines(a.need("users"));
    const auto threads = static_cast<std::size_t>(a.num("threads", 1));
    const auto opts = connect(a, "uri", "bind-dn", "bind-pw-file");
    std::vector<std::string> guids;
    {
        auto c = directory::Connection::open(opts.clone());
        if (!c) throw std::runtime_error("connect " + opts.uris.front() + ": " + c.error().message);
        for (const auto& dn : users) {
            directory::Search s;
            s.base = dn;
            s.scope = directory::Scope::base;
            s.attributes = {"objectGUID"};
            auto found = c->search(s);
            if (!found || found->empty()) throw std::runtime_error("read the objectGUID of " + dn);
            guids.push_back(directory::format_guid(found->front().first("objectGUID")));
        }
    }
    auto r = run_threads(opts, guids.size(), threads, [&](directory::Connection& c, std::size_t i) -> std::string {
        auto st = directory::read_account_by_guid(c, guids[i]);
        if (!st) return st.error().message;
        return st->first.dn.empty() ? "no account read" : "";
    });
    std::cout << result_json(a.get("what", "check"), threads, r).dump() << std::endl;
    return r.failed == 0 ? 0 : 1;
}

// latency --uri DC --ca CA --bind-dn ADMIN --bind-pw-file F --users FILE(sam) --dn-template
//         'CN=%s,CN=Users,…' --verify-uri SLAPD --verify-dn-template 'uid=%s,…' --count N --tag T
// One change at a time: an admin reset committed in AD (the DC runs its
// capture hook before answering), then binds on the external LDAP every 5 ms
// until the new password works.
int cmd_latency(const Args& a) {
    const auto users = read_lines(a.need("users"));
    const auto count = static_cast<std::size_t>(a.num("count", 200));
    const std::string tag = a.need("tag"), dn_templ = a.need("dn-template"), vtempl = a.need("verify-dn-template");
    auto dc = directory::Connection::open(connect(a, "uri", "bind-dn", "bind-pw-file"));
    if (!dc) throw std::runtime_error("DC: " + dc.error().message);
    directory::ConnectOptions vo;
    vo.uris = {a.need("verify-uri")};
    vo.ca_file = a.get("ca");
    auto ext = directory::Connection::open(vo.clone());
    if (!ext) throw std::runtime_error("external: " + ext.error().message);
    std::vector<double> ms;
    std::vector<double> write_ms;
    std::size_t lost = 0;
    const double limit = static_cast<double>(a.num("timeout", 30));
    for (std::size_t n = 0; n < count; ++n) {
        const std::size_t i = n % users.size();
        Secret pw = password_for(tag + "L" + std::to_string(n), i);
        const auto w0 = Steady::now();
        auto st = directory::reset_password(*dc, fill(dn_templ, users[i]), pw);
        if (!st) throw std::runtime_error("AD reset of " + users[i] + ": " + st.error().message);
        const auto t0 = Steady::now();
        write_ms.push_back(std::chrono::duration<double, std::milli>(t0 - w0).count());
        while (true) {
            directory::Credentials cr{directory::BindMethod::simple, fill(vtempl, users[i]), pw.clone(), {}, {}};
            if (ext->bind(std::move(cr))) {
                ms.push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
                break;
            }
            if (seconds_since(t0) > limit) { ++lost; break; }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    const auto p = percentiles(ms);
    const auto w = percentiles(write_ms);
    std::cout << json{{"what", a.get("what", "latency")}, {"changes", count}, {"arrived", ms.size()}, {"lost", lost},
                      {"p50_ms", p.p50}, {"p95_ms", p.p95}, {"p99_ms", p.p99}, {"max_ms", p.max},
                      {"ad_write_p50_ms", w.p50}, {"ad_write_p99_ms", w.p99}}
                     .dump()
              << std::endl;
    return lost == 0 ? 0 : 1;
}

// hookcost --uri DC --ca CA --bind-dn ADMIN --bind-pw-file F --users FILE(sam) --dn-template
//          'CN=%s,CN=Users,…' --hook-link PATH --hook-target PATH [--bare-target PATH] --count N --tag T
// What the capture hook costs inside every AD password change: admin resets
// on one connection, alternately with the hook in place (PATH -> target)
// and without it, so load drifts hit both alike. Without it PATH points to
// --bare-target (bench/run: PATH is the DC's check password script itself,
// swapped between the hook and /bin/true), or is absent (the test DC's
// dispatcher then exits 0).
int cmd_hookcost(const Args& a) {
    const auto users = read_lines(a.need("users"));
    const auto count = static_cast<std::size_t>(a.num("count", 100));
    const std::string tag = a.need("tag"), link = a.need("hook-link"), target = a.need("hook-target"),
                      bare = a.get("bare-target", ""), dn_templ = a.need("dn-template");
    auto dc = directory::Connection::open(connect(a, "uri", "bind-dn", "bind-pw-file"));
    if (!dc) throw std::runtime_error("DC: " + dc.error().message);
    std::vector<double> with_hook, without;
    for (std::size_t n = 0; n < 2 * count; ++n) {
        const bool hook = n % 2 == 0;
        std::error_code ec;
        std::filesystem::remove(link, ec);
        if (hook || !bare.empty()) std::filesystem::create_symlink(hook ? target : bare, link);
        const std::size_t i = (n / 2) % users.size();
        Secret pw = password_for(tag + "H" + std::to_string(n), i);
        const auto t0 = Steady::now();
        auto st = directory::reset_password(*dc, fill(dn_templ, users[i]), pw);
        if (!st) throw std::runtime_error("AD reset of " + users[i] + ": " + st.error().message);
        (hook ? with_hook : without).push_back(std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
    }
    std::error_code ec;
    std::filesystem::remove(link, ec);
    if (!bare.empty()) std::filesystem::create_symlink(bare, link);
    const auto h = percentiles(with_hook), b = percentiles(without);
    std::cout << json{{"what", a.get("what", "hook_cost")}, {"changes", count},
                      {"hook_p50_ms", h.p50}, {"hook_p99_ms", h.p99}, {"bare_p50_ms", b.p50}, {"bare_p99_ms", b.p99},
                      {"ratio_p50", b.p50 > 0 ? h.p50 / b.p50 : 0}}
                     .dump()
              << std::endl;
    return 0;
}

// core --store URI [--key FILE] --principal P --users FILE(windows accounts) --threads N --workers W --count N
//      [--deliver yes|no|after]
// The engine and dispatcher in this process over the store at DIR, whose
// mappings point at a `null` adapter: accepted = committed (fsync'd) jobs,
// delivered = the outbox emptied again. `after`: intake alone first, then
// the dispatcher drains the outbox alone (drain_per_second), to tell the
// two sides' limits apart.
int cmd_core(const Args& a) {
    const auto users = read_lines(a.need("users"));
    const auto threads = static_cast<std::size_t>(a.num("threads", 16));
    const auto count = static_cast<std::size_t>(a.num("count", static_cast<long>(users.size())));
    const std::string tag = a.need("tag"), principal = a.need("principal");
    store::Options so;
    so.uri = a.need("store");
    so.key_file = a.get("key", "");
    auto s = store::Store::open(so);
    if (!s) throw std::runtime_error(s.error().message);
    gateway::DispatcherOptions dopts;
    dopts.factory = gateway::make_adapter;
    dopts.workers = static_cast<std::size_t>(a.num("workers", 4));
    dopts.log = [](std::string_view l) { std::cerr << l << "\n"; };
    gateway::Dispatcher dispatcher(*s, dopts);
    gateway::EngineOptions eo;
    eo.damping_window = std::chrono::seconds(0);
    eo.queued = [&dispatcher] { dispatcher.wake(); };
    gateway::Engine engine(*s, std::move(eo));
    const std::string deliver_mode = a.get("deliver", "yes");
    const bool deliver = deliver_mode != "no";  // no: intake alone, for profiling
    const bool drain_after = deliver_mode == "after";
    if (deliver && !drain_after) dispatcher.start();
    std::atomic<std::size_t> next{0}, ok{0}, failed{0};
    std::string first_error;
    std::mutex m;
    const auto t0 = Steady::now();
    std::vector<std::thread> ts;
    for (std::size_t t = 0; t < threads; ++t)
        ts.emplace_back([&] {
            for (std::size_t n; (n = next++) < count;) {
                const std::size_t i = n % users.size();
                auto r = engine.change(principal, users[i], nullptr, password_for(tag + std::to_string(n), i));
                if (r.outcome == gateway::ChangeOutcome::stored) ++ok;
                else {
                    ++failed;
                    std::lock_guard l(m);
                    if (first_error.empty()) first_error = r.message;
                }
            }
        });
    for (auto& t : ts) t.join();
    const double accepted_s = seconds_since(t0);
    const auto drain_t0 = Steady::now();
    if (drain_after) dispatcher.start();
    std::size_t left = 1;
    while (deliver && seconds_since(t0) < static_cast<double>(a.num("timeout", 120))) {
        auto r = s->read();
        if (r) {
            auto n = r->queued_jobs();
            if (n) left = *n;
        }
        if (left == 0) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const double delivered_s = seconds_since(t0);
    const double drain_s = seconds_since(drain_t0);
    dispatcher.stop();
    json j{{"what", a.get("what", "core")}, {"threads", threads}, {"ok", ok.load()}, {"failed", failed.load()},
           {"accepted_seconds", accepted_s}, {"accepted_per_second", static_cast<double>(ok) / accepted_s},
           {"left_in_outbox", left}, {"delivered_seconds", delivered_s},
           {"delivered_per_second", left == 0 ? static_cast<double>(ok) / delivered_s : 0},
           {"commits", s->commits()}};
    if (drain_after && left == 0) j["drain_per_second"] = static_cast<double>(ok) / drain_s;
    // The writer's turn (serial): its share of the run, and of that the
    // commits' share (the pages written and flushed).
    const auto wt = s->writer_time();
    const auto secs = [](std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); };
    j["writer"] = {{"batches", wt.batches}, {"units", wt.units}, {"running_seconds", secs(wt.running)},
                   {"committing_seconds", secs(wt.committing)}, {"gathering_seconds", secs(wt.gathering)}};
    if (!first_error.empty()) j["first_error"] = first_error;
    std::cout << j.dump() << std::endl;
    return failed == 0 && (left == 0 || !deliver) ? 0 : 1;
}

// load-mappings --store DIR --app APP --count N [--batch B]: windows
// "benchm<i>", external "xm<i>", B per write transaction.
int cmd_load_mappings(const Args& a) {
    store::Options so;
    so.uri = a.need("store");
    auto s = store::Store::open(so);
    if (!s) throw std::runtime_error(s.error().message);
    const auto count = static_cast<std::size_t>(a.num("count", 1000000));
    const auto batch = static_cast<std::size_t>(a.num("batch", 20000));
    const std::string app = a.need("app");
    const auto t0 = Steady::now();
    for (std::size_t done = 0; done < count;) {
        auto w = s->write("pwsync-bench");
        if (!w) throw std::runtime_error(w.error().message);
        for (std::size_t k = 0; k < batch && done < count; ++k, ++done) {
            store::Mapping m;
            m.app = app;
            m.windows = "benchm" + std::to_string(done);
            m.external = "xm" + std::to_string(done);
            if (auto st = w->create_mapping(std::move(m)); !st) throw std::runtime_error(st.error().message);
        }
        if (auto st = w->commit(); !st) throw std::runtime_error(st.error().message);
    }
    const double secs = seconds_since(t0);
    std::cout << json{{"what", "load-mappings"}, {"count", count}, {"seconds", secs},
                      {"per_second", static_cast<double>(count) / secs}}
                     .dump()
              << std::endl;
    return 0;
}

// lookup --store DIR --windows NAME [--repeat N]: one mapping lookup by
// Windows account (what a capture does), first and median of N.
int cmd_lookup(const Args& a) {
    store::Options so;
    so.uri = a.need("store");
    const auto t_open = Steady::now();
    auto s = store::Store::open(so);
    if (!s) throw std::runtime_error(s.error().message);
    const double open_s = seconds_since(t_open);
    const auto repeat = static_cast<std::size_t>(a.num("repeat", 1000));
    std::vector<double> us;
    std::size_t found = 0;
    for (std::size_t n = 0; n < repeat; ++n) {
        const auto t0 = Steady::now();
        auto r = s->read();
        if (!r) throw std::runtime_error(r.error().message);
        store::MappingFilter f;
        f.windows = a.need("windows");
        auto ms = r->mappings(f);
        if (!ms) throw std::runtime_error(ms.error().message);
        found = ms->size();
        us.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    }
    const double first = us.front();
    const auto p = percentiles(us);
    std::cout << json{{"what", "lookup"}, {"found", found}, {"open_ms", open_s * 1000}, {"first_us", first},
                      {"p50_us", p.p50}, {"p99_us", p.p99}}
                     .dump()
              << std::endl;
    return found > 0 ? 0 : 1;
}

// dirsync --uri DC --ca CA --bind-dn D --bind-pw-file F --base B --cookie-file FILE [--full]
// --full: a full sync, cookie saved. Otherwise: one incremental poll from
// the saved cookie, timed, with the number of events it returned.
int cmd_dirsync(const Args& a) {
    const std::string cookie_file = a.need("cookie-file");
    std::string cookie;
    if (a.get("full").empty()) {
        std::ifstream in(cookie_file, std::ios::binary);
        cookie.assign(std::istreambuf_iterator<char>(in), {});
    }
    directory::WatchOptions wo;
    wo.base = a.need("base");
    wo.notifications = false;
    auto w = directory::Watcher::open(connect(a, "uri", "bind-dn", "bind-pw-file"), wo, cookie);
    if (!w) throw std::runtime_error("watcher: " + w.error().message);
    std::size_t events = 0, batches = 0, changed = 0;
    std::string last;
    const auto t0 = Steady::now();
    auto st = w->poll([&](directory::Batch& b) -> Status {
        ++batches;
        events += b.events.size();
        for (const auto& e : b.events)
            if (e.kind == directory::EventKind::password_changed) ++changed;
        last = b.cookie;
        return {};
    });
    const double secs = seconds_since(t0);
    if (!st) throw std::runtime_error("poll: " + st.error().message);
    std::ofstream(cookie_file, std::ios::binary | std::ios::trunc) << w->cookie();
    std::cout << json{{"what", a.get("full").empty() ? "dirsync-incremental" : "dirsync-full"}, {"events", events},
                      {"password_changed", changed}, {"batches", batches}, {"ms", secs * 1000}}
                     .dump()
              << std::endl;
    return 0;
}

int usage() {
    std::cerr << "usage: pwsync-bench pwmod|reset|latency|core|load-mappings|lookup|dirsync --name value...\n";
    return 2;
}

}  // namespace
}  // namespace pwsync::bench

int main(int argc, char** argv) {
    using namespace pwsync::bench;
    if (argc < 2) return usage();
    Args a;
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        if (!k.starts_with("--")) return usage();
        k = k.substr(2);
        if (i + 1 < argc && !std::string_view(argv[i + 1]).starts_with("--")) a.v[k] = argv[++i];
        else a.v[k] = "1";
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "pwmod") return cmd_pwmod(a);
        if (cmd == "reset") return cmd_reset(a);
        if (cmd == "check") return cmd_check(a);
        if (cmd == "latency") return cmd_latency(a);
        if (cmd == "hookcost") return cmd_hookcost(a);
        if (cmd == "core") return cmd_core(a);
        if (cmd == "load-mappings") return cmd_load_mappings(a);
        if (cmd == "lookup") return cmd_lookup(a);
        if (cmd == "dirsync") return cmd_dirsync(a);
    } catch (const std::exception& e) {
        std::cerr << "pwsync-bench " << cmd << ": " << e.what() << "\n";
        return 1;
    }
    return usage();
}
