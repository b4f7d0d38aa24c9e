// The `exec` adapter: runs `program [args...] EXTERNAL WINDOWS` with the new
// password on stdin (and the old one on a second line with send-old-password).
// Exit 0 = done, 75 (EX_TEMPFAIL) = retry, anything else = permanent.
#include <sstream>

#include "registry.h"
#include "process.h"

namespace pwsync::gateway {
namespace {

class ExecAdapter final : public Adapter {
public:
    ExecAdapter(std::vector<std::string> argv, std::chrono::seconds timeout)
        : argv_(std::move(argv)), timeout_(timeout) {}

    DeliveryResult deliver(const Delivery& d) override {
        std::vector<std::string> argv = argv_;
        argv.push_back(d.external);
        argv.push_back(d.windows);
        Secret input = d.password->clone();
        input.push_back('\n');
        if (d.old_password != nullptr) {
            input.append(d.old_password->view());
            input.push_back('\n');
        }
        // Which limit stopped it is known before it runs: asking the clock
        // afterwards raced with the time allowed, rounded down to the
        // millisecond (its unit test failed on it twice in a day).
        const auto allowed = time_allowed(d, timeout_);
        auto r = run_process(argv, input, allowed);
        if (!r) return {Outcome::retry, r.error().message};
        const std::string tail = first_line(r->output);
        if (r->timed_out)
            return {Outcome::retry, argv_[0] + (allowed < timeout_
                                                    ? " was stopped: this gateway's right to deliver ended"
                                                    : " timed out after " + std::to_string(timeout_.count()) + " s")};
        if (r->exit_code == 0) return {Outcome::done, tail};
        const std::string msg = argv_[0] + " exited with " + std::to_string(r->exit_code) + (tail.empty() ? "" : ": " + tail);
        if (r->exit_code == 75) return {Outcome::retry, msg};
        return {Outcome::permanent, msg};
    }

private:
    static std::string first_line(const std::string& s) {
        std::string line = s.substr(0, s.find('\n'));
        if (line.size() > 200) line.resize(200);
        return line;
    }
    std::vector<std::string> argv_;
    std::chrono::seconds timeout_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> make_exec_adapter(const AdapterContext& c) {
    PWSYNC_TRY(exec_adapter_type().validate(c.config));
    auto it = c.config.properties.find("program");
    if (it == c.config.properties.end() || it->second.empty())
        return fail(Errc::invalid_argument, "exec adapter '" + c.config.name + "' needs property program");
    std::vector<std::string> argv{it->second};
    if (auto a = c.config.properties.find("args"); a != c.config.properties.end()) {
        std::istringstream words(a->second);
        for (std::string w; words >> w;) argv.push_back(w);
    }
    return std::make_unique<ExecAdapter>(std::move(argv), std::chrono::seconds(c.config.timeout));
}

}  // namespace pwsync::gateway
