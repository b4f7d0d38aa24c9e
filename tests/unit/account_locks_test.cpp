// Per-account serialization of External -> Windows changes (AccountLocks):
// one account's changes in arrival order, other accounts alongside.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "account_locks.h"

namespace pwsync::gateway {
namespace {

using namespace std::chrono_literals;

TEST(AccountLocksTest, OneAccountsChangesRunInArrivalOrder) {
    AccountLocks locks;
    std::mutex m;
    std::vector<int> order;
    // Tickets taken in order 0..7; the threads that hold them start in reverse.
    std::vector<std::optional<AccountLocks::Ticket>> tickets;
    for (int i = 0; i < 8; ++i) tickets.emplace_back(locks.arrive(std::string("ext\0alice", 10)));
    std::vector<std::thread> ts;
    for (int i = 7; i >= 0; --i)
        ts.emplace_back([&, i] {
            auto& mine = tickets[static_cast<std::size_t>(i)];
            locks.hold(*mine, {"guid-alice"});
            {
                std::lock_guard l(m);
                order.push_back(i);
            }
            mine.reset();  // the change is done
        });
    for (auto& t : ts) t.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(AccountLocksTest, ATicketThatEndsBeforeItsTurnDoesNotBlockTheLine) {
    AccountLocks locks;
    std::optional<AccountLocks::Ticket> first(locks.arrive("k"));
    std::optional<AccountLocks::Ticket> refused(locks.arrive("k"));
    std::optional<AccountLocks::Ticket> third(locks.arrive("k"));
    refused.reset();  // refused before it held anything (no mapping, ...)
    locks.hold(*first, {"a"});
    first.reset();
    std::atomic<bool> held{false};
    std::thread t([&] {
        locks.hold(*third, {"a"});
        held = true;
    });
    t.join();
    EXPECT_TRUE(held);
}

TEST(AccountLocksTest, OtherAccountsRunAlongsideAndSharedAccountsWait) {
    AccountLocks locks;
    std::optional<AccountLocks::Ticket> a(locks.arrive("ext-a"));
    locks.hold(*a, {"guid-1", "guid-2"});
    // Another external user, another Windows account: not held up.
    std::optional<AccountLocks::Ticket> b(locks.arrive("ext-b"));
    locks.hold(*b, {"guid-3"});
    // Another external user mapped to guid-2 as well: waits for `a`.
    std::atomic<bool> c_held{false};
    std::thread t([&] {
        auto c = locks.arrive("ext-c");
        locks.hold(c, {"guid-2"});
        c_held = true;
    });
    std::this_thread::sleep_for(50ms);
    EXPECT_FALSE(c_held) << "guid-2 is held by another change";
    a.reset();
    t.join();
    EXPECT_TRUE(c_held);
}

}  // namespace
}  // namespace pwsync::gateway
