#!/bin/bash
# Protocol abuse against a running pwsyncd (the cases are in
# protocol_abuse.py): bind before TLS, oversized and truncated messages,
# principals acting outside their adapter or posing as a DC, a flood of
# failed binds, thousands of idle connections. Then: nothing was stored or
# sent for any of it, the store verifies, the daemon did not crash.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail
die() { echo "protocol_abuse: $*" >&2; exit 2; }
[[ ${PWSYNC_NETNS:-} == 1 ]] || die "run inside testenv/netns"
# shellcheck source=/dev/null
source "${PWSYNC_TESTENV_STATE:?}/env.sh"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/gateway.sh
source "$here/../../testenv/lib/gateway.sh"
W=$(mktemp -d "$PWSYNC_TEST_TMP/abuse.XXXXXX")
trap 'gw_stop; rm -rf "$W"' EXIT

gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
P=$GW_PWSYNC
# A user mapped only in an application of another adapter.
$P app create OTHER >/dev/null
$P adapter create other --type exec --property "program=/bin/true" --sync-to-adapter --sync-from-adapter >/dev/null
$P adapter add-app other OTHER >/dev/null && $P adapter enable other >/dev/null
$P mapping create --app OTHER --windows "$PWSYNC_TEST_DC_DOMAIN\\dora" --external OTHER-ONLY >/dev/null
gw_start || die "could not start the gateway"
$P audit --json >"$W/audit-before.json"

rc=0
GW_LDAPS_PORT=1636 GW_LDAP_PORT=1389 GW_CA=$PWSYNC_TEST_CA GW_AGENT_SECRET=$W/gw/agent.secret \
GW_DC_SECRET=$W/gw/dc1.secret GW_DOMAIN=$PWSYNC_TEST_DC_DOMAIN GW_PID=$GW_PID \
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-2000} python3 "$here/protocol_abuse.py" || rc=1

fail() { echo "FAIL: $*" >&2; rc=1; }
kill -0 "$GW_PID" 2>/dev/null && echo "PASS: pwsyncd is still running" || fail "pwsyncd died"
$P queue list --json | python3 -c 'import json,sys; q=json.load(sys.stdin); sys.exit(1 if q["queued"] or q["dead_letters"] else 0)' &&
    echo "PASS: nothing was queued for any of it" || fail "something was queued"
$P audit --json >"$W/audit-after.json"
python3 - "$W/audit-before.json" "$W/audit-after.json" <<'PY' && echo "PASS: the audit records no change or job" || fail "the audit records a change"
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
new = after[len(before):] if isinstance(after, list) else []
bad = [r for r in new if r["action"].startswith(("change.", "job.", "capture."))]
print("\n".join(f"  {r['action']} {r['object']}" for r in bad))
sys.exit(1 if bad else 0)
PY
"$P" store verify >/dev/null && echo "PASS: the store verifies" || fail "store verify"
for p in Plain-Text-Attempt.1 Not-Yours-At-All.7 Posing-As-Windows.8 Posing-As-Windows.9 Dc-Naming-External.1; do
    if grep -rqF -- "$p" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit-after.json" "$W/gw/store"; then
        fail "the password $p is in the log, the audit or the store"
    fi
done
grep -iE 'sanitizer|terminate' "$W/gw/pwsyncd.stderr" && fail "pwsyncd reported an error on stderr"
[ "$rc" = 0 ] && echo "protocol_abuse: all passed"
exit $rc
