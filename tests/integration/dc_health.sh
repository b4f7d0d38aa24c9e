#!/bin/bash
# Which DC is not capturing, and putting stale accounts right (issue 18),
# against the real Samba AD DC: a change made with no capture hook in the
# DC's slot marks the account's mapping stale and names the DC it was made
# on (from the password's replication metadata); `pwsync status`, /metrics
# and cn=monitor give that DC's verdict; `pwsync stale list` shows the
# account; `pwsync stale expire` sets "must change password at next logon"
# (pwdLastSet 0, read back from AD); the next change, captured, brings the
# mapping back in step; `pwsync stale clear` after an out-of-band fix. No
# password in the log, the audit, the store or the commands' output.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin dc_health netns env bin gateway

W=$(mktemp -d "$PWSYNC_TEST_TMP/dchealth.XXXXXX")
BASE=$PWSYNC_TEST_DC_BASE
DC=${PWSYNC_TEST_DC_HOST,,}
U=dch$RANDOM
U2=dcx$RANDOM  # an account with no mapping
cleanup() {
    gw_stop
    "$PWSYNC_TEST_SAMBA_TOOL" user delete "$U" >/dev/null 2>&1
    "$PWSYNC_TEST_SAMBA_TOOL" user delete "$U2" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT

gw_setup "$W/gw" || die "could not set up the gateway"
newpw P0 'Dch-Start.1a'
ad_add_user "$U" "$P0" || die "cannot create the AD user $U"
P=$GW_PWSYNC
CONF=$W/gw/pwsyncd.conf
printf '[monitor]\nhttp = 127.0.0.1:9464\n' >>"$CONF"

# One application behind an exec adapter that records a hash of what it got.
cat >"$W/rec.sh" <<'SH'
#!/bin/sh
read -r pw
printf '%s %s\n' "$1" "$(printf '%s' "$pw" | sha256sum | cut -c1-16)" >>"$(dirname "$0")/rec.log"
SH
chmod 0700 "$W/rec.sh"
$P sync enable windows >/dev/null
$P adapter create rec --type exec --property "program=$W/rec.sh" --sync-to-adapter --retry-delay 1 >/dev/null
$P adapter enable rec >/dev/null
$P app create APP-DCH >/dev/null && $P adapter add-app rec APP-DCH >/dev/null
$P mapping create --app APP-DCH --windows "$PWSYNC_TEST_DC_DOMAIN\\$U" --external "ext-$U" --config "$CONF" >/dev/null ||
    die "cannot map $U"
$P principal create dc1 --kind windows --capture pre-commit <"$W/gw/dc1.secret" >/dev/null
$P principal create ldap-agent --kind adapter --adapter rec <"$W/gw/agent.secret" >/dev/null
(umask 077 && printf '%s' 'Dch-Monitor-Secret-1' >"$W/monitor.secret")
$P principal create nagios --kind monitor <"$W/monitor.secret" >/dev/null
gw_start || die "could not start the gateway"

hash_of() { printf '%s' "$1" | sha256sum | cut -c1-16; }
delivered() { grep -q "^ext-$U $(hash_of "$1")\$" "$W/rec.log" 2>/dev/null; }
stale_json() { $P stale list --json; }
is_stale() { stale_json | python3 -c 'import json,sys; sys.exit(0 if any(a["account"].lower().endswith(sys.argv[1]) for a in json.load(sys.stdin)) else 1)' "\\$U"; }
# dc_field FIELD: the field of this DC in `pwsync status --json`.
dc_field() { $P status --json | python3 -c 'import json,sys
for d in json.load(sys.stdin)["domain_controllers"]:
    if d["dc"] == sys.argv[1]: print(d[sys.argv[2]])' "$DC" "$1"; }
not_stale() { ! is_stale; }
# dc_is VERDICT CAPTURED UNCAPTURED_24H: the DC's line in `pwsync status --json`.
dc_is() { [ "$(dc_field verdict)" = "$1" ] && [ "$(dc_field captured)" = "$2" ] && [ "$(dc_field uncaptured_24h)" = "$3" ]; }
metrics() { exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3; }
monitor() { ldapsearch -LLL -x -o nettimeout=10 -H ldaps://127.0.0.1:1636 -D cn=nagios -y "$W/monitor.secret" -b "cn=$DC,cn=dcs,cn=monitor" -s base; }
pwd_last_set() { ldapsearch -LLL -x -o nettimeout=10 -H "$PWSYNC_TEST_DC_URI" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" \
    -b "CN=$U,CN=Users,$BASE" -s base pwdLastSet | sed -n 's/^pwdLastSet: //p'; }

# ---- a change made where no hook captures: stale, and the DC named ----
rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
newpw P1 'Dch-Uncaptured.2b'
ad_admin_reset "$U" "$P1" >/dev/null 2>&1 || bad "AD refused the uncaptured reset"
check "an uncaptured change marks the mapping stale (stale list shows the account)" wait_for 15 is_stale
stale_json >"$W/stale.json"
check "  ... stale list names the DC the change was made on ($DC)" python3 -c 'import json,sys
a = [x for x in json.load(open(sys.argv[1])) if x["account"].lower().endswith(sys.argv[2])][0]
sys.exit(0 if a["dc"] == sys.argv[3] and a["applications"] == ["APP-DCH"] and a["since"] else 1)' "$W/stale.json" "\\${U,,}" "$DC"
$P stale list >"$W/stale.txt"
check "  ... and in text: account, application, DC" grep -Eq "^$PWSYNC_TEST_DC_DOMAIN\\\\$U +APP-DCH +[0-9T:Z-]+ +$DC" "$W/stale.txt"
check "the audit says which DC the uncaptured change came from" bash -c "'$P' audit | grep change.uncaptured | grep -i '$U' | grep -q 'made on DC $DC'"
check "pwsync status: the DC is silent (1 uncaptured, none captured)" dc_is silent 0 1
$P status >"$W/status.txt"
check "  ... and in text" grep -Eq "^$DC +1 +0 +1 +1 +- +silent" "$W/status.txt"
metrics >"$W/metrics.txt" || true
check "/metrics: the DC's uncaptured change is counted" grep -q "^pwsync_dc_password_changes_total{dc=\"$DC\",captured=\"false\"} 1\$" "$W/metrics.txt"
check "/metrics: the DC's verdict is silent" grep -q "^pwsync_dc_capture_verdict{dc=\"$DC\",verdict=\"silent\"} 1\$" "$W/metrics.txt"
monitor >"$W/monitor.ldif" 2>&1
check "cn=monitor: the DC's entry says silent" grep -q '^pwsyncVerdict: silent' "$W/monitor.ldif"

# ---- stale expire: must change password at next logon ----
before=$(pwd_last_set)
$P stale expire --dry-run "$U" --config "$CONF" >"$W/out" 2>&1
check "stale expire --dry-run says what it would do" grep -q "would set" "$W/out"
check "  ... and changes nothing in AD (pwdLastSet $before)" bash -c "[ '$before' != 0 ] && [ '$(pwd_last_set)' = '$before' ]"
if $P stale expire "$U" --config "$CONF" >"$W/out" 2>&1; then ok "stale expire succeeds"; else bad "stale expire failed" "$W/out"; fi
check "  ... AD now has pwdLastSet 0 (read back with ldapsearch)" [ "$(pwd_last_set)" = 0 ]
check "  ... audited per account" bash -c "'$P' audit | grep stale.expire | grep -qi '$U'"
sleep 2   # the watcher is woken by the DC within milliseconds
check "  ... a bare pwdLastSet 0 is no password change: nothing new uncaptured" [ "$(dc_field uncaptured)" = 1 ]
$P stale expire nobody-here --config "$CONF" >"$W/out" 2>&1
check "stale expire of an account that is not stale fails and says so" grep -q "no stale mapping" "$W/out"

# ---- the user's next change, captured: in step again ----
gw_hook_on() { ln -sf "$W/gw/hook" "$PWSYNC_TEST_CPS_HOOK_DIR/hook"; }
gw_hook_on
newpw P2 'Dch-Captured.3c'
ad_admin_reset "$U" "$P2" >/dev/null 2>&1 || bad "AD refused the captured reset"
if t=$(wait_for 15 delivered "$P2"); then ok "the next change, captured, is delivered (${t} ms)"; else bad "the captured change was not delivered"; fi
check "  ... and the mapping is no longer stale" wait_for 5 not_stale
check "pwsync status: the DC is now partly capturing (1 captured, 1 not)" dc_is partly 1 1
check "  ... the last capture came from principal dc1" [ "$(dc_field last_capture_principal)" = dc1 ]
metrics >"$W/metrics.txt" || true
check "/metrics: the captured change is counted" grep -q "^pwsync_dc_password_changes_total{dc=\"$DC\",captured=\"true\"} 1\$" "$W/metrics.txt"
check "/metrics: the store's writer counts the capture's commit" grep -Eq "^pwsync_store_write_batches_total [1-9][0-9]*$" "$W/metrics.txt"

# ---- an unmapped account's change says nothing of the DC ----
# Its capture is answered no_mapping and never kept: it could never count
# as captured, so it must not count as uncaptured either.
newpw P4 'Dch-Unmapped.5e'
ad_add_user "$U2" "$P4" || bad "cannot create the unmapped AD user $U2"
newpw P5 'Dch-Unmapped.6f'
ad_admin_reset "$U2" "$P5" >/dev/null 2>&1 || bad "AD refused the unmapped account's reset"
unmapped_seen() { "$P" audit | grep change.uncaptured | grep -qi "$U2"; }
check "the watcher saw the unmapped account's change (audited)" wait_for 15 unmapped_seen
check "  ... and it does not count against the DC (still 1 captured, 1 not: partly)" dc_is partly 1 1

# ---- stale clear after an out-of-band fix ----
rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
newpw P3 'Dch-Uncaptured.4d'
ad_admin_reset "$U" "$P3" >/dev/null 2>&1 || bad "AD refused the second uncaptured reset"
check "a second uncaptured change: stale again" wait_for 15 is_stale
$P stale clear >"$W/out" 2>&1
rc=$?
check "stale clear without an account or --all is a usage error (exit 2)" [ "$rc" = 2 ]
if $P stale clear "$PWSYNC_TEST_DC_DOMAIN\\$U" >"$W/out" 2>&1; then ok "stale clear succeeds"; else bad "stale clear failed" "$W/out"; fi
check "  ... the account is no longer stale" not_stale
check "  ... audited" bash -c "'$P' audit | grep stale.clear | grep -qi '$U'"
check "  ... stale list is empty" bash -c "[ \"\$('$P' stale list --json)\" = '[]' ]"
gw_hook_on

# ---- no password anywhere it must not be ----
"$P" audit --json >"$W/audit.json"
$P status --json >"$W/status.json"
harness_secrets "$W/leak-secrets" "${USED_PASSWORDS[@]}" "Dc1-Capture-Secret-1" "Ldap-Agent-Secret-1" "Dch-Monitor-Secret-1"
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit.json" "$W/status.json" \
    "$W/stale.json" "$W/stale.txt" "$W/status.txt" "$W/metrics.txt" "$W/monitor.ldif" "$W/out" "$W/gw/store")
check "no password in the daemon's log, the audit, the store or the commands' output (${#USED_PASSWORDS[@]} checked)" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

harness_end
