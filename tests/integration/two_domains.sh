#!/bin/bash
# One gateway, two AD domains (issue 18): the shared test domain and the
# second one of testenv/second-domain (OTHER), each a [directory NAME] with
# its own DC, credentials, watcher and capture principal. The same
# sAMAccountName exists in both and maps to a different external user in
# each; every change goes only where it belongs: a reset in one domain
# reaches only that domain's external user, an external change is written
# only into its own domain's account, a bare name that fits both is
# refused, an uncaptured change marks only that domain's mapping stale and
# names that domain's DC. No password in the log, the audit or the output.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin two_domains netns env bin gateway

W=$(mktemp -d "$PWSYNC_TEST_TMP/twodom.XXXXXX")
T=twin$RANDOM                 # in both domains
ONE=$PWSYNC_TEST_DC_DOMAIN
cleanup() {
    gw_stop
    rm -f "${PWSYNC_TEST_OTHER_CPS_HOOK_DIR:-/nonexistent}/hook"
    "$PWSYNC_TEST_SAMBA_TOOL" user delete "$T" >/dev/null 2>&1
    "$HARNESS_TOP/testenv/second-domain" stop "$PWSYNC_TESTENV_STATE" >/dev/null 2>&1
    ldapdelete -x -o nettimeout=10 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE" \
        "uid=$T-one,$PWSYNC_TEST_LDAP_PEOPLE" "uid=$T-other,$PWSYNC_TEST_LDAP_PEOPLE" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT

"$HARNESS_TOP/testenv/second-domain" start "$PWSYNC_TESTENV_STATE" >"$W/second-domain.log" 2>&1 ||
    { cat "$W/second-domain.log" >&2; die "the second domain did not start"; }
eval "$("$HARNESS_TOP/testenv/second-domain" env "$PWSYNC_TESTENV_STATE")"
OTHER=$PWSYNC_TEST_OTHER_DC_DOMAIN
AD1=$PWSYNC_TEST_DC_URI AD2=$PWSYNC_TEST_OTHER_DC_URI EXT=$PWSYNC_TEST_LDAP_URI
ext_dn() { printf 'uid=%s,%s' "$1" "$PWSYNC_TEST_LDAP_PEOPLE"; }

gw_setup "$W/gw" || die "could not set up the gateway"
P=$GW_PWSYNC
CONF=$W/gw/pwsyncd.conf
# The shared domain's section gets a name and its DC's principal; the
# second domain's is added.
sed -i "s/^\[directory\]\$/[directory $ONE]\ncapture-principals = dc1/" "$CONF"
cat >>"$CONF" <<CONF
[directory $OTHER]
uri = $AD2
base = $PWSYNC_TEST_OTHER_DC_BASE
domain = $OTHER
capture-principals = dc-other
bind-dn = $PWSYNC_TEST_OTHER_SVC_DN
bind-password-file = $PWSYNC_TEST_OTHER_SVC_PASSWORD_FILE
ca = $PWSYNC_TEST_CA
poll-interval = 5
CONF
# The second domain's DC captures as a principal of its own.
(umask 077 && printf '%s' 'Dc-Other-Capture-Secret-1' >"$W/gw/dc-other.secret")
sed -e 's/^principal = dc1$/principal = dc-other/' -e "s|dc1.secret|dc-other.secret|" "$W/gw/hook.conf" >"$W/gw/hook-other.conf"
sed "s|hook.conf|hook-other.conf|" "$W/gw/hook" >"$W/gw/hook-other"
chmod 0755 "$W/gw/hook-other"
ln -sf "$W/gw/hook-other" "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR/hook"

gw_configure
$P principal create dc-other --kind windows --capture pre-commit <"$W/gw/dc-other.secret" >/dev/null

newpw P1 'Twin-One-Start.1a'
newpw P2 'Twin-Other-Start.2b'
newpw E1 'Twin-Ext-One.3c'
newpw E2 'Twin-Ext-Other.4d'
ad_add_user "$T" "$P1" || die "cannot create $T in $ONE"
AD=PWSYNC_TEST_OTHER ad_add_user "$T" "$P2" || die "cannot create $T in $OTHER"
DN1=$(ad_var "DC_DN_${T^^}")
DN2=$(AD=PWSYNC_TEST_OTHER ad_var "DC_DN_${T^^}")
printf 'dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: twin\nuserPassword: %s\n\n' \
    "$(ext_dn "$T-one")" "$T-one" "$T-one" "$E1" "$(ext_dn "$T-other")" "$T-other" "$T-other" "$E2" |
    ldapadd -x -o nettimeout=10 -H "$EXT" -D "$PWSYNC_TEST_LDAP_ROOTDN" -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE" >/dev/null ||
    die "cannot add the external users"

# ---- the CLI: both domains checked; a bare name that fits both refused ----
$P check --config "$CONF" >"$W/check.out" 2>&1
check "pwsync check passes for both domains (exit 0)" [ $? = 0 ]
check "  ... and names each section" bash -c "grep -q 'directory $ONE\]' '$W/check.out' && grep -q 'directory $OTHER\]' '$W/check.out'"
$P check --user "$T" --config "$CONF" >"$W/check-user.out" 2>&1
check "pwsync check --user with a sam in both domains fails and says to name the domain" \
    bash -c "grep -q 'FAIL user $T: in 2 domains' '$W/check-user.out'"
$P mapping create --app LINUX-LDAP --windows "$T" --external "$T-one" --config "$CONF" >"$W/bare.out" 2>&1
RC=$?
check "mapping create with the bare sam fits both domains: refused (exit $RC)" [ "$RC" != 0 ]
check "  ... saying which domains" grep -q "is in domain $ONE and in domain $OTHER" "$W/bare.out"
check "  ... and nothing was created" bash -c "! '$P' mapping list --app LINUX-LDAP | grep -q '$T-one'"
S=solo$RANDOM   # in OTHER only
newpw PS 'Solo-Other-Start.1s'
AD=PWSYNC_TEST_OTHER ad_add_user "$S" "$PS" || die "cannot create $S in $OTHER"
$P mapping create --app LINUX-LDAP --windows "$S" --external "$S" --config "$CONF" >"$W/solo.out" 2>&1
check "a bare sam found in one domain only is mapped as $OTHER\\$S, and the command says so" \
    bash -c "grep -q 'mapped $OTHER.$S to $S' '$W/solo.out' && '$P' mapping show --app LINUX-LDAP --windows '$OTHER\\$S' >/dev/null"
for pair in "$ONE\\$T:$T-one:$E1" "$OTHER\\$T:$T-other:$E2"; do
    IFS=: read -r win ext pw <<<"$pair"
    $P mapping create --app LINUX-LDAP --windows "$win" --external "$ext" --config "$CONF" >"$W/map.out" 2>&1 ||
        { cat "$W/map.out" >&2; die "cannot map $win"; }
    printf '%s' "$pw" | $P mapping set-credentials --app LINUX-LDAP --windows "$win" >/dev/null || die "credentials of $win"
done
$P mapping list --app LINUX-LDAP --json >"$W/mappings.json"
check "each domain's $T resolved to its own objectGUID" python3 -c 'import json,sys
m = {x["windows"].lower(): x.get("object_guid") or x.get("objectGUID") for x in json.load(open(sys.argv[1]))}
a, b = m.get(sys.argv[2].lower()), m.get(sys.argv[3].lower())
sys.exit(0 if a and b and a != b else 1)' "$W/mappings.json" "$ONE\\$T" "$OTHER\\$T"

gw_start || die "could not start the gateway"
LOG=$W/gw/pwsyncd.log
check "a watcher for each domain" wait_for 10 bash -c "grep -q 'watcher of \[directory $ONE\] started' '$LOG' && grep -q 'watcher of \[directory $OTHER\] started' '$LOG'"

# ---- Windows -> External: each reset reaches its own domain's user only ----
newpw A2 'Twin-Other-Reset.5e'
AD=PWSYNC_TEST_OTHER ad_admin_reset "$T" "$A2" 2>"$W/err" || bad "$OTHER refused the reset" "$W/err"
if t=$(wait_for 20 ldap_bind_ok "$EXT" "$(ext_dn "$T-other")" "$A2"); then
    ok "a reset in $OTHER (captured by dc-other) reaches $T-other in ${t} ms"
else
    bad "a reset in $OTHER did not reach $T-other"
fi
check "  ... and not $ONE's $T's external user ($T-one keeps its password)" ldap_bind_ok "$EXT" "$(ext_dn "$T-one")" "$E1"
newpw A1 'Twin-One-Reset.6f'
ad_admin_reset "$T" "$A1" 2>"$W/err" || bad "$ONE refused the reset" "$W/err"
if t=$(wait_for 20 ldap_bind_ok "$EXT" "$(ext_dn "$T-one")" "$A1"); then
    ok "a reset in $ONE (captured by dc1) reaches $T-one in ${t} ms"
else
    bad "a reset in $ONE did not reach $T-one"
fi
check "  ... and $T-other keeps $OTHER's password" ldap_bind_ok "$EXT" "$(ext_dn "$T-other")" "$A2"
check "the audit: $OTHER's capture confirmed as $OTHER\\$T from dc-other" \
    bash -c "'$P' audit | grep capture.confirmed | grep -qi '$OTHER\\\\$T'"

# ---- an uncaptured change: stale in its domain, its DC named ----
rm -f "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR/hook"
newpw U2 'Twin-Uncaptured.8h'
AD=PWSYNC_TEST_OTHER ad_admin_reset "$T" "$U2" 2>"$W/err" || bad "$OTHER refused the uncaptured reset" "$W/err"
stale_has() { $P stale list --json | python3 -c 'import json,sys
s = {a["account"].lower(): a for a in json.load(sys.stdin)}
a = s.get(sys.argv[1].lower())
sys.exit(0 if a and a["dc"].lower() == sys.argv[2].lower() and sys.argv[3].lower() not in s else 1)' "$@"; }
check "an uncaptured reset in $OTHER marks $OTHER\\$T stale, names its DC, and not $ONE\\$T" \
    wait_for 20 stale_has "$OTHER\\$T" "$PWSYNC_TEST_OTHER_DC_HOST" "$ONE\\$T"
check "pwsync status: $OTHER's DC has the uncaptured change, $ONE's DC none" python3 -c 'import json,sys
d = {x["dc"].lower(): x for x in json.load(sys.stdin)["domain_controllers"]}
o, one = d.get(sys.argv[1].lower()), d.get(sys.argv[2].lower(), {"uncaptured": 0})
sys.exit(0 if o and o["uncaptured"] >= 1 and o["captured"] >= 1 and one["uncaptured"] == 0 else 1)' \
    "$PWSYNC_TEST_OTHER_DC_HOST" "$PWSYNC_TEST_DC_HOST" < <($P status --json)

ln -sf "$W/gw/hook-other" "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR/hook"

# ---- External -> Windows (full): written into its own domain only ----
newpw X2 'Twin-From-Ext.7g'
gw_passwd "$T-other" "$A2" "$X2"   # the credential kept from $OTHER's last capture
check "full sync for $T-other accepted (result $RC)" [ "$RC" = 0 ]
check "  ... $OTHER's $T binds with it" ldap_bind_ok "$AD2" "$DN2" "$X2"
one_untouched() { ! ldap_bind_ok "$AD1" "$DN1" "$X2" && ldap_bind_ok "$AD1" "$DN1" "$A1"; }
check "  ... $ONE's $T does not, and keeps its own" one_untouched
sleep 2  # the DC's capture of our own write comes back through dc-other
check "  ... and it is not bounced to $T-one" ldap_bind_ok "$EXT" "$(ext_dn "$T-one")" "$A1"

# ---- a restart resumes both watchers from their own cursors ----
gw_stop
ln -sf "$W/gw/hook-other" "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR/hook"
gw_start || die "the gateway did not start again"
ln -sf "$W/gw/hook" "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
check "after a restart both watchers resume (no full read again)" \
    wait_for 10 bash -c "[ \$(grep -c 'watcher of .* started on .* (resuming)' '$LOG') -ge 2 ]"
newpw A3 'Twin-After-Restart.9i'
AD=PWSYNC_TEST_OTHER ad_admin_reset "$T" "$A3" 2>"$W/err" || bad "$OTHER refused the reset" "$W/err"
check "a reset in $OTHER after the restart reaches $T-other" wait_for 20 ldap_bind_ok "$EXT" "$(ext_dn "$T-other")" "$A3"

# ---- mapping rules: each read in the domain its scope lies in ----
$P app create RULED >/dev/null || die "cannot create the application RULED"
$P rule create twin-one --app RULED --scope "ou=CN=Users,$PWSYNC_TEST_DC_BASE" --scope "filter=(sAMAccountName=$T)" \
    --external '{userPrincipalName}' >/dev/null || die "rule twin-one"
$P rule create twin-other --app RULED --scope "ou=CN=Users,$PWSYNC_TEST_OTHER_DC_BASE" --scope "filter=(sAMAccountName=$T)" \
    --external '{userPrincipalName}' >/dev/null || die "rule twin-other"
$P rule preview twin-other --config "$CONF" >"$W/preview.out" 2>&1
check "rule preview reads the domain of the rule's OU ($OTHER\\$T to create)" \
    grep -qi "^create *$OTHER.$T" "$W/preview.out"
ruled() { $P mapping list --app RULED --json | python3 -c 'import json,sys
m = sorted((x["windows"].lower(), x["external"].lower()) for x in json.load(sys.stdin))
sys.exit(0 if m == sorted([(sys.argv[1].lower(), sys.argv[2].lower()), (sys.argv[3].lower(), sys.argv[4].lower())]) else 1)' \
    "$ONE\\$T" "$T@$PWSYNC_TEST_DC_DNS_DOMAIN" "$OTHER\\$T" "$T@$PWSYNC_TEST_OTHER_DC_DNS_DOMAIN"; }
check "pwsyncd applies each rule in its own domain, and neither removes the other's mapping" wait_for 40 ruled
sleep 12  # another round of both keepers
check "  ... still both after another round" ruled

# ---- no password anywhere ----
$P audit >"$W/audit.txt" 2>&1
harness_secrets "$W/secrets" "${USED_PASSWORDS[@]}"
check "no password in the log, the audit or the commands' output" \
    [ "$(harness_leaks "$W/secrets" "$LOG" "$W/audit.txt" "$W/check.out" "$W/check-user.out" "$W/bare.out" "$W/gw/pwsyncd.stderr")" = 0 ]
check "no crash in the log" harness_no_crash "$LOG" "$W/gw/pwsyncd.stderr"
harness_end
