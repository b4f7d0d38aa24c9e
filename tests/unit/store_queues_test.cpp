// The gateway's durable state in the store.
#include "store_fixture.h"

namespace pwsync::store::testing {
namespace {

class QueueTest : public StoreTest {
protected:
    void SetUp() override {
        StoreTest::SetUp();
        make_app("LINUX");
        ASSERT_OK(map("LINUX", "TEST\\alice", "alice"));
    }
    std::uint64_t enqueue(const std::string& pw, const std::string& external = "alice", const Secret* old = nullptr) {
        auto t = w();
        auto id = t.enqueue_job(alice_job(external), Secret(pw), old);
        EXPECT_TRUE(id) << id.error().message;
        EXPECT_TRUE(t.commit());
        return id.value_or(0);
    }
};

TEST_P(QueueTest, JobsKeepOrderPerTargetAndSealTheirPasswords) {
    const Secret old("Old-Password-0");
    const auto a = enqueue("Queued-Password-1", "alice", &old);
    const auto b = enqueue("Queued-Password-2");
    const auto c = enqueue("Other-Target-3", "ALICE2");
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    auto target = r().jobs_for_target("LDAP1", "Alice");
    ASSERT_OK(target);
    ASSERT_EQ(target->size(), 2u);
    EXPECT_EQ((*target)[0].id, a);
    EXPECT_EQ((*target)[1].id, b);
    EXPECT_TRUE((*target)[0].has_old_password);
    EXPECT_EQ(r().job_password(b)->view(), "Queued-Password-2");
    EXPECT_EQ(r().job_old_password(a)->view(), "Old-Password-0");
    EXPECT_ERRC(r().job_old_password(b), Errc::not_found);
    EXPECT_EQ(r().jobs("ldap1")->size(), 3u);
    EXPECT_TRUE(r().jobs("other")->empty());
    EXPECT_TRUE(stored_files_containing("Queued-Password").empty());
    EXPECT_TRUE(stored_files_containing("Old-Password").empty());
    auto audit = r().audit();
    ASSERT_OK(audit);
    for (const auto& rec : *audit) EXPECT_EQ(rec.detail.find("Password"), std::string::npos) << rec.detail;
}

// The dispatcher scans the outbox adapter by adapter: the adapters with
// jobs, and one adapter's targets without the others'.
TEST_P(QueueTest, TheOutboxIsListedAdapterByAdapter) {
    EXPECT_TRUE(r().target_adapters()->empty());
    for (const char* adapter : {"ldap2", "LDAP1", "ldap1", "a", "ldap10", "ldap1"}) {
        auto t = w();
        Job j;
        j.adapter = adapter;
        j.app = "LINUX";
        j.windows = "TEST\\alice";
        j.external = std::string("alice-") + adapter;
        j.origin = "dc1";
        ASSERT_OK(t.enqueue_job(j, Secret("Listed-Password-1"), nullptr));
        ASSERT_OK(t.commit());
    }
    auto names = r().target_adapters();
    ASSERT_OK(names);
    EXPECT_EQ(*names, (std::vector<std::string>{"a", "ldap1", "ldap10", "ldap2"}));
    std::vector<std::string> seen;
    std::size_t jobs = 0;
    ASSERT_OK(r().for_each_target([&](std::string_view adapter, std::string_view external, const std::vector<std::uint64_t>& ids) -> Result<bool> {
        seen.push_back(std::string(adapter) + "/" + std::string(external));
        jobs += ids.size();
        return true;
    }, "ldap1"));
    // ldap10's targets share the prefix "ldap1" but not "ldap1\0".
    EXPECT_EQ(seen, (std::vector<std::string>{"ldap1/alice-ldap1"}));
    EXPECT_EQ(jobs, 3u);
}

TEST_P(QueueTest, DeliveredJobUpdatesTheMappingCredential) {
    const auto a = enqueue("Superseded-1");
    const auto b = enqueue("Newest-2");
    {
        auto t = w();
        ASSERT_OK(t.job_superseded(a, b));
        ASSERT_OK(t.job_delivered(b));
        ASSERT_OK(t.commit());
    }
    EXPECT_TRUE(r().jobs()->empty());
    EXPECT_TRUE(r().jobs_for_target("ldap1", "alice")->empty());
    EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\alice"})->view(), "Newest-2");
    EXPECT_TRUE(store().verify()->problems.empty());
}

// The dispatcher seals the new credential before its outcome's write (out
// of the writers' turn): the blob is stored as it is when it is the job's
// mapping's and its key is the current one, and sealed again from the job
// otherwise (another mapping's blob; a key rotation in between, which
// retires the key it was sealed under).
TEST_P(QueueTest, DeliveredJobTakesACredentialSealedAheadForItsMappingUnderTheCurrentKeyOnly) {
    const MappingKey key{"LINUX", "TEST\\alice"};
    const auto deliver = [&](std::uint64_t id, const SealedCredential& ahead) {
        auto t = w();
        ASSERT_OK(t.job_delivered(id, &ahead));
        ASSERT_OK(t.commit());
    };
    auto ahead = store().seal_credential(key, Secret("Sealed-Ahead-1"));
    ASSERT_OK(ahead);
    deliver(enqueue("Queued-1"), *ahead);
    EXPECT_EQ(r().mapping_credential(key)->view(), "Sealed-Ahead-1");
    auto elsewhere = store().seal_credential({"LINUX", "TEST\\bob"}, Secret("Sealed-For-Bob"));
    ASSERT_OK(elsewhere);
    deliver(enqueue("Queued-2"), *elsewhere);
    EXPECT_EQ(r().mapping_credential(key)->view(), "Queued-2");
    auto stale = store().seal_credential(key, Secret("Sealed-Ahead-3"));
    ASSERT_OK(stale);
    ASSERT_OK(store().rotate_key("tester"));
    deliver(enqueue("Queued-3"), *stale);
    EXPECT_EQ(r().mapping_credential(key)->view(), "Queued-3");
    EXPECT_TRUE(store().verify()->problems.empty());
}

// The dispatcher reads ahead what recording a pass's outcomes reads (one
// round trip on PostgreSQL): what it gets is the records as they are in the
// transaction, its own writes included, and nothing for what is not there.
TEST_P(QueueTest, OutcomesReadAheadAreTheRecordsAsTheTransactionHasThem) {
    const auto queued = enqueue("Queued-Earlier-1");
    auto t = w();
    const Job j = alice_job();
    auto fresh = t.enqueue_job(j, Secret("Queued-In-This-Txn-2"), nullptr);  // not sent to the server yet
    ASSERT_OK(fresh);
    ASSERT_OK(t.set_mapping_external({"LINUX", "TEST\\alice"}, "alice-renamed"));  // written after: still to be sent
    // What the dispatcher knows of its jobs: their ids and mappings.
    Job earlier = j, now_queued = j, gone = j, unmapped = j;
    earlier.id = queued;
    now_queued.id = *fresh;
    gone.id = *fresh + 1000;
    unmapped.id = queued;
    unmapped.windows = "TEST\\nobody";
    std::vector<Job> ahead{earlier, now_queued, gone, unmapped};
    ASSERT_OK(t.prefetch_jobs(ahead));
    auto now = t.job(*fresh);
    ASSERT_OK(now);
    EXPECT_EQ(now->origin, "dc1");
    EXPECT_ERRC(t.job(gone.id), Errc::not_found);
    EXPECT_EQ(t.mapping({"LINUX", "TEST\\alice"})->external, "alice-renamed");
    EXPECT_ERRC(t.mapping({"LINUX", "TEST\\nobody"}), Errc::not_found);
    ASSERT_OK(t.job_delivered(*fresh));
    ASSERT_OK(t.commit());
    EXPECT_EQ(r().mapping_credential({"LINUX", "TEST\\alice"})->view(), "Queued-In-This-Txn-2");
    EXPECT_EQ(r().queued_jobs().value_or(99), 1u);  // the earlier one
    EXPECT_EQ(r().mapping({"LINUX", "TEST\\alice"})->external, "alice-renamed");
}

// A password queued for a mapping follows its external id when that changes
// (a rename a rule allowed) and is dropped when the mapping goes (an account
// that left a rule's scope, became privileged): it never reaches an account
// the Windows account is no longer mapped to.
TEST_P(QueueTest, QueuedJobsFollowTheirMappingsExternalIdAndGoWithIt) {
    make_adapter("ldap1");
    {
        auto t = w();
        App a;
        a.name = "SSO";
        ASSERT_OK(t.create_app(a));
        ASSERT_OK(t.add_app_to_adapter("ldap1", "SSO"));
        ASSERT_OK(t.commit());
    }
    ASSERT_OK(map("SSO", "TEST\\bob", "bob"));
    ASSERT_OK(map("SSO", "TEST\\carol", "carol"));
    auto queue = [&](const std::string& windows, const std::string& external) {
        auto t = w();
        Job j;
        j.adapter = "ldap1";
        j.app = "SSO";
        j.windows = windows;
        j.external = external;
        j.origin = "dc1";
        auto id = t.enqueue_job(j, Secret("Followed-Password-1"), nullptr);
        EXPECT_TRUE(t.commit());
        return id.value_or(0);
    };
    const auto bob = queue("TEST\\bob", "bob");
    const auto carol = queue("TEST\\carol", "carol");
    {
        auto t = w();
        ASSERT_OK(t.set_mapping_external({"SSO", "TEST\\bob"}, "robert"));
        ASSERT_OK(t.commit());
    }
    EXPECT_TRUE(r().jobs_for_target("ldap1", "bob")->empty());
    auto moved = r().jobs_for_target("ldap1", "robert");
    ASSERT_OK(moved);
    ASSERT_EQ(moved->size(), 1u);
    EXPECT_EQ((*moved)[0].id, bob);
    EXPECT_EQ(r().job(bob)->external, "robert");
    EXPECT_EQ(r().job_password(bob)->view(), "Followed-Password-1");
    {
        auto t = w();
        ASSERT_OK(t.delete_mapping({"SSO", "TEST\\carol"}));
        ASSERT_OK(t.commit());
    }
    EXPECT_ERRC(r().job(carol), Errc::not_found);
    EXPECT_TRUE(r().jobs_for_target("ldap1", "carol")->empty());
    EXPECT_TRUE(r().dead_letters()->empty());
    // The other app's job on the same adapter is not touched.
    EXPECT_EQ(r().jobs()->size(), 1u);
    auto audit = r().audit();
    ASSERT_OK(audit);
    std::string actions;
    for (const auto& rec : *audit) actions += rec.action + " ";
    EXPECT_NE(actions.find("job.retarget"), std::string::npos) << actions;
    EXPECT_NE(actions.find("job.dropped"), std::string::npos) << actions;
    EXPECT_TRUE(store().verify()->problems.empty());
}

TEST_P(QueueTest, RetryThenDeadLetterThenRequeue) {
    const auto a = enqueue("Retry-Me-1");
    const auto next = clock_.now() + std::chrono::seconds(60);
    {
        auto t = w();
        ASSERT_OK(t.job_retry(a, next, "server down"));
        ASSERT_OK(t.commit());
    }
    auto j = r().job(a);
    ASSERT_OK(j);
    EXPECT_EQ(j->attempts, 1u);
    EXPECT_EQ(j->next_attempt, next);
    EXPECT_EQ(j->last_error, "server down");
    {
        auto t = w();
        ASSERT_OK(t.job_dead(a, "no such user in the external system"));
        ASSERT_OK(t.commit());
    }
    EXPECT_ERRC(r().job(a), Errc::not_found);
    auto dead = r().dead_letters();
    ASSERT_OK(dead);
    ASSERT_EQ(dead->size(), 1u);
    EXPECT_EQ((*dead)[0].reason, "no such user in the external system");
    EXPECT_EQ((*dead)[0].job.id, a);
    EXPECT_TRUE(store().verify()->problems.empty());
    {
        auto t = w();
        ASSERT_OK(t.dead_letter_retry(a));
        ASSERT_OK(t.commit());
    }
    EXPECT_TRUE(r().dead_letters()->empty());
    EXPECT_EQ(r().job(a)->attempts, 0u);
    EXPECT_EQ(r().job_password(a)->view(), "Retry-Me-1");  // same seal context in both places
    {
        auto t = w();
        ASSERT_OK(t.job_dead(a, "again"));
        ASSERT_OK(t.dead_letter_drop(a));
        EXPECT_ERRC(t.dead_letter_drop(a), Errc::not_found);
        ASSERT_OK(t.commit());
    }
    EXPECT_TRUE(r().dead_letters()->empty());
}

TEST_P(QueueTest, PendingCapturesAndMarkers) {
    std::uint64_t id = 0;
    {
        auto t = w();
        PendingCapture c;
        c.account = "alice";
        c.principal = "dc1";
        c.expires = clock_.now() + std::chrono::minutes(2);
        auto added = t.add_pending_capture(c, Secret("Pending-Pass-1"));
        ASSERT_OK(added);
        id = *added;
        Marker m{"ext-ldap", clock_.now() + std::chrono::minutes(10)};
        ASSERT_OK(t.set_marker(MarkerKind::echo, "TEST\\Alice", "Echo-Pass-1", m));
        ASSERT_OK(t.commit());
    }
    auto pending = r().pending_captures("ALICE");
    ASSERT_OK(pending);
    ASSERT_EQ(pending->size(), 1u);
    EXPECT_EQ(r().pending_password(id)->view(), "Pending-Pass-1");
    auto echo = r().marker(MarkerKind::echo, "test\\alice", "Echo-Pass-1", clock_.now());
    ASSERT_OK(echo);
    ASSERT_TRUE(echo->has_value());
    EXPECT_EQ((*echo)->origin, "ext-ldap");
    EXPECT_FALSE(r().marker(MarkerKind::echo, "test\\alice", "Echo-Pass-2", clock_.now())->has_value());
    EXPECT_FALSE(r().marker(MarkerKind::damping, "test\\alice", "Echo-Pass-1", clock_.now())->has_value());
    EXPECT_FALSE(r().marker(MarkerKind::echo, "test\\alice", "Echo-Pass-1", clock_.now() + std::chrono::minutes(11))->has_value());
    EXPECT_TRUE(stored_files_containing("Pending-Pass").empty());
    EXPECT_TRUE(stored_files_containing("Echo-Pass").empty());
    {
        auto t = w();
        EXPECT_EQ(*t.purge_markers(clock_.now() + std::chrono::minutes(11)), 1u);
        ASSERT_OK(t.remove_pending_capture(id, "confirmed"));
        ASSERT_OK(t.set_cursor("dirsync", std::string("\x01\x00cookie", 8)));
        ASSERT_OK(t.commit());
    }
    EXPECT_TRUE(r().pending_captures()->empty());
    EXPECT_EQ(**r().cursor("dirsync"), std::string("\x01\x00cookie", 8));
    EXPECT_FALSE(r().cursor("none")->has_value());
}

TEST_P(QueueTest, AMarkerPlaceReadsAndWritesTheMarkersOfItsPairOnly) {
    const TimePoint until = clock_.now() + std::chrono::minutes(10);
    {
        auto t = w();
        auto place = t.marker_place("TEST\\Alice", "Place-Pass-1");
        ASSERT_OK(place);
        EXPECT_EQ(place->mac.find("Place-Pass"), std::string::npos);
        ASSERT_OK(t.set_marker(MarkerKind::damping, *place, Marker{"dc1", until}));
        // Written by name, read by place: the same key.
        ASSERT_OK(t.set_marker(MarkerKind::echo, "test\\alice", "Place-Pass-1", Marker{"ext-ldap", until}));
        auto echo = t.marker(MarkerKind::echo, *place, clock_.now());
        ASSERT_OK(echo);
        ASSERT_TRUE(echo->has_value());
        EXPECT_EQ((*echo)->origin, "ext-ldap");
        ASSERT_OK(t.commit());
    }
    auto damped = r().marker(MarkerKind::damping, "test\\ALICE", "Place-Pass-1", clock_.now());
    ASSERT_OK(damped);
    ASSERT_TRUE(damped->has_value());
    EXPECT_EQ((*damped)->origin, "dc1");
    auto other_password = r().marker_place("test\\alice", "Place-Pass-2");
    auto other_account = r().marker_place("test\\bob", "Place-Pass-1");
    ASSERT_OK(other_password);
    ASSERT_OK(other_account);
    EXPECT_FALSE(r().marker(MarkerKind::damping, *other_password, clock_.now())->has_value());
    EXPECT_FALSE(r().marker(MarkerKind::damping, *other_account, clock_.now())->has_value());
    EXPECT_FALSE(r().marker(MarkerKind::damping, *r().marker_place("test\\alice", "Place-Pass-1"), until)->has_value());
    EXPECT_TRUE(stored_files_containing("Place-Pass").empty());
}

TEST_P(QueueTest, RotationReSealsQueuedPasswords) {
    const Secret old("Rotate-Old-0");
    const auto a = enqueue("Rotate-Queued-1", "alice", &old);
    const auto b = enqueue("Rotate-Dead-2", "bob");
    {
        auto t = w();
        ASSERT_OK(t.job_dead(b, "permanent"));
        PendingCapture c;
        c.account = "alice";
        c.principal = "dc1";
        ASSERT_OK(t.add_pending_capture(c, Secret("Rotate-Pending-3")));
        ASSERT_OK(t.commit());
    }
    ASSERT_OK(store().rotate_key("tester"));
    EXPECT_EQ(r().job_password(a)->view(), "Rotate-Queued-1");
    EXPECT_EQ(r().job_old_password(a)->view(), "Rotate-Old-0");
    {
        auto t = w();
        ASSERT_OK(t.dead_letter_retry(b));
        ASSERT_OK(t.commit());
    }
    EXPECT_EQ(r().job_password(b)->view(), "Rotate-Dead-2");
    auto rep = store().verify();
    ASSERT_OK(rep);
    EXPECT_TRUE(rep->problems.empty());
    EXPECT_EQ(rep->secrets, 1u /*keycheck*/ + 3u /*jobs*/ + 1u /*pending*/);
}

PWSYNC_STORE_SUITE(QueueTest);

}  // namespace
}  // namespace pwsync::store::testing
