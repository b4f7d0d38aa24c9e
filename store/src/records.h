// Encoding of each record type. Each decoder rejects what does not decode
// and fills defaults for fields an older release did not write.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "crypto.h"
#include "pwsync/store.h"

namespace pwsync::store::records {

inline constexpr std::uint8_t kFormat = 1;

struct AdapterRecord {
    Adapter adapter;
    std::map<std::string, std::string> sealed;  // secret property -> sealed value
};

struct MappingRecord {
    Mapping mapping;
    std::string sealed_credential;  // empty: none set
};

struct PrincipalRecord {
    Principal principal;
    crypto::SecretHash secret;
};

struct JobRecord {
    Job job;
    std::string sealed_password;
    std::string sealed_old_password;  // empty: none
};

struct DeadRecord {
    JobRecord job;
    std::string reason;
    TimePoint died{};
};

struct PendingRecord {
    PendingCapture capture;
    std::string sealed_password;
};

std::string encode(const App& app);
Result<App> decode_app(std::string_view data);

std::string encode(const AdapterRecord& rec);
Result<AdapterRecord> decode_adapter(std::string_view data);

std::string encode(const Group& group);
Result<Group> decode_group(std::string_view data);

std::string encode(const MappingRecord& rec);
Result<MappingRecord> decode_mapping(std::string_view data);

std::string encode(const PrincipalRecord& rec);
Result<PrincipalRecord> decode_principal(std::string_view data);

std::string encode(const AuditRecord& rec);
Result<AuditRecord> decode_audit(std::string_view data);

std::string encode(const JobRecord& rec);
Result<JobRecord> decode_job(std::string_view data);

std::string encode(const DeadRecord& rec);
Result<DeadRecord> decode_dead(std::string_view data);

std::string encode(const PendingRecord& rec);
Result<PendingRecord> decode_pending(std::string_view data);

std::string encode(const AccountNames& a);
Result<AccountNames> decode_account(std::string_view data);

std::string encode(const Rule& r);
Result<Rule> decode_rule(std::string_view data);

std::string encode(const Marker& m);
Result<Marker> decode_marker(std::string_view data);

}  // namespace pwsync::store::records
