#!/bin/bash
# Crash test: while CHANGES Windows -> External captures over ACCOUNTS
# accounts flow to slapd (and to an exec adapter that logs what it gets, in
# order), pwsyncd is killed with SIGKILL at random moments KILLS times and
# restarted each time. The sender retries what got no answer, as the capture
# hook does. At the end: every slapd account holds exactly the last password
# sent for it, no account got an older password after a newer one, the queue
# is empty with no dead letters, `pwsync store verify` passes, and the audit
# accounts for every change (each queued job delivered or superseded).
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
# Sizes: CRASH_ACCOUNTS (200), CRASH_CHANGES (2000), CRASH_KILLS (10),
# CRASH_WORKERS (4), CRASH_SLAPD_DOWN (0: seconds slapd is stopped while
# the changes flow, before the kills). bench/crash and bench/target-down run
# longer variants.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin crash_test netns env bin gateway

ACCOUNTS=${CRASH_ACCOUNTS:-200}
CHANGES=${CRASH_CHANGES:-2000}
KILLS=${CRASH_KILLS:-10}
SLAPD_DOWN=${CRASH_SLAPD_DOWN:-0}
WORKERS=${CRASH_WORKERS:-4}
FLOOD=${CAPTURE_FLOOD:-$PWSYNC_BIN/tests/integration/capture_flood}
W=$(mktemp -d "$PWSYNC_TEST_TMP/crash.XXXXXX")
cleanup() {
    [[ -n ${FLOOD_PID:-} ]] && kill "$FLOOD_PID" 2>/dev/null
    "$here/../../testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null 2>&1
    gw_stop
    rm -rf "$W"
}
trap cleanup EXIT

gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
P=$GW_PWSYNC
run=r$RANDOM
# shellcheck source=flood_lib.sh
source "$here/flood_lib.sh"
flood_targets "$ACCOUNTS"
gw_start || die "could not start the gateway"
flood_changes "$ACCOUNTS" "$CHANGES"

t0=$(date +%s)
"$FLOOD" ldaps://127.0.0.1:1636 crash-dc "$W/crash.secret" "$PWSYNC_TEST_CA" "$WORKERS" "${CRASH_DEADLINE:-600}" <"$W/changes" \
    >"$W/flood.out" 2>"$W/flood.err" &
FLOOD_PID=$!
if (( SLAPD_DOWN > 0 )); then
    # Retries must outlast the outage (retry-delay 1 s doubles each time).
    $P adapter update ext-ldap --retry-count 12 >/dev/null
    sleep 2
    "$here/../../testenv/env" stop-slapd "$PWSYNC_TESTENV_STATE" >/dev/null || bad "cannot stop slapd"
    sleep "$SLAPD_DOWN"
    queued_then=$($P queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queued"]))')
    "$here/../../testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null || bad "cannot start slapd"
    echo "crash_test: slapd was down ${SLAPD_DOWN} s; $queued_then jobs queued when it came back"
fi
kills=0
while (( kills < KILLS )); do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + r / 32768 * 1.7 }')"
    kill -9 "$GW_PID" 2>/dev/null || { bad "pwsyncd was not running before kill $((kills + 1))"; break; }
    wait "$GW_PID" 2>/dev/null
    GW_PID=
    kills=$((kills + 1))
    gw_start || { bad "pwsyncd did not restart after kill $kills"; break; }
done
flood_rc=0
wait "$FLOOD_PID" || flood_rc=$?
FLOOD_PID=
echo "crash_test: $kills kills, $(( $(date +%s) - t0 )) s"
check "pwsyncd survived $kills kill -9 and restarts" [ "$kills" = "$KILLS" ]
flood_sent "$flood_rc" "$CHANGES"

flood_end_checks "$ACCOUNTS" "$CHANGES"
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

harness_end
