// Edits a store's raw tables through its backend, underneath the store:
// for tests of records that no longer decode or indexes that disagree.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "backend.h"

namespace pwsync::store::testing {

// The store must be closed (LMDB forbids two opens of one environment in a
// process).
template <class F>
void raw_edit(const std::string& uri, F edit) {
    auto where = resolve_backend(uri);
    ASSERT_TRUE(where) << where.error().message;
    auto backend = where->type->open(where->location);
    ASSERT_TRUE(backend) << backend.error().message;
    auto txn = (*backend)->begin(true);
    ASSERT_TRUE(txn) << txn.error().message;
    edit(**txn);
    ASSERT_TRUE((*txn)->commit());
}

}  // namespace pwsync::store::testing
