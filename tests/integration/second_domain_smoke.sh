#!/bin/bash
# Smoke test of testenv/second-domain (issue 18: one gateway, several AD
# domains): beside the running first domain (TEST), it starts the second,
# independent one (OTHER.EXAMPLE on 127.0.0.4) and checks what a
# multi-domain test relies on: its service account binds over LDAPS with
# the first domain's CA and may use DirSync; the same sAMAccountNames exist
# in both domains as different objects with different passwords; a reset on
# the second domain runs its own check password script slot (not the first
# domain's); the first domain's tweaks are there (policy, old password
# allowed period 0, the dispatcher's complexity check); start is repeatable;
# stop leaves no process of it. Prints the start times (provisioning or the
# template) and the total.
#
# Needs the shared fixture (PWSYNC_TESTENV_STATE) and runs inside
# testenv/netns. It installs hooks in the first domain's slot for a moment
# (RESOURCE_LOCK testenv-cps-hook). Passwords go through files and stdin.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../../testenv/lib/harness.sh
source "$top/testenv/lib/harness.sh"
harness_begin second_domain_smoke netns env

export LDAPTLS_CACERT=$PWSYNC_TEST_CA LDAPTLS_REQCERT=demand LDAPRC=/dev/null LDAPCONF=/dev/null
ms() { date +%s%3N; }
T0=$(ms)
STATE=$PWSYNC_TESTENV_STATE
SD=$top/testenv/second-domain
T=$(mktemp -d "$PWSYNC_TEST_TMP/second-domain.XXXXXX")
chmod 0700 "$T"
cleanup() {
    rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
    "$SD" stop "$STATE" >>"$T/sd.log" 2>&1
    rm -rf "$T"
}
trap cleanup EXIT

# pwfile NAME VALUE: a password file (0600, no newline), path on stdout.
pwfile() { (umask 077 && printf '%s' "$2" >"$T/$1"); echo "$T/$1"; }
utf16() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }
# rc CMD...: run CMD, output in $T/out, exit code in $RC.
rc() { RC=0; "$@" >"$T/out" 2>&1 || RC=$?; }
# bind_rc URI DN PASSWORD: the rc of a simple bind (and a rootDSE read).
bind_rc() {
    rc ldapsearch -LLL -x -o nettimeout=5 -H "$1" -D "$2" -y "$(pwfile bind.pw "$3")" -b '' -s base dnsHostName
    echo "$RC"
}
# attr URI BIND_DN PWFILE BASE ATTR: ATTR's first value (base64 kept as is).
attr() {
    ldapsearch -LLL -x -o nettimeout=5 -H "$1" -D "$2" -y "$3" -b "$4" -s base "$5" 2>/dev/null |
        sed -n "s/^$5::\{0,1\} //p" | head -n 1
}
# hook_recorder DIR RECORD: an accepting hook in slot DIR that appends
# "account= upn= length=" (never the password) to RECORD; atomic install.
hook_recorder() {
    local tmp
    tmp=$(mktemp "$1/.hook.XXXXXX")
    # shellcheck disable=SC2016 # the hook's own variables
    printf '#!/bin/sh\nn=$(wc -c)\necho "account=$SAMBA_CPS_ACCOUNT_NAME upn=$SAMBA_CPS_USER_PRINCIPAL_NAME length=$n" >>%s\nexit 0\n' "$2" >"$tmp"
    chmod 0755 "$tmp"
    mv -f "$tmp" "$1/hook"
}
# reset2 DN PASSWORD: the second domain's service account resets DN's password there.
reset2() {
    rc ldapmodify -x -o nettimeout=10 -H "$PWSYNC_TEST_OTHER_DC_URI" -D "$PWSYNC_TEST_OTHER_SVC_DN" \
        -y "$PWSYNC_TEST_OTHER_SVC_PASSWORD_FILE" <<EOF
dn: $1
changetype: modify
replace: unicodePwd
unicodePwd:: $(utf16 "$2")
-
EOF
}

# ---- start ----
t=$(ms)
if "$SD" start "$STATE" >"$T/start.log" 2>&1; then
    START_MS=$(( $(ms) - t ))
    how=$(grep -Eo 'Samba (provisioned|template restored)[^;]* in [0-9.]+s' "$T/start.log" | sed 's/ from .* in / in /')
    ok "second domain started ($START_MS ms; $how)"
else
    bad "testenv/second-domain start failed" "$T/start.log"
    harness_end
    exit 1
fi
eval "$("$SD" env "$STATE")" || die "cannot read the second domain's env.sh"
check "its env.sh: OTHER, other.example, DC=other,DC=example, ldaps://dc1.other.example" \
    [ "$PWSYNC_TEST_OTHER_DC_DOMAIN/$PWSYNC_TEST_OTHER_DC_DNS_DOMAIN/$PWSYNC_TEST_OTHER_DC_BASE/$PWSYNC_TEST_OTHER_DC_URI" \
      = "OTHER/other.example/DC=other,DC=example/ldaps://dc1.other.example" ]
check "  ... a hook slot of its own ($PWSYNC_TEST_OTHER_CPS_HOOK_DIR)" \
    [ -d "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR" -a "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR" != "$PWSYNC_TEST_CPS_HOOK_DIR" ]
check "  ... the first domain's CA" [ "$PWSYNC_TEST_OTHER_CA" = "$PWSYNC_TEST_CA" ]
check "  ... status: running" "$SD" status "$STATE"
D1=$PWSYNC_TEST_DC_URI
D2=$PWSYNC_TEST_OTHER_DC_URI
SVC2=$PWSYNC_TEST_OTHER_SVC_DN
SVC2_PW=$PWSYNC_TEST_OTHER_SVC_PASSWORD_FILE

# ---- the service account: LDAPS with the shared CA, DirSync ----
check "the second domain's service account binds over LDAPS (CA of the first domain), naming context DC=other,DC=example" \
    [ "$(attr "$D2" "$SVC2" "$SVC2_PW" '' defaultNamingContext)" = "DC=other,DC=example" ]
check "  ... with the first domain's service password: rc 49" [ "$(bind_rc "$D2" "$SVC2" "$PWSYNC_TEST_SVC_PASSWORD")" = 49 ]
rc ldapsearch -LLL -x -o nettimeout=5 -H "$D2" -D "$SVC2" -y "$SVC2_PW" -E '!dirSync=0/0' \
    -b "$PWSYNC_TEST_OTHER_DC_BASE" '(sAMAccountName=alice)' sAMAccountName
if [[ $RC == 0 ]] && grep -q '^sAMAccountName: alice$' "$T/out"; then ok "  ... and may use DirSync (flags 0) on the naming context"
else bad "  ... DirSync as the service account: rc $RC" "$T/out"; fi
check "  ... it is in Domain Admins there" bash -c "ldapsearch -LLL -x -o nettimeout=5 -H '$D2' -D '$SVC2' -y '$SVC2_PW' -b '$SVC2' -s base memberOf | grep -q '^memberOf: CN=Domain Admins,CN=Users,DC=other,DC=example$'"
pol=$(ldapsearch -LLL -x -o nettimeout=5 -H "$D2" -D "$SVC2" -y "$SVC2_PW" -b "$PWSYNC_TEST_OTHER_DC_BASE" -s base minPwdAge pwdHistoryLength pwdProperties | grep -E '^(minPwdAge|pwdHistoryLength|pwdProperties):' | sort | tr '\n' ' ')
check "  ... policy as in the first domain: $pol" [ "$pol" = "minPwdAge: 0 pwdHistoryLength: 24 pwdProperties: 1 " ]

# ---- the same account names, different objects and passwords ----
for u in alice bob; do
    U=${u^^}
    dn1_var=PWSYNC_TEST_DC_DN_$U dn2_var=PWSYNC_TEST_OTHER_DC_DN_$U
    pw1_var=PWSYNC_TEST_DC_PASSWORD_$U pw2_var=PWSYNC_TEST_OTHER_DC_PASSWORD_$U
    g1=$(attr "$D1" "$PWSYNC_TEST_SVC_DN" "$PWSYNC_TEST_SVC_PASSWORD_FILE" "${!dn1_var}" objectGUID)
    g2=$(attr "$D2" "$SVC2" "$SVC2_PW" "${!dn2_var}" objectGUID)
    s2=$(attr "$D2" "$SVC2" "$SVC2_PW" "${!dn2_var}" sAMAccountName)
    check "$u exists in both domains (sAMAccountName $s2 in OTHER) with different objectGUIDs" \
        [ -n "$g1" -a -n "$g2" -a "$g1" != "$g2" -a "$s2" = "$u" ]
    check "  ... its passwords differ" [ "${!pw1_var}" != "${!pw2_var}" ]
    check "  ... domain 2's password binds on domain 2" [ "$(bind_rc "$D2" "${!dn2_var}" "${!pw2_var}")" = 0 ]
    check "  ... domain 1's password does not (rc 49)" [ "$(bind_rc "$D2" "${!dn2_var}" "${!pw1_var}")" = 49 ]
    check "  ... nor domain 2's on domain 1 (rc 49)" [ "$(bind_rc "$D1" "${!dn1_var}" "${!pw2_var}")" = 49 ]
done

# ---- a reset on domain 2 runs domain 2's check password script slot ----
REC1=$T/hook1.rec REC2=$T/hook2.rec
hook_recorder "$PWSYNC_TEST_CPS_HOOK_DIR" "$REC1"
hook_recorder "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR" "$REC2"
NEW='Other-Reset-1a.X'
# Domain 1's alice: other tests change her password, so compare when it was set.
set1=$(attr "$D1" "$PWSYNC_TEST_SVC_DN" "$PWSYNC_TEST_SVC_PASSWORD_FILE" "$PWSYNC_TEST_DC_DN_ALICE" pwdLastSet)
reset2 "$PWSYNC_TEST_OTHER_DC_DN_ALICE" "$NEW"
want="account=alice upn=alice@other.example length=${#NEW}"
if [[ $RC == 0 ]] && grep -qx "$want" "$REC2" 2>/dev/null; then ok "a reset of alice on domain 2 ran its hook slot ($want)"
else bad "reset on domain 2: rc $RC, hook record '$(cat "$REC2" 2>/dev/null)', wanted '$want'" "$T/out"; fi
check "  ... and not domain 1's slot" [ ! -e "$REC1" ]
rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
check "  ... alice binds on domain 2 with the new password" [ "$(bind_rc "$D2" "$PWSYNC_TEST_OTHER_DC_DN_ALICE" "$NEW")" = 0 ]
check "  ... not with the old one (old password allowed period 0: rc 49)" \
    [ "$(bind_rc "$D2" "$PWSYNC_TEST_OTHER_DC_DN_ALICE" "$PWSYNC_TEST_OTHER_DC_PASSWORD_ALICE")" = 49 ]
check "  ... domain 1's alice's password untouched (pwdLastSet $set1)" \
    [ -n "$set1" -a "$(attr "$D1" "$PWSYNC_TEST_SVC_DN" "$PWSYNC_TEST_SVC_PASSWORD_FILE" "$PWSYNC_TEST_DC_DN_ALICE" pwdLastSet)" = "$set1" ]
reset2 "$PWSYNC_TEST_OTHER_DC_DN_ALICE" 'alllowercase12345'
check "the dispatcher's complexity check: a non-complex password refused (rc 19)" [ "$RC" = 19 ]
printf '#!/bin/sh\ncat >/dev/null\nexit 1\n' >"$T/deny"
chmod 0755 "$T/deny"
mv -f "$T/deny" "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR/hook"
reset2 "$PWSYNC_TEST_OTHER_DC_DN_BOB" 'Other-Denied-1b.Y'
check "a refusing hook in domain 2's slot makes domain 2 refuse (rc 19)" [ "$RC" = 19 ]
rm -f "$PWSYNC_TEST_OTHER_CPS_HOOK_DIR/hook"

# ---- start again while it runs: back to its first state ----
t=$(ms)
if "$SD" start "$STATE" >"$T/start2.log" 2>&1; then
    RESTART_MS=$(( $(ms) - t ))
    ok "start again while running ($RESTART_MS ms)"
else
    RESTART_MS=-
    bad "second start failed" "$T/start2.log"
fi
check "  ... alice's initial domain-2 password binds again" \
    [ "$(bind_rc "$D2" "$PWSYNC_TEST_OTHER_DC_DN_ALICE" "$PWSYNC_TEST_OTHER_DC_PASSWORD_ALICE")" = 0 ]

# ---- stop: nothing of domain 2 left ----
# domain2_procs: PIDs of processes with a file of domain 2's Samba folder open.
domain2_procs() {
    local p f
    for p in /proc/[0-9]*; do
        for f in "$p"/fd/*; do
            if [[ $(readlink "$f" 2>/dev/null) == "$PWSYNC_TEST_OTHER_SAMBA_DIR/"* ]]; then echo "${p#/proc/}"; break; fi
        done
    done
}
pid=$(cat "$PWSYNC_TEST_OTHER_SAMBA_PID_FILE" 2>/dev/null)
before=$(domain2_procs | tr '\n' ' ')
check "domain 2's samba runs (pid $pid; processes with its files open: $before)" [ -n "$pid" -a -n "$before" ]
t=$(ms)
if "$SD" stop "$STATE" >"$T/stop.log" 2>&1; then ok "stopped ($(( $(ms) - t )) ms)"; else bad "stop failed" "$T/stop.log"; fi
check "  ... its samba is gone" bash -c "! kill -0 '$pid' 2>/dev/null"
left=$(domain2_procs | tr '\n' ' ')
check "  ... no process has its files open (${left:-none})" [ -z "$left" ]
check_quiet "  ... LDAPS on $PWSYNC_TEST_OTHER_DC_IP no longer answers" bash -c "! timeout 5 ldapsearch -x -o nettimeout=2 -H '$D2' -b '' -s base"
check_quiet "  ... status: stopped (non-zero)" bash -c "! '$SD' status '$STATE'"
check_quiet "  ... a second stop is fine" "$SD" stop "$STATE"
check "  ... domain 1's DC still answers" [ "$(bind_rc "$D1" "$PWSYNC_TEST_SVC_DN" "$PWSYNC_TEST_SVC_PASSWORD")" = 0 ]

echo "second_domain_smoke: start $START_MS ms ($how), start again $RESTART_MS ms, total $(( $(ms) - T0 )) ms"
harness_end
