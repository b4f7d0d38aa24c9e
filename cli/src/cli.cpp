// Argument dispatch: `pwsync NOUN [VERB] [OPTIONS]`, parsed with
// Boost.Program_options against the command's own option set.
#include "cli.h"

#include <iostream>

namespace pwsync::cli {
namespace {

void common_options(po::options_description& d) {
    d.add_options()
        ("store", po::value<std::string>()->value_name("DIR"), "store folder (else $PWSYNC_STORE, else the config file)")
        ("config", po::value<std::string>()->value_name("FILE"),
         "configuration file (else $PWSYNC_CONFIG, else /etc/pwsync/pwsyncd.conf)")
        ("help,h", "show this help");
}

std::string title(const Command& c) { return "pwsync " + c.noun + (c.verb.empty() ? "" : " " + c.verb); }

void print_usage(std::ostream& out, const std::vector<Command>& cmds, std::string_view noun = {}) {
    out << "usage: pwsync COMMAND [ARGS] [--store DIR] [--config FILE]\n\n";
    for (const auto& c : cmds) {
        if (!noun.empty() && c.noun != noun) continue;
        std::string line = "  " + title(c).substr(7) + (c.args.empty() ? "" : " " + c.args);
        if (line.size() < 52) line.resize(52, ' ');
        else line += "\n" + std::string(52, ' ');
        out << line << c.summary << "\n";
    }
    out << "\nPasswords and secrets are read from stdin, a prompt, or --password-file; never from arguments.\n"
           "Exit codes: 0 ok, 1 failure, 2 usage error. `pwsync COMMAND --help` shows a command's options.\n";
}

}  // namespace

std::vector<Command> all_commands() {
    std::vector<Command> cmds;
    add_settings_commands(cmds);
    add_app_commands(cmds);
    add_adapter_commands(cmds);
    add_mapping_commands(cmds);
    add_principal_commands(cmds);
    add_queue_commands(cmds);
    add_directory_commands(cmds);
    add_stale_commands(cmds);
    add_notify_commands(cmds);
    add_import_commands(cmds);
    add_rule_commands(cmds);
    return cmds;
}

int run(int argc, const char* const argv[], std::istream& in, std::ostream& out, std::ostream& err) {
    const auto cmds = all_commands();
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        print_usage(args.empty() ? err : out, cmds);
        return args.empty() ? kExitUsage : kExitOk;
    }
    if (args[0] == "--version") {
        out << "pwsync " PWSYNC_VERSION "\n";
        return kExitOk;
    }
    const Command* cmd = nullptr;
    std::size_t consumed = 0;
    for (const auto& c : cmds) {
        if (c.noun != args[0]) continue;
        if (!c.verb.empty() && args.size() > 1 && c.verb == args[1]) { cmd = &c; consumed = 2; break; }
        if (c.verb.empty()) { cmd = &c; consumed = 1; }
    }
    if (cmd == nullptr) {
        bool known_noun = false;
        for (const auto& c : cmds) known_noun |= c.noun == args[0];
        if (known_noun) {
            if (args.size() > 1 && (args[1] == "--help" || args[1] == "-h")) {
                print_usage(out, cmds, args[0]);
                return kExitOk;
            }
            err << "pwsync: error: "
                << (args.size() > 1 ? "unknown command 'pwsync " + args[0] + " " + args[1] + "'"
                                    : "'pwsync " + args[0] + "' needs a subcommand")
                << " (see pwsync " << args[0] << " --help)\n";
            return kExitUsage;
        }
        err << "pwsync: error: unknown command '" << args[0] << "' (see pwsync --help)\n";
        return kExitUsage;
    }

    po::options_description desc(title(*cmd) + (cmd->args.empty() ? "" : " " + cmd->args) + "\n" + cmd->summary +
                                 "\n\nOptions");
    po::positional_options_description pos;
    if (cmd->options) cmd->options(desc, pos);
    common_options(desc);
    po::variables_map vm;
    try {
        std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(consumed), args.end());
        po::store(po::command_line_parser(rest).options(desc).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        err << "pwsync: error: " << title(*cmd) << ": " << e.what() << " (see " << title(*cmd) << " --help)\n";
        return kExitUsage;
    }
    if (vm.count("help")) {
        out << desc << "\n";
        return kExitOk;
    }
    Context ctx(vm, in, out, err);
    try {
        auto st = cmd->run(ctx);
        if (!st) {
            err << "pwsync: error: " << st.error().message << "\n";
            return ctx.exit_code() != 0 ? ctx.exit_code() : kExitFailure;
        }
    } catch (const UsageError& u) {
        err << "pwsync: error: " << title(*cmd) << ": " << u.message << " (see " << title(*cmd) << " --help)\n";
        return kExitUsage;
    } catch (const po::error& e) {
        err << "pwsync: error: " << title(*cmd) << ": " << e.what() << "\n";
        return kExitUsage;
    } catch (const std::exception& e) {
        err << "pwsync: error: internal error: " << e.what() << "\n";
        return kExitFailure;
    }
    return kExitOk;
}

}  // namespace pwsync::cli
