#!/bin/bash
# The store's unit suite (every TEST_P of the store_test binary, run once per
# backend there) on the test environment's PostgreSQL: the binary picks the
# PostgreSQL backend when PWSYNC_TEST_PG_URI is set. Each test gets a schema
# of its own in the pwsync database.
#   store_postgresql.sh STORE_TEST_BINARY [gtest args...]
set -euo pipefail
[[ -n ${PWSYNC_TESTENV_STATE:-} ]] || { echo "PWSYNC_TESTENV_STATE is not set (run under ctest)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$PWSYNC_TESTENV_STATE/env.sh"
[[ -n ${PWSYNC_TEST_PG_URI:-} ]] || { echo "the test environment has no PostgreSQL" >&2; exit 1; }
bin=$1
shift
exec "$bin" --gtest_filter='Backends/*:Pg/*' "$@"
