#!/bin/bash
# Smoke test of testenv/: the Samba AD DC and slapd answer as the
# integration tests expect. Needs a started environment:
#   PWSYNC_TESTENV_STATE=STATE_DIR (set by pwsync_integration_test in CTest)
# and must run inside testenv/netns.
#
# It works on users of its own (created here, deleted on exit), so it does
# not disturb the initial passwords other tests rely on. Passwords go
# through files and stdin, never argv.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin testenv_smoke netns env

export LDAPTLS_CACERT=$PWSYNC_TEST_CA
export LDAPTLS_REQCERT=demand
export KRB5_CONFIG=$PWSYNC_TEST_KRB5_CONF

T=$(mktemp -d "$PWSYNC_TEST_TMP/smoke.XXXXXX")
chmod 0700 "$T"
export KRB5CCNAME=FILE:$T/krb5cc


# pwfile NAME VALUE: a password file (0600, no newline), path on stdout.
pwfile() { (umask 077 && printf '%s' "$2" >"$T/$1"); echo "$T/$1"; }
# utf16 PASSWORD: base64 of the quoted password in UTF-16LE (unicodePwd).
utf16() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }
rnd() { openssl rand -hex 4; }

# rc CMD...: run CMD, output in $T/out, exit code in $RC.
rc() { RC=0; "$@" >"$T/out" 2>&1 || RC=$?; }

DC=$PWSYNC_TEST_DC_URI
SVC_PW=$PWSYNC_TEST_SVC_PASSWORD_FILE
dc_search_as() { # DN PWFILE URI [ARGS...]: base search on the naming context
    local dn=$1 pw=$2 uri=$3
    shift 3
    ldapsearch -LLL -x -o nettimeout=5 -H "$uri" -D "$dn" -y "$pw" -b "$PWSYNC_TEST_DC_BASE" -s base "$@" dn
}
dc_modify() { ldapmodify -x -o nettimeout=5 -H "$DC" -D "$PWSYNC_TEST_SVC_DN" -y "$SVC_PW"; }

# ---- Users of our own, in both directories ----
ADU=smoke-$(rnd)
ADU_DN="CN=$ADU,CN=Users,$PWSYNC_TEST_DC_BASE"
ADU_PW="Smoke-$(rnd)-Init.1"
EXU=smoke-$(rnd)
EXU_DN="uid=$EXU,$PWSYNC_TEST_LDAP_PEOPLE"
EXU_PW="Smoke-$(rnd)-Ext.1"

cleanup() {
    rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
    ldapdelete -x -o nettimeout=5 -H "$DC" -D "$PWSYNC_TEST_SVC_DN" -y "$SVC_PW" "$ADU_DN" >/dev/null 2>&1 || true
    ldapdelete -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" \
        -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE" "$EXU_DN" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT

rc dc_modify <<EOF
dn: $ADU_DN
changetype: add
objectClass: user
sAMAccountName: $ADU
userPrincipalName: $ADU@$PWSYNC_TEST_DC_DNS_DOMAIN
unicodePwd:: $(utf16 "$ADU_PW")
userAccountControl: 512
EOF
[[ $RC == 0 ]] || { cat "$T/out" >&2; die "cannot create AD test user $ADU (rc $RC)"; }
rc ldapadd -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE" <<EOF
dn: $EXU_DN
objectClass: inetOrgPerson
uid: $EXU
cn: $EXU
sn: Smoke
userPassword: $(slappasswd -h '{SSHA}' -T "$(pwfile exu-init "$EXU_PW")")
EOF
[[ $RC == 0 ]] || { cat "$T/out" >&2; die "cannot create slapd test user $EXU (rc $RC)"; }

# (a) simple bind over ldaps, CA verification on.
rc dc_search_as "$PWSYNC_TEST_SVC_DN" "$SVC_PW" "$DC"
if [[ $RC == 0 ]] && grep -qi "^dn: $PWSYNC_TEST_DC_BASE" "$T/out"; then
    ok "(a) simple bind as svc-pwsync over ldaps with CA verification"
else
    bad "(a) simple bind as svc-pwsync over ldaps: rc $RC" "$T/out"
fi
# ... and verification really is on: a wrong CA file must fail the handshake.
rc env LDAPTLS_CACERT="$PWSYNC_TEST_CLIENT_CERT" ldapsearch -LLL -x -o nettimeout=5 -H "$DC" -b '' -s base dn
if [[ $RC != 0 ]]; then
    ok "(a) ldaps with the wrong CA is refused by the client (rc $RC)"
else
    bad "(a) ldaps with the wrong CA succeeded: CA verification is not in effect" "$T/out"
fi

# (b) StartTLS, on both servers.
rc dc_search_as "$PWSYNC_TEST_SVC_DN" "$SVC_PW" "$PWSYNC_TEST_DC_STARTTLS_URI" -ZZ
if [[ $RC == 0 ]]; then ok "(b) StartTLS + simple bind on the DC"; else bad "(b) StartTLS on the DC: rc $RC" "$T/out"; fi
rc ldapwhoami -x -ZZ -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_STARTTLS_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE"
if [[ $RC == 0 ]]; then ok "(b) StartTLS + simple bind on slapd"; else bad "(b) StartTLS on slapd: rc $RC" "$T/out"; fi

# (c) simple bind over plain ldap:// is refused with rc 8 (strong auth).
rc dc_search_as "$PWSYNC_TEST_SVC_DN" "$SVC_PW" "$PWSYNC_TEST_DC_STARTTLS_URI"
if [[ $RC == 8 ]]; then
    ok "(c) simple bind without TLS refused with rc 8"
else
    bad "(c) simple bind without TLS: expected rc 8, got $RC" "$T/out"
fi

# (d) admin reset of unicodePwd over ldaps, then the user binds with it.
NEW_PW="Smoke-$(rnd)-Reset.1"
rc dc_modify <<EOF
dn: $ADU_DN
changetype: modify
replace: unicodePwd
unicodePwd:: $(utf16 "$NEW_PW")
-
EOF
if [[ $RC == 0 ]]; then
    rc dc_search_as "$ADU_DN" "$(pwfile adu-new "$NEW_PW")" "$DC"
    if [[ $RC == 0 ]]; then
        ok "(d) admin reset of unicodePwd, user binds with the new password"
    else
        bad "(d) user bind after admin reset: rc $RC" "$T/out"
    fi
    rc dc_search_as "$ADU_DN" "$(pwfile adu-init "$ADU_PW")" "$DC"
    if [[ $RC == 49 ]]; then ok "(d) old password refused after reset (rc 49)"; else bad "(d) old password after reset: expected rc 49, got $RC" "$T/out"; fi
    ADU_PW=$NEW_PW
else
    bad "(d) admin reset of unicodePwd: rc $RC" "$T/out"
fi

# User change (delete old + add new) bound as the user.
NEW_PW="Smoke-$(rnd)-Change.1"
rc ldapmodify -x -o nettimeout=5 -H "$DC" -D "$ADU_DN" -y "$(pwfile adu-cur "$ADU_PW")" <<EOF
dn: $ADU_DN
changetype: modify
delete: unicodePwd
unicodePwd:: $(utf16 "$ADU_PW")
-
add: unicodePwd
unicodePwd:: $(utf16 "$NEW_PW")
-
EOF
if [[ $RC == 0 ]] && { rc dc_search_as "$ADU_DN" "$(pwfile adu-new2 "$NEW_PW")" "$DC"; [[ $RC == 0 ]]; }; then
    ok "(d) user change (delete old + add new), user binds with the new password"
    ADU_PW=$NEW_PW
else
    bad "(d) user change: rc $RC" "$T/out"
fi

# (e) a too-short password: rc 19 and 0000052D.
rc dc_modify <<EOF
dn: $ADU_DN
changetype: modify
replace: unicodePwd
unicodePwd:: $(utf16 "Ab1.")
-
EOF
if [[ $RC == 19 ]] && grep -q '0000052D' "$T/out"; then
    ok "(e) too-short password refused: rc 19, 0000052D"
else
    bad "(e) too-short password: expected rc 19 with 0000052D, got $RC" "$T/out"
fi
# ... and a long but not complex one (the cps-hook dispatcher keeps Samba's
# complexity rule while a check password script is set).
rc dc_modify <<EOF
dn: $ADU_DN
changetype: modify
replace: unicodePwd
unicodePwd:: $(utf16 "onlylowercaseletters")
-
EOF
if [[ $RC == 19 ]] && grep -q '0000052D.*complexity' "$T/out"; then
    ok "(e) non-complex password refused: rc 19, 0000052D complexity"
else
    bad "(e) non-complex password: expected rc 19 with 0000052D complexity, got $RC" "$T/out"
fi

# (f) GSSAPI with the keytab: sealed over ldap://, and over ldaps with max
# SSF 0 (Samba refuses sign/seal on top of TLS).
rc kinit -k -t "$PWSYNC_TEST_KEYTAB" "$PWSYNC_TEST_SVC_PRINCIPAL"
if [[ $RC == 0 ]]; then
    ok "(f) kinit with the exported keytab"
    rc ldapsearch -LLL -Y GSSAPI -o nettimeout=5 -H "$PWSYNC_TEST_DC_STARTTLS_URI" -b "$PWSYNC_TEST_DC_BASE" -s base dn
    if [[ $RC == 0 ]] && grep -q "SASL username: $PWSYNC_TEST_SVC_PRINCIPAL" "$T/out" && grep -q 'SASL data security layer installed' "$T/out"; then
        ok "(f) GSSAPI bind over ldap:// with sealing"
    else
        bad "(f) GSSAPI bind over ldap://: rc $RC" "$T/out"
    fi
    rc ldapsearch -LLL -Y GSSAPI -O maxssf=0 -o nettimeout=5 -H "$DC" -b "$PWSYNC_TEST_DC_BASE" -s base dn
    if [[ $RC == 0 ]] && grep -q "SASL username: $PWSYNC_TEST_SVC_PRINCIPAL" "$T/out"; then
        ok "(f) GSSAPI bind over ldaps with maxssf=0"
    else
        bad "(f) GSSAPI bind over ldaps: rc $RC" "$T/out"
    fi
else
    bad "(f) kinit -k -t $PWSYNC_TEST_KEYTAB: rc $RC" "$T/out"
fi

# (g) slapd Password Modify as rootdn, then the user binds; then the user
# changes it again with its old password.
EX_NEW="Smoke-$(rnd)-ExtNew.1"
rc ldappasswd -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" \
    -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE" -T "$(pwfile exu-new "$EX_NEW")" "$EXU_DN"
if [[ $RC == 0 ]]; then
    rc ldapwhoami -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$EXU_DN" -y "$T/exu-new"
    if [[ $RC == 0 ]] && grep -qi "dn:$EXU_DN" "$T/out"; then
        ok "(g) slapd Password Modify as rootdn, user binds with the new password"
    else
        bad "(g) user bind on slapd after Password Modify: rc $RC" "$T/out"
    fi
else
    bad "(g) slapd Password Modify as rootdn: rc $RC" "$T/out"
fi
EX_NEW2="Smoke-$(rnd)-ExtSelf.1"
rc ldappasswd -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$EXU_DN" -y "$T/exu-new" \
    -t "$T/exu-new" -T "$(pwfile exu-new2 "$EX_NEW2")"
if [[ $RC == 0 ]] && { rc ldapwhoami -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$EXU_DN" -y "$T/exu-new2"; [[ $RC == 0 ]]; }; then
    ok "(g) slapd Password Modify by the user with the old password"
else
    bad "(g) slapd self Password Modify: rc $RC" "$T/out"
fi

# (h) the check password script slot: a hook that records the account and
# the password's length (never the password), then accepts.
REC=$T/cps-record
HOOK_TMP=$(mktemp "$PWSYNC_TEST_CPS_HOOK_DIR/.hook.XXXXXX")
cat >"$HOOK_TMP" <<EOF
#!/bin/sh
n=\$(wc -c)
echo "account=\$SAMBA_CPS_ACCOUNT_NAME length=\$n" >>'$REC'
exit 0
EOF
chmod 0755 "$HOOK_TMP"
mv -f "$HOOK_TMP" "$PWSYNC_TEST_CPS_HOOK_DIR/hook"   # atomic: Samba may run it any time
NEW_PW="Smoke-$(rnd)-Hook.1ü"
rc dc_modify <<EOF
dn: $ADU_DN
changetype: modify
replace: unicodePwd
unicodePwd:: $(utf16 "$NEW_PW")
-
EOF
rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
want="account=$ADU length=$(printf '%s' "$NEW_PW" | wc -c)"
if [[ $RC == 0 ]] && [[ -f $REC ]] && grep -qx "$want" "$REC"; then
    ok "(h) check password script hook ran ($want)"
    ADU_PW=$NEW_PW
else
    bad "(h) check password script hook: rc $RC, expected record '$want', got '$(cat "$REC" 2>/dev/null)'" "$T/out"
fi
# A hook that refuses makes the DC refuse the change with rc 19.
printf '#!/bin/sh\ncat >/dev/null\nexit 1\n' >"$T/deny"
chmod 0755 "$T/deny"
mv -f "$T/deny" "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
rc dc_modify <<EOF
dn: $ADU_DN
changetype: modify
replace: unicodePwd
unicodePwd:: $(utf16 "Smoke-$(rnd)-Denied.1")
-
EOF
rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
if [[ $RC == 19 ]]; then ok "(h) a refusing hook makes the DC refuse (rc 19)"; else bad "(h) refusing hook: expected rc 19, got $RC" "$T/out"; fi

# DirSync (as svc-pwsync, flags 0) and the notification control work in
# the light server mode the environment uses.
rc ldapsearch -LLL -x -o nettimeout=5 -H "$DC" -D "$PWSYNC_TEST_SVC_DN" -y "$SVC_PW" \
    -E '!dirSync=0/0' -b "$PWSYNC_TEST_DC_BASE" "(sAMAccountName=$ADU)" pwdLastSet
if [[ $RC == 0 ]] && grep -q '^pwdLastSet:' "$T/out" && grep -qi 'dirsync' "$T/out"; then
    ok "DirSync search returns entries and a cookie"
else
    bad "DirSync search: rc $RC" "$T/out"
fi
timeout 20 ldapsearch -LLL -x -o nettimeout=5 -H "$DC" -D "$PWSYNC_TEST_SVC_DN" -y "$SVC_PW" \
    -E '!1.2.840.113556.1.4.528' -b "CN=Users,$PWSYNC_TEST_DC_BASE" -s one '(objectClass=*)' pwdLastSet \
    >"$T/notify" 2>&1 &
npid=$!
# The search may take a moment to be registered, and a change made before
# that is not replayed: change the password until the change shows up (at
# most 5 times).
seen=0
for _ in 1 2 3 4 5; do
    sleep 0.5
    rc dc_modify <<EOF
dn: $ADU_DN
changetype: modify
replace: unicodePwd
unicodePwd:: $(utf16 "Smoke-$(rnd)-Notify.1")
-
EOF
    [[ $RC == 0 ]] || break
    for _ in $(seq 1 10); do
        if grep -qi "^dn: $ADU_DN" "$T/notify"; then seen=1; break; fi
        sleep 0.1
    done
    [[ $seen == 0 ]] || break
done
kill "$npid" 2>/dev/null || true
wait "$npid" 2>/dev/null || true
if [[ $RC == 0 && $seen == 1 ]]; then
    ok "notification control reports the password change"
else
    bad "notification control: modify rc $RC, change seen: $seen" "$T/notify"
fi

harness_end
