// JSON documents and plain tables for listings.
#include <algorithm>
#include <ostream>

#include "cli.h"

namespace pwsync::cli {

const char* yes_no(bool b) { return b ? "yes" : "no"; }

std::string time_text(TimePoint t) { return t == TimePoint{} ? "-" : format_iso8601(t); }

namespace {
json time_json(TimePoint t) { return t == TimePoint{} ? json(nullptr) : json(format_iso8601(t)); }
}  // namespace

json to_json(const store::App& a) {
    return {{"name", a.name},         {"description", a.description}, {"contact", a.contact},
            {"enabled", a.enabled},   {"adapter", a.adapter.empty() ? json(nullptr) : json(a.adapter)},
            {"allow_privileged", a.allow_privileged},
            {"created", time_json(a.created)}, {"updated", time_json(a.updated)}};
}

json to_json(const store::Adapter& a) {
    json props = json::object();
    for (const auto& [k, v] : a.properties) props[k] = v;
    return {{"name", a.name},
            {"type", a.type},
            {"description", a.description},
            {"enabled", a.flags.enabled},
            {"sync_to_adapter", a.flags.sync_to_adapter},
            {"sync_from_adapter", a.flags.sync_from_adapter},
            {"change_windows_password", a.flags.change_windows_password},
            {"verify_old_password", a.flags.verify_old_password},
            {"send_old_password", a.flags.send_old_password},
            {"allow_mapping_conflicts", a.flags.allow_mapping_conflicts},
            {"retry_count", a.retry_count},
            {"retry_delay", a.retry_delay},
            {"max_age", a.max_age},
            {"concurrency", a.concurrency},
            {"timeout", a.timeout},
            {"properties", props},
            {"secret_properties", a.secret_properties},
            {"group", a.group.empty() ? json(nullptr) : json(a.group)},
            {"created", time_json(a.created)},
            {"updated", time_json(a.updated)}};
}

json to_json(const store::Group& g, const std::vector<std::string>& members) {
    return {{"name", g.name}, {"description", g.description}, {"adapters", members}, {"created", time_json(g.created)}};
}

json to_json(const store::Mapping& m) {
    return {{"app", m.app},
            {"windows", m.windows},
            {"external", m.external},
            {"enabled", m.enabled},
            {"has_credential", m.has_credential},
            {"status", store::mapping_status_name(m.status)},
            {"object_guid", m.object_guid.empty() ? json(nullptr) : json(m.object_guid)},
            {"rule", m.rule.empty() ? json(nullptr) : json(m.rule)},
            {"created", time_json(m.created)},
            {"updated", time_json(m.updated)},
            {"credential_updated", time_json(m.credential_updated)}};
}

json to_json(const store::Principal& p) {
    return {{"name", p.name},
            {"kind", store::principal_kind_name(p.kind)},
            {"adapter", p.adapter.empty() ? json(nullptr) : json(p.adapter)},
            {"capture", p.capture == store::CaptureMode::none ? json(nullptr) : json(store::capture_mode_name(p.capture))},
            {"certificate_subject", p.certificate_subject.empty() ? json(nullptr) : json(p.certificate_subject)},
            {"created", time_json(p.created)}};
}

json to_json(const store::AuditRecord& r) {
    return {{"id", r.id}, {"time", format_iso8601(r.time)}, {"actor", r.actor},
            {"action", r.action}, {"object", r.object}, {"detail", r.detail}};
}

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width(header.size());
    for (std::size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], r[i].size());
    auto line = [&](const std::vector<std::string>& cells) {
        std::string s;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            s += cells[i];
            if (i + 1 < cells.size()) s += std::string(width[i] - cells[i].size() + 2, ' ');
        }
        out << s << "\n";
    };
    line(header);
    for (const auto& r : rows) line(r);
}

}  // namespace pwsync::cli
