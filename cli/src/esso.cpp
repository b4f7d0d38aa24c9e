// ESSO XML: <sso><application name=…><description/><contact/><flags …/>
// </application><mapping><windowsDomain/><windowsUserId/>
// <externalApplication/><externalUserId/></mapping></sso>. pugixml does not
// process DTDs, so entity tricks (XXE, billion laughs) have nothing to bite.
#include "esso.h"

#include <algorithm>
#include <pugixml.hpp>

namespace pwsync::cli::esso {
namespace {

// ESSO flags that only concern single sign-on (tickets, credential fields,
// host-initiated SSO): pwsync has no equivalent, so a "yes" is reported.
bool is_sso_only_flag(std::string_view name) {
    static const std::vector<std::string_view> kNames = {
        "groupApp",       "psApp",          "configStoreApp", "allowTickets",       "validateTickets",
        "timeoutTickets", "adminAccountSame", "hostInitiatedSSO", "validatePassword", "windowsInitiatedSSO",
        "ticketTimeout",  "disableCredCache", "allowLocalAccounts"};
    return std::ranges::find(kNames, name) != kNames.end();
}

// Not `quoted`: ADL would pick libstdc++ 14's std::quoted (see store/src/impl.h).
std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string trimmed(std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

class Parser {
public:
    Parser(std::string_view content, const std::string& file) : content_(content), file_(file) {}

    Result<Document> run() {
        pugi::xml_document doc;
        const auto res = doc.load_buffer(content_.data(), content_.size(), pugi::parse_default, pugi::encoding_auto);
        if (!res)
            return fail(Errc::invalid_argument,
                        where(line_of(res.offset)) + "not well-formed XML: " + res.description());
        const auto root = doc.document_element();
        if (std::string_view(root.name()) != "sso")
            return fail(Errc::invalid_argument, where(line(root)) + "the root element is <" + root.name() +
                                                    ">, not <sso>: not an ssomanage file");
        for (const auto& node : root.children()) {
            if (node.type() != pugi::node_element) continue;
            const std::string_view name = node.name();
            if (name == "application") {
                PWSYNC_TRY(application(node));
            } else if (name == "mapping") {
                PWSYNC_TRY(mapping(node));
            } else {
                out_.not_mapped.push_back(where(line(node)) + "<" + std::string(name) + "> is not imported");
            }
        }
        return std::move(out_);
    }

private:
    std::size_t line_of(std::ptrdiff_t offset) const {
        if (offset < 0 || static_cast<std::size_t>(offset) > content_.size()) return 0;
        return 1 + static_cast<std::size_t>(std::count(content_.begin(), content_.begin() + offset, '\n'));
    }
    // offset_debug() is -1 when pugixml converted the input (UTF-16).
    std::size_t line(const pugi::xml_node& n) const { return line_of(n.offset_debug()); }
    std::string where(std::size_t line) const {
        return file_ + (line ? " line " + std::to_string(line) : std::string()) + ": ";
    }

    Result<bool> flag_value(const pugi::xml_attribute& a, const std::string& context) const {
        std::string v = ascii_lower(trimmed(a.value()));
        if (v == "yes" || v == "true" || v == "1") return true;
        if (v == "no" || v == "false" || v == "0") return false;
        return fail(Errc::invalid_argument, context + "flag " + a.name() + "=\"" + a.value() +
                                                "\" is not yes or no; nothing was imported");
    }

    Status application(const pugi::xml_node& node) {
        Application app;
        app.line = line(node);
        const std::string at = where(app.line);
        app.name = trimmed(node.attribute("name").value());
        if (app.name.empty())
            return fail(Errc::invalid_argument, at + "<application> has no name attribute; nothing was imported");
        const std::string ctx = at + "application " + quote(app.name) + ": ";
        for (const auto& child : node.children()) {
            if (child.type() != pugi::node_element) continue;
            const std::string_view name = child.name();
            if (name == "description") {
                app.description = trimmed(child.child_value());
            } else if (name == "contact") {
                app.contact = trimmed(child.child_value());
            } else if (name == "flags") {
                for (const auto& a : child.attributes()) {
                    const std::string flag = a.name();
                    PWSYNC_ASSIGN(bool v, flag_value(a, ctx));
                    if (flag == "enableApp") {
                        app.enabled = v;
                    } else if (std::ranges::find(sync_flag_names(), flag) != sync_flag_names().end()) {
                        app.sync_flags[flag] = v;
                    } else if (!v && is_sso_only_flag(flag)) {
                        // "no" for a feature pwsync lacks changes nothing.
                    } else {
                        out_.not_mapped.push_back(ctx + "flag " + flag + "=" + (v ? "yes" : "no") +
                                                  (flag == "allowLocalAccounts"
                                                       ? " not imported: pwsync maps domain accounts only"
                                                       : " not imported: no pwsync equivalent"));
                    }
                }
            } else {
                out_.not_mapped.push_back(ctx + "<" + std::string(name) +
                                          "> not imported (single sign-on setting, no pwsync equivalent)");
            }
        }
        out_.apps.push_back(std::move(app));
        return {};
    }

    Status mapping(const pugi::xml_node& node) {
        Mapping m;
        m.line = line(node);
        const std::string at = where(m.line);
        std::string domain, user;
        for (const auto& child : node.children()) {
            if (child.type() != pugi::node_element) continue;
            const std::string_view name = child.name();
            const std::string value = trimmed(child.child_value());
            if (name == "windowsDomain") domain = value;
            else if (name == "windowsUserId") user = value;
            else if (name == "externalApplication") m.app = value;
            else if (name == "externalUserId") m.external = value;
            else out_.not_mapped.push_back(at + "mapping field <" + std::string(name) + "> not imported");
        }
        for (const auto& [field, value] : {std::pair<const char*, const std::string*>{"windowsUserId", &user},
                                           {"externalApplication", &m.app},
                                           {"externalUserId", &m.external}})
            if (value->empty())
                return fail(Errc::invalid_argument, at + "<mapping> has no " + field + "; nothing was imported");
        m.windows = domain.empty() ? user : domain + "\\" + user;
        out_.mappings.push_back(std::move(m));
        return {};
    }

    std::string_view content_;
    const std::string& file_;
    Document out_;
};

}  // namespace

const std::vector<std::string>& sync_flag_names() {
    static const std::vector<std::string> kNames = {"syncToAdapter",     "syncFromAdapter", "changeWindowsPassword",
                                                    "verifyOldPassword", "sendOldPassword", "allowMappingConflicts"};
    return kNames;
}

Result<Document> parse(std::string_view content, const std::string& file) { return Parser(content, file).run(); }

}  // namespace pwsync::cli::esso
