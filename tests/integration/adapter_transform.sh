#!/bin/bash
# Password transforms through a real adapter: the ldap adapter to slapd with
# password-case=upper and password-max-length=8. A change too long for it is
# a dead letter while password-truncate is off; with truncation on, slapd
# accepts the upper-cased first 8 characters. Bad transform settings are
# refused by the CLI. No password in the log or the audit.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin adapter_transform netns env bin gateway

W=$(mktemp -d "$PWSYNC_TEST_TMP/transform.XXXXXX")
cleanup() { gw_stop; "$PWSYNC_TEST_SAMBA_TOOL" user delete erin >/dev/null 2>&1; rm -rf "$W"; }
trap cleanup EXIT

# Its own AD user (erin, also in slapd), so that the other tests' users keep
# the passwords they expect whatever the order.
E0='Start-Point.1erin'
"$PWSYNC_TEST_SAMBA_TOOL" user delete erin >/dev/null 2>&1
"$PWSYNC_TEST_SAMBA_TOOL" user create erin "$E0" >/dev/null || die "cannot create the AD user erin"
export PWSYNC_TEST_DC_DN_ERIN="CN=erin,CN=Users,$PWSYNC_TEST_DC_BASE"
gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
P=$GW_PWSYNC
EXT=$PWSYNC_TEST_LDAP_URI
DN="uid=erin,$PWSYNC_TEST_LDAP_PEOPLE"
$P mapping create --app LINUX-LDAP --windows "$PWSYNC_TEST_DC_DOMAIN\\erin" --external erin >/dev/null || die "no mapping for erin"

# Bad settings: a clear one-line error naming the property, nothing changed.
if out=$($P adapter update ext-ldap --property password-case=shout 2>&1); then bad "password-case=shout was accepted"
else check "the CLI refuses password-case=shout, naming the property" grep -q "password-case" <<<"$out"; fi
if out=$($P adapter update ext-ldap --property password-truncate=yes 2>&1); then bad "password-truncate without a maximum was accepted"
else check "the CLI refuses password-truncate without password-max-length" grep -q "needs password-max-length" <<<"$out"; fi
check "  ... and the adapter has no password-* property" bash -c "! '$P' adapter show ext-ldap | grep -q 'property password-'"

$P adapter update ext-ldap --property password-case=upper --property password-max-length=8 >/dev/null ||
    bad "setting the transform failed"
gw_start || die "could not start the gateway"

# Too long and truncation off: a permanent refusal, slapd unchanged.
T1='Wonder-Land.2024x'
if ad_user_change erin "$E0" "$T1" >/dev/null 2>&1; then
    check "too long without password-truncate: a dead letter with the reason" \
        wait_for 10 bash -c "'$P' queue list --json | grep -q 'longer than the 8 characters'"
    if ldap_bind_ok "$EXT" "$DN" 'WONDER-L' || ldap_bind_ok "$EXT" "$DN" "$T1"; then bad "  ... slapd got a password it should not"
    else ok "  ... slapd did not get it"; fi
else bad "erin could not change her password in AD"; fi

# Truncation on: slapd gets the upper-cased first 8 characters.
$P adapter update ext-ldap --property password-truncate=yes >/dev/null
T2='Quiet-River.2025y'
if ad_user_change erin "$T1" "$T2" >/dev/null 2>&1; then
    if t=$(wait_for 10 ldap_bind_ok "$EXT" "$DN" 'QUIET-RI'); then
        ok "slapd accepts the transformed password QUIET-RI (${t} ms after the AD change)"
    else bad "slapd did not get the transformed password"; fi
    if ldap_bind_ok "$EXT" "$DN" "$T2"; then bad "slapd took the untransformed password"; else ok "  ... the untransformed password does not bind"; fi
else bad "erin could not change her password a second time"; fi
check "the stored credential is the password as typed" \
    bash -c "'$P' mapping show --app LINUX-LDAP --windows 'TEST\\erin' --reveal --json | grep -qF '\"password\": \"$T2\"'"

"$P" audit --json >"$W/audit.json"
harness_secrets "$W/leak-secrets" "$E0" "$T1" "$T2" 'QUIET-RI' 'WONDER-L'
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit.json")
check "no password, as typed or transformed, in the log or the audit" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

harness_end
