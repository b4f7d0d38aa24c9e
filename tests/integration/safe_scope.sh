#!/bin/bash
# Safe scope and temporary passwords (issue 17), against the real Samba AD
# DC: a privileged account (a nested member of Domain Admins) is refused as a
# mapping unless the application allows it (audited); an account that
# becomes privileged after it was mapped is not sent to; a disabled account's
# change is not delivered, and once enabled again the next change is; a reset
# with "must change password at next logon" is held by an adapter with
# temporary-passwords = hold (mapping awaiting-change) and sent by one with
# send, and the user's own change (kpasswd, as the user) then reaches both.
# No password in the log, the audit or the store.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin safe_scope netns env bin gateway

W=$(mktemp -d "$PWSYNC_TEST_TMP/safescope.XXXXXX")
BASE=$PWSYNC_TEST_DC_BASE
DNS=$PWSYNC_TEST_DC_DNS_DOMAIN
S=$RANDOM
PA=ssa$S PB=ssb$S DU=ssd$S TU=sst$S G=ssg$S
tool() { "$PWSYNC_TEST_SAMBA_TOOL" "$@" >/dev/null 2>&1; }
cleanup() {
    gw_stop
    for n in "$PA" "$PB" "$DU" "$TU"; do tool user delete "$n"; done
    tool group delete "$G"
    rm -rf "$W"
}
trap cleanup EXIT
# reset_must_change USER PASSWORD: a helpdesk reset with "user must change
# password at next logon" (unicodePwd and pwdLastSet 0 in one modify).
reset_must_change() {
    printf 'dn: CN=%s,CN=Users,%s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\nreplace: pwdLastSet\npwdLastSet: 0\n-\n' \
        "$1" "$BASE" "$(ad_unicode_pwd "$2")" | ad_ldif
}

gw_setup "$W/gw" || die "could not set up the gateway"
newpw P0 'Scope-Start.1a'
for u in "$PA" "$PB" "$DU" "$TU"; do ad_add_user "$u" "$P0" || die "cannot create the AD user $u"; done
# PA is in Domain Admins through a group of this test's own (nested membership).
tool group add "$G" && tool group addmembers "Domain Admins" "$G" && tool group addmembers "$G" "$PA" ||
    die "cannot make $PA a nested member of Domain Admins"
P=$GW_PWSYNC
CONF=$W/gw/pwsyncd.conf   # has the [directory]: the CLI looks accounts up at creation

# Exec adapters that record which external account got which password (a
# hash of it, never the password): rec sends temporary passwords, rec-hold holds them.
cat >"$W/rec.sh" <<'SH'
#!/bin/sh
read -r pw
printf '%s %s\n' "$1" "$(printf '%s' "$pw" | sha256sum | cut -c1-16)" >>"$(dirname "$0")/rec.log"
SH
chmod 0700 "$W/rec.sh"
$P sync enable windows >/dev/null
$P adapter create rec --type exec --property "program=$W/rec.sh" --sync-to-adapter --retry-delay 1 >/dev/null
$P adapter create rec-hold --type exec --property "program=$W/rec.sh" --property temporary-passwords=hold \
    --sync-to-adapter --retry-delay 1 >/dev/null
for a in rec rec-hold; do $P adapter enable "$a" >/dev/null; done
$P adapter create rec-bad --type exec --property "program=$W/rec.sh" --property temporary-passwords=sometimes >"$W/out" 2>&1
check "temporary-passwords takes send or hold only (exit 1)" [ $? = 1 ]
check "  ... and says so" grep -q "temporary-passwords: expected send or hold" "$W/out"
for app in SEND ADMINS; do $P app create "$app" >/dev/null && $P adapter add-app rec "$app" >/dev/null; done
$P app create HOLD >/dev/null && $P adapter add-app rec-hold HOLD >/dev/null

# ---- privileged accounts refused as mappings unless the application allows them ----
$P mapping create --app ADMINS --windows "$PA" --external pa --config "$CONF" >"$W/out" 2>&1
check "mapping a nested member of Domain Admins is refused (exit 1)" [ $? = 1 ]
check "  ... the error names the account, the protected group and the way out" \
    bash -c "grep -q '$PA is a privileged account' '$W/out' && grep -q 'member of Domain Admins (S-1-5-21-' '$W/out' && grep -q -- '--allow-privileged' '$W/out'"
check "  ... and no mapping was made" [ "$($P mapping list --app ADMINS --json)" = "[]" ]
printf 'windows,external\n%s,pb\n%s,pa\n' "$PB" "$PA" >"$W/map.csv"
$P mapping import --app ADMINS "$W/map.csv" --config "$CONF" >"$W/out" 2>&1
check "a CSV import with a privileged account is refused (exit 1)" [ $? = 1 ]
check "  ... all or nothing: nothing imported" [ "$($P mapping list --app ADMINS --json)" = "[]" ]
$P mapping create --app SEND --windows Administrator --external adm --config "$CONF" >"$W/out" 2>&1
check "the built-in Administrator is refused too" grep -q "privileged account" "$W/out"
$P app update ADMINS --allow-privileged >/dev/null
check "allowing privileged accounts is audited" bash -c "'$P' audit | grep app.update | grep ADMINS | grep -q 'privileged accounts allowed'"
check "app show says so" bash -c "'$P' app show ADMINS | grep -q 'privileged:  allowed'"
check "with --allow-privileged the mapping is made" "$P" mapping create --app ADMINS --windows "$PA" --external pa --config "$CONF"
check "  ... and audited as privileged" bash -c "'$P' audit | grep mapping.privileged | grep -q 'Domain Admins'"
for u in "$PB" "$DU"; do $P mapping create --app SEND --windows "$u" --external "ext-$u" --config "$CONF" >/dev/null || die "cannot map $u"; done
$P mapping create --app SEND --windows "$TU" --external tu-send --config "$CONF" >/dev/null || die "cannot map $TU"
$P mapping create --app HOLD --windows "$TU" --external tu-hold --config "$CONF" >/dev/null || die "cannot map $TU"
$P principal create dc1 --kind windows --capture pre-commit <"$W/gw/dc1.secret" >/dev/null
$P principal create ldap-agent --kind adapter --adapter rec <"$W/gw/agent.secret" >/dev/null  # gw_start binds as it
gw_start || die "could not start the gateway"

hash_of() { printf '%s' "$1" | sha256sum | cut -c1-16; }
got() { grep -q "^$1 $(hash_of "$2")\$" "$W/rec.log" 2>/dev/null; }
audited() { "$P" audit | grep "$1" | grep -F -- "$2" | grep -qF -- "$3"; }
status_of() { "$P" mapping show --app "$1" --windows "$2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])'; }
status_is() { [ "$(status_of "$1" "$2")" = "$3" ]; }
# not_sent USER REASON WHAT: USER's change in SEND is audited change.not-sent
# with REASON, is not delivered, and leaves its mapping stale.
not_sent() {
    check "$3" wait_for 15 audited change.not-sent "SEND/$1" "$2"
    sleep 2
    check "  ... nothing was delivered" bash -c "! grep -q 'ext-$1' '$W/rec.log'"
    check "  ... and its mapping is stale" status_is SEND "$1" stale
}

# ---- delivery: an allowed privileged account syncs ----
newpw A1 'Scope-Admin.2b'
ad_admin_reset "$PA" "$A1" >/dev/null 2>&1 || bad "AD refused the reset of $PA"
check "a privileged account's change reaches an application that allows it" wait_for 15 got pa "$A1"

# ---- an account that becomes privileged after it was mapped: held ----
tool group addmembers "$G" "$PB" || bad "cannot add $PB to $G"
newpw B1 'Scope-Became.3c'
ad_admin_reset "$PB" "$B1" >/dev/null 2>&1 || bad "AD refused the reset of $PB"
not_sent "$PB" "privileged account" "a change of an account that became privileged is not sent (audit change.not-sent)"

# ---- a disabled account is not synced ----
tool user disable "$DU" || bad "cannot disable $DU"
newpw D1 'Scope-Disabled.4d'
ad_admin_reset "$DU" "$D1" >/dev/null 2>&1 || bad "AD refused the reset of the disabled $DU"
not_sent "$DU" "account disabled" "a disabled account's change is not sent (audit change.not-sent, with the reason)"
tool user enable "$DU" || bad "cannot enable $DU"
sleep 1
check "enabling it again sends nothing by itself" bash -c "! grep -q 'ext-$DU' '$W/rec.log'"
newpw D2 'Scope-Enabled.5e'
ad_admin_reset "$DU" "$D2" >/dev/null 2>&1 || bad "AD refused the reset of $DU"
check "once enabled, the next change is delivered" wait_for 15 got "ext-$DU" "$D2"
check "  ... and the mapping is ok again" wait_for 5 status_is SEND "$DU" ok

# ---- temporary passwords: hold and send ----
newpw T1 'Scope-Temp.6f'
reset_must_change "$TU" "$T1" || bad "AD refused the must-change reset of $TU"
check "a must-change reset reaches the adapter with temporary-passwords = send" wait_for 15 got tu-send "$T1"
check "  ... the other adapter holds it (audit change.held)" wait_for 10 audited change.held "HOLD/$TU" "temporary password"
sleep 2
check "  ... not delivered there" bash -c "! grep -q '^tu-hold ' '$W/rec.log'"
check "  ... mapping show says awaiting-change" status_is HOLD "$TU" awaiting-change
check "  ... mapping list too" bash -c "'$P' mapping list --app HOLD | grep '$TU' | grep -q awaiting-change"
check "  ... pwsync status counts it" bash -c "'$P' status | grep -q \"awaiting the user's change: 1\""
check "  ... pwsync status --json too" bash -c \
    "[ \"\$('$P' status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"awaiting_change_mappings\"])')\" = 1 ]"
check "  ... the sending mapping is ok" status_is SEND "$TU" ok
# The user's own change, as the user: kinit's expired-password change (kpasswd).
newpw T2 'Scope-Users-Own.7g'
printf '%s\n%s\n%s\n' "$T1" "$T2" "$T2" |
    KRB5_CONFIG=$PWSYNC_TESTENV_STATE/krb5.conf KRB5CCNAME=FILE:$W/krb5cc kinit "$TU@${DNS^^}" >"$W/kinit.out" 2>&1
check "the user changes the temporary password (kinit, kpasswd)" grep -q "You must change it now" "$W/kinit.out"
check "the user's own change reaches the holding adapter" wait_for 15 got tu-hold "$T2"
check "  ... and the sending one" wait_for 5 got tu-send "$T2"
check "  ... the mapping is no longer awaiting" wait_for 5 status_is HOLD "$TU" ok
check "the store verifies" "$P" store verify

# ---- no password anywhere it must not be ----
"$P" audit --json >"$W/audit.json"
harness_secrets "$W/leak-secrets" "${USED_PASSWORDS[@]}"
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit.json" "$W/gw/store" "$W/rec.log")
check "no password in the daemon's log, the audit or the store files (${#USED_PASSWORDS[@]} checked)" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

harness_end
