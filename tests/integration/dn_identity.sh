#!/bin/bash
# Password Modify naming the user by DN or RFC 4513 authzId (issue 12, 2),
# from two foreign clients: ldap-utils' ldappasswd and Debian's python3-ldap3.
# An adapter principal, in partial and in full External -> Windows sync,
# names its user by the plain id, the DN of the adapter's dn-template, u:ID,
# dn:DN and the DN in other case and spacing (all accepted), and by a DN
# outside the adapter's base (32, saying why). A windows principal names an
# account by sam, DOMAIN\sam, UPN, {GUID}, DN, u: and dn:. No password in the
# log or the audit.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin dn_identity netns env bin gateway
# Debian's python3-ldap3 is for Debian's python, whatever python3 is first on PATH.
PY=/usr/bin/python3
"$PY" -c 'import ldap3' 2>/dev/null || die "python3-ldap3 is not installed (testenv/packages.txt lists it)"

W=$(mktemp -d "$PWSYNC_TEST_TMP/dn_identity.XXXXXX")
cleanup() { gw_stop; "$PWSYNC_TEST_SAMBA_TOOL" user delete dnuser >/dev/null 2>&1; rm -rf "$W"; }
trap cleanup EXIT

# Its own AD user, so that the other tests' users keep their passwords.
P0='Start-Point.1dnuser'
USED=("$P0")
"$PWSYNC_TEST_SAMBA_TOOL" user delete dnuser >/dev/null 2>&1
"$PWSYNC_TEST_SAMBA_TOOL" user create dnuser "$P0" >/dev/null || die "cannot create the AD user dnuser"
export PWSYNC_TEST_DC_DN_DNUSER="CN=dnuser,CN=Users,$PWSYNC_TEST_DC_BASE"
gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
P=$GW_PWSYNC
AD=$PWSYNC_TEST_DC_URI
WIN="$PWSYNC_TEST_DC_DOMAIN\\dnuser"
$P mapping create --app LINUX-LDAP --windows "$WIN" --external dnuser >/dev/null || die "no mapping for dnuser"
printf '%s' "$P0" | $P mapping set-credentials --app LINUX-LDAP --windows "$WIN" >/dev/null || die "no credential for dnuser"
gw_start || die "could not start the gateway"

# python3-ldap3 as a co-process: one Python start for the whole test.
coproc LDAP3 { "$PY" "$here/ldap3_passwd.py" --uri ldaps://127.0.0.1:1636 --ca "$PWSYNC_TEST_CA" 2>"$W/ldap3.stderr"; }

# send CLIENT PRINCIPAL IDENTITY OLD NEW [check]: Password Modify to the
# gateway; the result code in RC, the server's text in MSG. "check" leaves
# ldap3's check_names on (its default, which sends DNs only).
send() {
    local client=$1 who=$2 id=$3 old=$4 new=$5 check=${6:-} rc
    local secret=$W/gw/agent.secret
    [[ $who == dc1 ]] && secret=$W/gw/dc1.secret
    if [[ $client == ldappasswd ]]; then
        (umask 077 && printf '%s' "$old" >"$W/old" && printf '%s' "$new" >"$W/new")
        local args=(-x -o nettimeout=10 -H ldaps://127.0.0.1:1636 -D "cn=$who" -y "$secret" -T "$W/new")
        [[ -n $old ]] && args+=(-t "$W/old")
        ldappasswd "${args[@]}" "$id" >"$W/out" 2>&1
        rc=$?
        rm -f "$W/old" "$W/new"
        RC=$(sed -n 's/^Result: .*(\([0-9]*\))$/\1/p' "$W/out" | head -n1)
        MSG=$(sed -n 's/^Additional info: //p' "$W/out")
        [[ -z $RC && $rc == 0 ]] && RC=0
        [[ -z $RC ]] && RC=none MSG=$(tr '\n' ' ' <"$W/out")
    else
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "cn=$who" "$secret" "${check:+1}" "$id" "$old" "$new" >&"${LDAP3[1]}"
        local line=
        read -r -t 60 line <&"${LDAP3[0]}"
        RC=${line%% *} MSG=${line#* }
        [[ -n $line ]] || RC=none MSG="no answer from ldap3: $(tr '\n' ' ' <"$W/ldap3.stderr")"
    fi
    return 0
}
result_is() { [ "$RC" = "$1" ] && grep -qF -- "$2" <<<"$MSG"; }
stored_is() {
    "$P" mapping show --app LINUX-LDAP --windows "$WIN" --reveal --json | grep -qF "\"password\": \"$1\""
}

DN="uid=dnuser,$PWSYNC_TEST_LDAP_PEOPLE"
# The same entry in upper case, with spaces around the separators.
ODD=$(printf '%s' "$DN" | tr '[:lower:]' '[:upper:]' | sed 's/,/ , /g')
OUTSIDE="uid=dnuser,ou=elsewhere,$PWSYNC_TEST_LDAP_BASE"
# ldap3 with check_names sends RFC 4514 DNs only: the odd spacing goes without.
FORMS=("plain id|dnuser|" "DN from the dn-template|$DN|check" "u: authzId|u:dnuser|" "dn: authzId|dn:$DN|"
       "DN in other case and spacing|$ODD|")
cur=$P0 n=0
for mode in partial full; do
    if [[ $mode == partial ]]; then $P sync disable full >/dev/null; else $P sync enable full >/dev/null; fi
    for client in ldappasswd ldap3; do
        for f in "${FORMS[@]}"; do
            IFS='|' read -r what id chk <<<"$f"
            n=$((n + 1))
            new="Dn-Form.${n}${mode}X"
            USED+=("$new")
            send "$client" ldap-agent "$id" "$cur" "$new" "$chk"
            # Each change carries the one before as its old password, which
            # the adapter verifies against the store: a chain of 0s shows
            # each one was stored.
            if [[ $RC == 0 ]]; then
                ok "$mode, $client, $what ($id): accepted ($MSG)"
                cur=$new
                [[ $mode == full ]] && check "  ... and set in AD" grep -qF 'set in Active Directory' <<<"$MSG"
            else
                bad "$mode, $client, $what ($id): $RC $MSG"
            fi
        done
        check "$mode, $client: the store has the last password" stored_is "$cur"
        [[ $mode == full ]] && check "$mode, $client: AD has it" ldap_bind_ok "$AD" "$PWSYNC_TEST_DC_DN_DNUSER" "$cur"
        n=$((n + 1))
        new="Dn-Form.${n}${mode}X"
        USED+=("$new")
        send "$client" ldap-agent "$OUTSIDE" "$cur" "$new" check
        check "$mode, $client, a DN outside the adapter's base: 32 (got $RC)" [ "$RC" = 32 ]
        check "  ... saying why ($MSG)" grep -qF "is not under the adapter's base '$PWSYNC_TEST_LDAP_PEOPLE'" <<<"$MSG"
        check "  ... and nothing changed" stored_is "$cur"
    done
    [[ $mode == partial ]] && check "partial: AD kept the password it had" ldap_bind_ok "$AD" "$PWSYNC_TEST_DC_DN_DNUSER" "$P0"
done
send ldappasswd ldap-agent "uid=dnuser,ou=people,dc=" "$cur" "Dn-Form.0badX"
USED+=("Dn-Form.0badX")
check "a malformed DN: protocolError, saying so (got $RC $MSG)" result_is 2 'not a valid DN'

# A windows principal (the DC's capture hook, pre-commit): alice's capture
# stays pending (her AD password never changes here), so nothing is sent on.
guid=$(ldapsearch -x -LLL -o ldif-wrap=no -o nettimeout=10 -H "$AD" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" \
    -b "$PWSYNC_TEST_DC_DN_ALICE" -s base objectGUID | sed -n 's/^objectGUID:: //p' |
    python3 -c 'import base64, sys, uuid; print("{%s}" % uuid.UUID(bytes_le=base64.b64decode(sys.stdin.read())))')
LOWER_DN=$(printf '%s' "$PWSYNC_TEST_DC_DN_ALICE" | tr '[:upper:]' '[:lower:]' | sed 's/,/, /g')
WFORMS=("sam|alice|" "DOMAIN\\sam|$PWSYNC_TEST_DC_DOMAIN\\alice|" "UPN|$PWSYNC_TEST_DC_UPN_ALICE|" "GUID|$guid|"
        "DN|$PWSYNC_TEST_DC_DN_ALICE|check" "u: authzId|u:$PWSYNC_TEST_DC_DOMAIN\\alice|" "dn: authzId|dn:$LOWER_DN|")
for client in ldappasswd ldap3; do
    for f in "${WFORMS[@]}"; do
        IFS='|' read -r what id chk <<<"$f"
        n=$((n + 1))
        new="Win-Form.${n}Y"
        USED+=("$new")
        # The gateway knows UPNs and GUIDs once its watcher's first pass is done.
        for _ in $(seq 1 50); do
            send "$client" dc1 "$id" "" "$new" "$chk"
            [[ $RC == 32 ]] || break
            sleep 0.2
        done
        check "windows principal, $client, $what ($id): stored (got $RC $MSG)" [ "$RC" = 0 ]
    done
    send "$client" dc1 "CN=nobody-here,CN=Users,$PWSYNC_TEST_DC_BASE" "" "Win-Form.0noneY" check
    check "windows principal, $client, the DN of no account: 32, saying why (got $RC $MSG)" \
        result_is 32 'no mapping for Windows account'
done
USED+=("Win-Form.0noneY")

"$P" audit --json >"$W/audit.json"
harness_secrets "$W/leak-secrets" "${USED[@]}" "Dc1-Capture-Secret-1" "Ldap-Agent-Secret-1"
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit.json")
check "no password in the log or the audit (${#USED[@]} checked)" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

echo "dn_identity: $SECONDS s"
harness_end
