#!/bin/bash
# Protocol abuse against a running pwsyncd (the cases are in
# protocol_abuse.py): bind before TLS, oversized and truncated messages,
# principals acting outside their adapter or posing as a DC, a flood of
# failed binds, thousands of idle connections. Then: nothing was stored or
# sent for any of it, the store verifies, the daemon did not crash.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin protocol_abuse netns env bin gateway
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

if GW_LDAPS_PORT=1636 GW_LDAP_PORT=1389 GW_CA=$PWSYNC_TEST_CA GW_AGENT_SECRET=$W/gw/agent.secret \
    GW_DC_SECRET=$W/gw/dc1.secret GW_DOMAIN=$PWSYNC_TEST_DC_DOMAIN GW_PID=$GW_PID \
    IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-2000} python3 "$here/protocol_abuse.py"; then
    ok "every abuse case of protocol_abuse.py was handled"
else bad "a case of protocol_abuse.py failed"; fi

check "pwsyncd is still running" kill -0 "$GW_PID"
check "nothing was queued for any of it" bash -c "'$P' queue list --json | python3 -c 'import json,sys; q=json.load(sys.stdin); sys.exit(1 if q[\"queued\"] or q[\"dead_letters\"] else 0)'"
$P audit --json >"$W/audit-after.json"
python3 - "$W/audit-before.json" "$W/audit-after.json" <<'PY' && ok "the audit records no change or job" || bad "the audit records a change"
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
new = after[len(before):] if isinstance(after, list) else []
bad = [r for r in new if r["action"].startswith(("change.", "job.", "capture."))]
print("\n".join(f"  {r['action']} {r['object']}" for r in bad))
sys.exit(1 if bad else 0)
PY
check "the store verifies" "$P" store verify
harness_secrets "$W/leak-secrets" Plain-Text-Attempt.1 Not-Yours-At-All.7 Posing-As-Windows.8 Posing-As-Windows.9 Dc-Naming-External.1
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit-after.json" "$W/gw/store")
check "no abuse password in the log, the audit or the store" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"
harness_end
