#!/bin/bash
# The gateway end to end, against the real Samba AD DC and slapd: all three
# sync modes, pre-commit capture (also of a reset with "must change at next
# logon"), echo, verify-old-password, conflicts of
# direction, a target down, kill -9 between accepting and delivering,
# supersede, and no password left in the log, the audit or the store.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin gateway_e2e netns env bin gateway

W=$(mktemp -d "$PWSYNC_TEST_TMP/gateway.XXXXXX")
# In $(...) a function cannot remember: such passwords are listed here.
newpw_echo() { printf '%s' "$1"; }
USED_PASSWORDS+=('Green-Field.88q' 'Some-Thing.99k' 'Orange-Sky.42v' 'Yellow-Sun.43u')
mainframe_has() { grep -q "^$1 $(printf '%s' "$2" | sha256sum | cut -c1-16)\$" "$W/gw/mainframe.log" 2>/dev/null; }
cleanup() {
    gw_stop
    # Leave slapd running for the tests after this one.
    "$here/../../testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT

# The test starts from the users' first passwords: after an earlier run in
# this environment (the other store backend's), AD (whose history would
# refuse this run's passwords) and slapd go back to their first state.
GW_WORK=$W
if ! ldap_bind_ok "$PWSYNC_TEST_DC_URI" "$PWSYNC_TEST_DC_DN_ALICE" "$PWSYNC_TEST_DC_PASSWORD_ALICE" ||
   ! ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$PWSYNC_TEST_LDAP_PASSWORD_ALICE"; then
    "$here/../../testenv/env" reset-directories "$PWSYNC_TESTENV_STATE" >"$W/reset.log" 2>&1 ||
        { cat "$W/reset.log" >&2; die "could not reset the directories"; }
fi
gw_setup "$W/gw" && gw_configure && gw_start || die "could not start the gateway"
P=$GW_PWSYNC
AD=$PWSYNC_TEST_DC_URI
EXT=$PWSYNC_TEST_LDAP_URI

# ---- Windows -> External, pre-commit capture confirmed by the watcher ----
newpw A1 'Wonder-Land.2024x'
if ad_user_change alice "$PWSYNC_TEST_DC_PASSWORD_ALICE" "$A1" >/dev/null 2>&1; then
    if t=$(wait_for 10 ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A1"); then
        ok "Windows -> External: a user's own change in AD reaches slapd (${t} ms)"
    else bad "Windows -> External: slapd did not get alice's new password"; fi
    check "Windows -> External: the other application got it too" wait_for 5 mainframe_has ALICE "$A1"
    check "the stored credential follows" bash -c "'$P' mapping show --app LINUX-LDAP --windows 'TEST\\alice' --reveal --json | grep -qF '\"password\": \"$A1\"'"
else
    bad "alice could not change her password in AD"
fi

# ---- a password AD refuses (history) never reaches an external system ----
newpw A2 'Wonder-Land.2025y'
ad_user_change alice "$A1" "$A2" >/dev/null 2>&1
wait_for 10 ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A2" >/dev/null
RC=0
ad_user_change alice "$A2" "$A1" >"$W/out" 2>&1 || RC=$?   # A1 is in AD's history
check "AD refuses a password from its history (rc 19)" [ "$RC" = 19 ]
sleep 6   # past a watcher poll (poll-interval 5)
if ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A2" && ! ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A1"; then
    ok "slapd still holds the password AD accepted, not the one it refused"
else bad "a refused password reached slapd"; fi

# ---- External -> Windows, full: AD set, sent on, not bounced back ----
newpw B1 'Blue-Ocean.77z'
gw_passwd bob "$PWSYNC_TEST_LDAP_PASSWORD_BOB" "$B1"
check "full sync: ldappasswd to the gateway succeeds" [ "$RC" = 0 ]
check "full sync: AD accepts the new password" ldap_bind_ok "$AD" "$PWSYNC_TEST_DC_DN_BOB" "$B1"
check "full sync: sent on to the user's other application" wait_for 5 mainframe_has BOB "$B1"
sleep 1
check "full sync: not bounced back to the origin (slapd unchanged)" ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_BOB" "$PWSYNC_TEST_LDAP_PASSWORD_BOB"

# ---- verify-old-password, policy refusal, no mapping ----
gw_passwd bob 'Not-The-Old-One.1' "$(newpw_echo 'Green-Field.88q')"
check "verify-old-password: a wrong old password gives 49" [ "$RC" = 49 ]
gw_passwd bob "$B1" "$(newpw_echo 'short')"
check "AD policy refusal comes back as 19 with AD's code" bash -c "[ $RC = 19 ] && grep -q 0000052D '$GW_WORK/passwd.out'"
check "  ... and nothing was stored" bash -c "'$P' mapping show --app LINUX-LDAP --windows 'TEST\\bob' --reveal --json | grep -q '\"password\": \"$B1\"'"
gw_passwd nobody 'x' "$(newpw_echo 'Some-Thing.99k')"
check "no mapping gives 32" [ "$RC" = 32 ]

# ---- adapter disabled; one external user mapped twice ----
$P adapter disable ext-ldap >/dev/null
gw_passwd bob "$B1" "$(newpw_echo 'Orange-Sky.42v')"
check "a disabled adapter's change gives 53" [ "$RC" = 53 ]
$P adapter enable ext-ldap >/dev/null
$P adapter update ext-ldap --allow-mapping-conflicts >/dev/null
$P mapping create --app LINUX-LDAP --windows 'TEST\dora' --external bob >/dev/null
$P adapter update ext-ldap --allow-mapping-conflicts=no >/dev/null 2>&1
check "turning conflicts off while one exists is refused" bash -c "'$P' adapter show ext-ldap --json | grep -q '\"allow_mapping_conflicts\": true'"
$P adapter update ext-ldap --verify-old-password=no >/dev/null
$P sync disable full >/dev/null
gw_passwd bob "" "$(newpw_echo 'Orange-Sky.42v')"
check "a change for an external user mapped twice is applied to both with allow-mapping-conflicts" [ "$RC" = 0 ]
check "  ... the second mapping got it too" bash -c "'$P' mapping show --app LINUX-LDAP --windows 'TEST\\dora' --reveal --json | grep -qF 'Orange-Sky.42v'"
$P mapping delete --app LINUX-LDAP --windows 'TEST\dora' >/dev/null
$P adapter update ext-ldap --allow-mapping-conflicts=no --verify-old-password=yes >/dev/null
$P sync enable full >/dev/null
printf '%s' "$B1" | $P mapping set-credentials --app LINUX-LDAP --windows 'TEST\bob' >/dev/null

# ---- External -> Windows, partial: the store only ----
$P adapter update ext-ldap --change-windows-password=no >/dev/null
newpw C1 'Purple-Rain.31w'
gw_passwd carol "$PWSYNC_TEST_LDAP_PASSWORD_CAROL" "$C1"
check "partial sync succeeds" [ "$RC" = 0 ]
check "partial sync: the store has it" bash -c "'$P' mapping show --app LINUX-LDAP --windows 'TEST\\carol' --reveal --json | grep -q '\"password\": \"$C1\"'"
check "partial sync: AD does not" ldap_bind_ok "$AD" "$PWSYNC_TEST_DC_DN_CAROL" "$PWSYNC_TEST_DC_PASSWORD_CAROL"
$P sync disable partial >/dev/null
gw_passwd carol "$C1" "$(newpw_echo 'Yellow-Sun.43u')"
check "direction switched off gives 53" [ "$RC" = 53 ]
$P sync enable partial >/dev/null
$P adapter update ext-ldap --change-windows-password=yes >/dev/null

# ---- slapd down: the change waits in the queue, then arrives ----
"$here/../../testenv/env" stop-slapd "$PWSYNC_TESTENV_STATE" >/dev/null
newpw C2 'Silver-Moon.53t'
ad_user_change carol "$PWSYNC_TEST_DC_PASSWORD_CAROL" "$C2" >/dev/null 2>&1
check "with slapd down, the change is queued" wait_for 10 bash -c "'$P' queue list --json | grep -q '\"external\": \"carol\"'"
# kill -9 between accepting and delivering; a newer change supersedes it.
kill -9 "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=
gw_start || bad "pwsyncd did not restart after kill -9"
newpw C3 'Golden-Gate.64s'
ad_user_change carol "$C2" "$C3" >/dev/null 2>&1
sleep 2
"$here/../../testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null
if t=$(wait_for 20 ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_CAROL" "$C3"); then
    ok "after kill -9 and slapd's return, the newest password arrives (${t} ms after slapd started)"
else bad "the queued change did not arrive after slapd came back"; fi
if ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_CAROL" "$C2"; then bad "slapd ended with the superseded password"
else ok "the superseded older password is not what slapd holds"; fi
check "the audit shows the superseded job" bash -c "'$P' audit | grep -q job.superseded"
check "the queue is empty again" wait_for 5 bash -c "'$P' queue list --json | grep -q '\"queued\": \\[\\]'"
check "the store verifies" "$P" store verify

# ---- Windows -> External latency, median of 20 changes ----
prev=$A2
times=()
for i in $(seq 1 20); do
    newpw next "Latency-Run.${i}x$RANDOM"
    ad_user_change alice "$prev" "$next" >/dev/null 2>&1 || { bad "latency run $i: AD refused"; break; }
    if t=$(wait_for 10 ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_ALICE" "$next"); then times+=("$t"); else bad "latency run $i: slapd never got it"; fi
    prev=$next
done
if (( ${#times[@]} == 20 )); then
    sorted=$(printf '%s\n' "${times[@]}" | sort -n | tr '\n' ' ')
    echo "Windows -> External, AD change to slapd accepting it (ms, sorted): $sorted"
    ok "20 changes arrived; median $(printf '%s\n' "${times[@]}" | sort -n | sed -n 10p) ms"
fi

# ---- a helpdesk reset with "user must change password at next logon" ----
# unicodePwd and pwdLastSet 0 in one modify, as ADUC sends it: captured,
# confirmed by the watcher although pwdLastSet stays 0, delivered, and the
# audit says the password is temporary.
newpw C4 'Helpdesk-Temp.75r'
printf 'dn: %s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\nreplace: pwdLastSet\npwdLastSet: 0\n-\n' \
    "$PWSYNC_TEST_DC_DN_CAROL" "$(printf '"%s"' "$C4" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)" |
    ldapmodify -x -o nettimeout=10 -H "$AD" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" >"$W/out" 2>&1
check "AD takes a reset with must-change-at-next-logon" grep -q "modifying entry" "$W/out"
if t=$(wait_for 10 ldap_bind_ok "$EXT" "$PWSYNC_TEST_LDAP_DN_CAROL" "$C4"); then
    ok "a reset with must-change-at-next-logon reaches slapd (${t} ms)"
else bad "a reset with must-change-at-next-logon never reached slapd"; fi
check "  ... the audit says it was a temporary password" bash -c "'$P' audit | grep capture.confirmed | grep -i carol | grep -q 'temporary password'"
# Clearing the flag (pwdLastSet -1) is no password change: nothing marked stale.
printf 'dn: %s\nchangetype: modify\nreplace: pwdLastSet\npwdLastSet: -1\n-\n' "$PWSYNC_TEST_DC_DN_CAROL" |
    ldapmodify -x -o nettimeout=10 -H "$AD" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" >/dev/null 2>&1
sleep 2   # the watcher is woken by the DC within milliseconds
check "clearing must-change-at-next-logon alone is not taken for an uncaptured change" \
    bash -c "! '$P' audit | grep change.uncaptured | grep -qi carol"

# ---- the capture hook's client (pwsync-notify) alone against pwsyncd ----
# notify_run PASSWORD ARGS...: the password on stdin; exit code in $RC, output in $W/out (kept in $W/notify.log).
notify_run() {
    local pw=$1
    shift
    printf '%s' "$pw" | "$GW_NOTIFY" "$@" >"$W/out" 2>&1
    RC=$?
    cat "$W/out" >>"$W/notify.log"
}
pending_captures() { "$P" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending_captures"])'; }
hook_args=(--principal dc1 --secret-file "$W/gw/dc1.secret" --ca "$PWSYNC_TEST_CA" --timeout 5)
newpw N1 'Notify-Failover.31k'
newpw N2 'Notify-StartTls.32k'
newpw N3 'Notify-Refused.33k'
newpw N4 'Notify-BadCa.34k'
newpw N5 'Notify-Hook.35k'
before=$(pending_captures)
notify_run "$N1" --account "$PWSYNC_TEST_DC_DOMAIN\\bob" --gateway ldaps://127.0.0.1:1 --gateway ldaps://127.0.0.1:1636 "${hook_args[@]}"
check "pwsync-notify: the first gateway unreachable, the second stores the change (exit $RC)" \
    bash -c "[ $RC = 0 ] && grep -q '^stored by ldaps://127.0.0.1:1636' '$W/out'"
check "  ... which pwsyncd holds as a pending capture" [ "$(pending_captures)" -gt "$before" ]
notify_run "$N2" --account "$PWSYNC_TEST_DC_DOMAIN\\bob" --gateway ldap://127.0.0.1:1389 "${hook_args[@]}" --quiet
check "pwsync-notify over ldap:// with StartTLS (exit $RC, quiet)" bash -c "[ $RC = 0 ] && [ ! -s '$W/out' ]"
(umask 077 && printf '%s' 'Not-The-Dc1-Secret.9' >"$W/wrong.secret")
notify_run "$N3" --account "$PWSYNC_TEST_DC_DOMAIN\\bob" --gateway ldaps://127.0.0.1:1636 --gateway ldap://127.0.0.1:1389 \
    --principal dc1 --secret-file "$W/wrong.secret" --ca "$PWSYNC_TEST_CA"
check "pwsync-notify: a wrong principal secret is a refusal (exit $RC = 1), the failover stops there" \
    bash -c "[ $RC = 1 ] && grep -q 'invalid credentials (49)' '$W/out' && ! grep -q 1389 '$W/out'"
notify_run "$N3" --account "$PWSYNC_TEST_DC_DOMAIN\\bob" --gateway ldaps://127.0.0.1:1636 \
    --principal cn=ldap-agent --secret-file "$W/gw/agent.secret" --ca "$PWSYNC_TEST_CA"
check "pwsync-notify: a change the gateway refuses (an adapter's principal naming a Windows account) exits 1" \
    bash -c "[ $RC = 1 ] && grep -q 'refused the change ([0-9]*)' '$W/out'"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/other-ca.key" -out "$W/other-ca.pem" -subj /CN=another-ca -days 1 \
    >/dev/null 2>&1
notify_run "$N4" --account "$PWSYNC_TEST_DC_DOMAIN\\bob" --gateway ldaps://127.0.0.1:1636 --principal dc1 \
    --secret-file "$W/gw/dc1.secret" --ca "$W/other-ca.pem"
check "pwsync-notify: a gateway certificate of another CA is refused (exit $RC = 3)" \
    bash -c "[ $RC = 3 ] && grep -q 'certificate verify failed' '$W/out'"
# In hook mode: a password failing AD's complexity rule stops the change
# (exit 4) and never reaches the gateway; an outage of the first gateway
# does not show at all.
before=$(pending_captures)
SAMBA_CPS_ACCOUNT_NAME=bob notify_run 'bobBOB-1234' --samba-hook --config "$W/gw/hook.conf"
check "pwsync-notify --samba-hook: a password containing the account name is refused (exit $RC = 4)" \
    bash -c "[ $RC = 4 ] && grep -q 'complexity' '$W/out'"
check "  ... and never reaches the gateway" [ "$(pending_captures)" = "$before" ]
sed 's|^gateway = |gateway = ldaps://127.0.0.1:1 |' "$W/gw/hook.conf" >"$W/hook-failover.conf"
SAMBA_CPS_ACCOUNT_NAME=bob notify_run "$N5" --samba-hook --config "$W/hook-failover.conf"
check "pwsync-notify --samba-hook: the first gateway down, the second stores it silently (exit $RC)" \
    bash -c "[ $RC = 0 ] && [ ! -s '$W/out' ]"

# ---- no password anywhere it must not be ----
"$P" audit --json >"$W/audit.json"
harness_secrets "$W/leak-secrets" "${USED_PASSWORDS[@]}" "$PWSYNC_TEST_LDAP_ROOTPW" "Dc1-Capture-Secret-1" "Ldap-Agent-Secret-1"
store_files=("$W/gw/store")
if [[ ${PWSYNC_E2E_STORE:-lmdb} == postgresql ]]; then
    # The database's files, its log, and what a backup of the store holds.
    "$PWSYNC_TEST_PG_BIN/pg_dump" -d "$PWSYNC_TEST_PG_ADMIN_URI" -n "$GW_PG_SCHEMA" -f "$W/pg_dump.sql"
    check "pg_dump has the store's mappings" grep -q "pwsync_mappings" "$W/pg_dump.sql"
    store_files=("$PWSYNC_TEST_PG_DATA" "$PWSYNC_TEST_PG_LOG" "$W/pg_dump.sql")
fi
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit.json" "$W/notify.log" "${store_files[@]}")
check "no password in the daemon's log, the audit or the store files (${#USED_PASSWORDS[@]} checked)" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

# ---- the daemon's memory: no core dumps, and none of the passwords it
# handled (nor the principals' secrets it verified) left in its memory ----
check "pwsyncd runs with core dumps off (RLIMIT_CORE 0)" grep -qE '^Max core file size +0 +0 ' "/proc/$GW_PID/limits"
# Its own free() and realloc() wipe every block before glibc has it back
# (wiping_free.cpp): they must be what the libraries call, i.e. exported.
# Under AddressSanitizer its allocator fills freed blocks instead.
if readelf -d "/proc/$GW_PID/exe" | grep -q 'NEEDED.*libasan'; then
    check "pwsyncd asks AddressSanitizer to fill every freed block" \
        sh -c 'nm --defined-only "$1" | grep -qw __asan_default_options' - "/proc/$GW_PID/exe"
else
    check "pwsyncd's own free() and realloc() are the process's (interposed over glibc's)" \
        sh -c 'nm -D --defined-only "$1" | grep -qw free && nm -D --defined-only "$1" | grep -qw realloc' - "/proc/$GW_PID/exe"
fi
check "pwsyncd is named pwsyncd (ps, pgrep)" [ "$(cat "/proc/$GW_PID/comm")" = pwsyncd ]
(umask 077 && printf '%s\n' "${USED_PASSWORDS[@]}" "Dc1-Capture-Secret-1" "Ldap-Agent-Secret-1" >"$W/secrets")
if python3 "$here/memory_scan.py" "$GW_PID" "$W/secrets" >"$W/scan" 2>"$W/scan.where"; then
    ok "no password in pwsyncd's memory: $(tail -n1 "$W/scan")"
else bad "passwords remain in pwsyncd's memory: $(tr '\n' ';' <"$W/scan")"; cat "$W/scan.where" >&2; fi

harness_end
