#!/bin/bash
# Which DC is not capturing, with two writable DCs (issue 18), and the
# watcher moving from dc1 to dc2 when dc1 stops: dc2 is joined
# to the test domain with no check password script (capture not installed
# there), dc1 keeps the hook. pwsyncd's watcher reads dc1. A change made on
# dc1 is captured and reaches slapd; a change made on dc2 replicates to dc1
# uncaptured, marks the mapping stale and names dc2, and the per-DC view
# says dc2 silent, dc1 capturing. Then dc1 stops: the watcher moves to dc2
# and misses nothing there, and a full-sync write into AD goes to dc2 (not
# counted as uncaptured). Then dc2 gets capture of its own (its own hook
# slot and principal) and dc1 comes back: a change captured on dc2 is
# confirmed by the watcher, now on dc1 again, once it has replicated, and
# is delivered. No password in the log, the audit or the commands' output.
# Prints the join time, the replication delay, the failover and the
# cross-DC confirmation times, and the total time.
#
# It needs an environment of its own (a second DC restarts dc1 and changes
# the domain): it re-executes itself in a fresh testenv/netns and starts a
# fresh environment in PWSYNC_DCPAIR_STATE (default
# $PWSYNC_BIN/testenv-dcpair, wiped at start, removed when every check
# passed), with bare servers (second-dc joins a bare Samba), and stops it at
# the end. It needs $PWSYNC_BIN only, not the shared fixture.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
if [[ ${_PWSYNC_DCPAIR_INNER:-} != 1 ]]; then
    # testenv/netns only execs when already inside one: leave that one.
    # Its private /etc/hosts and /etc/resolv.conf are bind mounts of files
    # already deleted, onto which the nested netns cannot bind its own
    # (ENOENT): take them off first, in a mount namespace of our own.
    if [[ ${PWSYNC_NETNS:-} == 1 ]]; then
        exec env -u PWSYNC_NETNS -u PWSYNC_TESTENV_STATE -u PWSYNC_TESTENV_CONTAINERS _PWSYNC_DCPAIR_INNER=1 unshare --mount -- \
            bash -c 'umount /etc/hosts; umount /etc/resolv.conf 2>/dev/null; exec "$@"' - "$top/testenv/netns" "$0" "$@"
    fi
    exec env -u PWSYNC_TESTENV_STATE -u PWSYNC_TESTENV_CONTAINERS _PWSYNC_DCPAIR_INNER=1 "$top/testenv/netns" "$0" "$@"
fi
unset _PWSYNC_DCPAIR_INNER
# shellcheck source-path=SCRIPTDIR source=../../testenv/lib/harness.sh
source "$top/testenv/lib/harness.sh"
harness_begin dc_pair netns bin

ms() { date +%s%3N; }
T0=$(ms)
STATE=${PWSYNC_DCPAIR_STATE:-$PWSYNC_BIN/testenv-dcpair}
rm -rf "$STATE"
mkdir -p "$STATE"
stop_all() {
    [[ -n ${GW_PID:-} ]] && gw_stop
    local pid
    if [[ -f $STATE/run/samba2.pid ]]; then
        pid=$(<"$STATE/run/samba2.pid")
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        rm -f "$STATE/run/samba2.pid"
    fi
    "$top/testenv/env" stop "$STATE" >>"$STATE/env.log" 2>&1
}
trap stop_all EXIT

"$top/testenv/env" start "$STATE" >"$STATE/env.log" 2>&1 || { tail -n 20 "$STATE/env.log" >&2; die "testenv/env start failed"; }
T_ENV=$(ms)
export PWSYNC_TESTENV_STATE=$STATE
harness_begin dc_pair netns env bin gateway
t=$(ms)
if PWSYNC_SECOND_DC_HOOK=none "$top/testenv/second-dc" "$STATE" >"$STATE/second-dc.log" 2>&1; then
    JOIN_MS=$(( $(ms) - t ))
    ok "dc2 joined with no check password script and answers (join and start: $JOIN_MS ms)"
else
    bad "testenv/second-dc failed" "$STATE/second-dc.log"
    harness_end
    exit 1
fi
check "  ... dc2's smb.conf has no check password script" bash -c "! grep -q 'check password script' '$STATE/samba2/etc/smb.conf'"
check "  ... dc1's still has the hook" grep -q 'check password script' "$PWSYNC_TEST_SMB_CONF"

W=$(mktemp -d "$PWSYNC_TEST_TMP/dcpair.XXXXXX")
DC1=${PWSYNC_TEST_DC_HOST,,}
DC2=dc2.${PWSYNC_TEST_DC_DNS_DOMAIN,,}
DC2_URI=ldaps://$DC2
U=alice
UDN=$PWSYNC_TEST_DC_DN_ALICE
LDN=$PWSYNC_TEST_LDAP_DN_ALICE

# ---- 1. the gateway: one application on slapd, U mapped ----
gw_setup "$W/gw" || die "could not set up the gateway"
P=$GW_PWSYNC
$P sync enable windows >/dev/null
$P app create LINUX-LDAP >/dev/null
$P adapter create ext-ldap --type ldap --property "uri=$PWSYNC_TEST_LDAP_URI" \
    --property "bind-dn=$PWSYNC_TEST_LDAP_ROOTDN" --property "dn-template=uid=%s,$PWSYNC_TEST_LDAP_PEOPLE" \
    --property "ca=$PWSYNC_TEST_CA" --secret-property bind-password \
    --sync-to-adapter --sync-from-adapter --change-windows-password --retry-delay 1 --timeout 5 <"$PWSYNC_TEST_LDAP_ROOTPW_FILE" >/dev/null
$P adapter add-app ext-ldap LINUX-LDAP >/dev/null
$P adapter enable ext-ldap >/dev/null
$P mapping create --app LINUX-LDAP --windows "$PWSYNC_TEST_DC_DOMAIN\\$U" --external "$U" >/dev/null || die "cannot map $U"
$P mapping create --app LINUX-LDAP --windows "$PWSYNC_TEST_DC_DOMAIN\\bob" --external bob >/dev/null || die "cannot map bob"
# Both DCs, dc1 first: the watcher moves to dc2 when dc1 stops (step 4).
sed -i "s|^uri = $PWSYNC_TEST_DC_URI\$|uri = $PWSYNC_TEST_DC_URI $DC2_URI|" "$W/gw/pwsyncd.conf"
$P principal create dc1 --kind windows --capture pre-commit <"$W/gw/dc1.secret" >/dev/null
$P principal create ldap-agent --kind adapter --adapter ext-ldap <"$W/gw/agent.secret" >/dev/null
if gw_start; then ok "pwsyncd started, its watcher on dc1 ($PWSYNC_TEST_DC_URI), $U mapped to slapd"; else die "could not start the gateway"; fi

# ldap_binds PASSWORD: U binds to slapd with PASSWORD.
ldap_binds() {
    (umask 077 && printf '%s' "$1" >"$W/.pw")
    ldapwhoami -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$LDN" -y "$W/.pw" >/dev/null 2>&1
    local rc=$?
    rm -f "$W/.pw"
    return $rc
}
# reset_on URI PASSWORD: the service account resets U's AD password on that DC.
reset_on() {
    local new
    new=$(printf '"%s"' "$2" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
    printf 'dn: %s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n' "$UDN" "$new" |
        ldapmodify -x -o nettimeout=10 -H "$1" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" >/dev/null
}
pwd_last_set_on() {
    ldapsearch -LLL -x -o nettimeout=10 -H "$1" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" \
        -b "$UDN" -s base pwdLastSet | sed -n 's/^pwdLastSet: //p'
}
stale_json() { $P stale list --json; }
is_stale() { stale_json | python3 -c 'import json,sys; sys.exit(0 if any(a["account"].lower().endswith(sys.argv[1]) for a in json.load(sys.stdin)) else 1)' "\\$U"; }
# dc_is DC VERDICT CAPTURED UNCAPTURED_24H: that DC's line in `pwsync status --json`.
dc_is() { $P status --json | python3 -c 'import json,sys
d = [d for d in json.load(sys.stdin)["domain_controllers"] if d["dc"] == sys.argv[1]]
sys.exit(0 if d and (d[0]["verdict"], str(d[0]["captured"]), str(d[0]["uncaptured_24h"])) == tuple(sys.argv[2:]) else 1)' "$@"; }

# ---- 2. a change on dc1, where the hook is: captured and delivered ----
newpw P1 'Dcp-OnDc1.1a'
reset_on "$PWSYNC_TEST_DC_URI" "$P1" 2>"$W/out" || bad "dc1 refused the reset" "$W/out"
if t=$(wait_for 20 ldap_binds "$P1"); then ok "a change made on dc1 is captured and delivered: $U binds to slapd with it (${t} ms)"; else bad "the change made on dc1 did not reach slapd"; fi
check "  ... the mapping is not stale" bash -c "[ \"\$('$P' stale list --json)\" = '[]' ]"
check "  ... pwsync status: dc1 capturing (1 captured, 0 uncaptured)" wait_for 10 dc_is "$DC1" capturing 1 0

# ---- 3. a change on dc2, no hook there: stale, and dc2 named ----
# Wait until dc1's change has reached dc2, so dc2's reset is the newer one.
before=$(pwd_last_set_on "$PWSYNC_TEST_DC_URI")
dc2_has_p1() { [ "$(pwd_last_set_on "$DC2_URI")" = "$before" ]; }
check "dc1's change replicated to dc2 first" wait_for 30 dc2_has_p1
newpw P2 'Dcp-OnDc2.2b'
t=$(ms)
reset_on "$DC2_URI" "$P2" 2>"$W/out" || bad "dc2 refused the reset" "$W/out"
dc1_has_p2() { local v; v=$(pwd_last_set_on "$PWSYNC_TEST_DC_URI"); [ -n "$v" ] && [ "$v" != "$before" ]; }
if wait_for 60 dc1_has_p2 >/dev/null; then
    REPL_MS=$(( $(ms) - t ))
    ok "dc2's change replicated to dc1 (pwdLastSet on dc1 changed after $REPL_MS ms)"
else
    REPL_MS=-
    bad "dc2's change did not reach dc1 within 60 s"
fi
check "  ... the mapping is now stale (stale list shows $U)" wait_for 20 is_stale
stale_json >"$W/stale.json"
check "  ... stale list names dc2 ($DC2) as the DC the uncaptured change came from" python3 -c 'import json,sys
a = [x for x in json.load(open(sys.argv[1])) if x["account"].lower().endswith(sys.argv[2])][0]
sys.exit(0 if a["dc"] == sys.argv[3] and a["applications"] == ["LINUX-LDAP"] and a["since"] else 1)' "$W/stale.json" "\\$U" "$DC2"
check "  ... the audit says so" bash -c "'$P' audit | grep change.uncaptured | grep -i '$U' | grep -q 'made on DC $DC2'"
check "  ... nothing reached slapd: $U still binds there with dc1's password" ldap_binds "$P1"
check "pwsync status: dc2 silent (0 captured, 1 uncaptured)" dc_is "$DC2" silent 0 1
check "pwsync status: dc1 still capturing (1 captured, 0 uncaptured)" dc_is "$DC1" capturing 1 0
$P status >"$W/status.txt"
check "  ... and in text, one line per DC" bash -c "grep -Eq '^$DC1 .* capturing\$' '$W/status.txt' && grep -Eq '^$DC2 .* silent\$' '$W/status.txt'"

# ---- 4. dc1 stops: the watcher moves to dc2, misses nothing, repeats nothing ----
# bob's password is reset on dc2 (no hook: uncaptured) while dc1 is down.
stale_has() { stale_json | python3 -c 'import json,sys; sys.exit(0 if any(a["account"].lower().endswith(sys.argv[1]) and a["dc"] == sys.argv[2] for a in json.load(sys.stdin)) else 1)' "\\$1" "$2"; }
alice_since=$(python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1])) if a["account"].lower().endswith("\\alice")][0]["since"])' "$W/stale.json")
t=$(ms)
"$top/testenv/env" stop-samba "$STATE" >>"$STATE/env.log" 2>&1 || bad "could not stop dc1"
UDN=$PWSYNC_TEST_DC_DN_BOB
newpw P3 'Dcp-Dc1Down.3c'
reset_on "$DC2_URI" "$P3" 2>"$W/out" || bad "dc2 refused bob's reset" "$W/out"
if wait_for 90 stale_has bob "$DC2" >/dev/null; then
    FAILOVER_MS=$(( $(ms) - t ))
    ok "with dc1 stopped, the watcher reads dc2: bob's change there is seen, stale, named dc2 (${FAILOVER_MS} ms after dc1 stopped)"
else
    FAILOVER_MS=-
    bad "bob's change on dc2 was not seen with dc1 stopped" "$W/gw/pwsyncd.log"
fi
check "  ... dc2 now counts 2 uncaptured changes (alice's not counted again)" wait_for 10 dc_is "$DC2" silent 0 2
check "  ... dc1's counts unchanged (1 captured, 0 uncaptured)" dc_is "$DC1" capturing 1 0
check "  ... alice stays stale since her change on dc2, not since the failover" python3 -c 'import json,sys
a = [x for x in json.load(sys.stdin) if x["account"].lower().endswith("\\alice")]
sys.exit(0 if a and a[0]["since"] == sys.argv[1] else 1)' "$alice_since" < <(stale_json)
check "  ... the audit has each uncaptured change once" bash -c "[ \"\$('$P' audit | grep -c change.uncaptured)\" = 2 ]"
grep 'directory watcher' "$W/gw/pwsyncd.log" >"$W/watcher.log"
if grep -Eq "directory watcher (started on $DC2_URI \(resuming\)|now reads $DC2_URI )" "$W/watcher.log"; then ok "  ... pwsyncd's log says the watcher started again on dc2"
else bad "  ... pwsyncd's log does not say the watcher started again on dc2" "$W/watcher.log"; fi

# ---- 5. full sync with dc1 stopped: the write into AD goes to dc2 ----
UDN=$PWSYNC_TEST_DC_DN_ALICE
$P sync enable full >/dev/null
newpw P4 'Dcp-FullSync.4d'
t=$(ms)
gw_passwd "$U" "$P1" "$P4"   # the stored old password: dc1's capture of step 2
check "with dc1 stopped, an External -> Windows full change succeeds (rc $RC, $(( $(ms) - t )) ms)" [ "$RC" = 0 ]
check "  ... AD has it: $U binds on dc2 with it" ldap_bind_ok "$DC2_URI" "$UDN" "$P4"
# Our own write, seen by the watcher on dc2 (no hook there), is not an
# uncaptured change. Proof that the watcher has read past it: a later
# uncaptured reset of bob on dc2, counted (the watcher reports in USN order).
UDN=$PWSYNC_TEST_DC_DN_BOB
newpw P6 'Dcp-AfterOwnWrite.6f'
reset_on "$DC2_URI" "$P6" 2>"$W/out" || bad "dc2 refused bob's reset" "$W/out"
UDN=$PWSYNC_TEST_DC_DN_ALICE
check "  ... the watcher read past pwsync's own write (bob's later reset counted: dc2 0 captured, 3 uncaptured)" \
    wait_for 30 dc_is "$DC2" silent 0 3
# uncaptured_of ACCOUNT: how many change.uncaptured records the audit has for it.
uncaptured_of() { $P audit --json | python3 -c 'import json,sys
print(sum(1 for a in json.load(sys.stdin) if a["action"] == "change.uncaptured" and a["object"].lower().split("\\")[-1] == sys.argv[1]))' "$1"; }
check "  ... and did not count that write as uncaptured ($U has one uncaptured change in the audit, from step 3)" \
    [ "$(uncaptured_of "$U")" = 1 ]
check "  ... bob two (steps 4 and 5)" [ "$(uncaptured_of bob)" = 2 ]

# ---- 6. capture installed on dc2, dc1 back: a capture on dc2 is confirmed by the watcher on dc1 ----
# dc2's own hook slot and capture principal (as on a production DC); its
# check password script is set when it starts. second-dc restarts dc1 too,
# with replication, before dc2: the watcher's connection moves back to dc1.
(umask 077 && printf '%s' 'Dc2-Capture-Secret-2' >"$W/gw/dc2.secret")
sed -e 's/^principal = dc1$/principal = dc2/' -e "s|^secret-file = .*|secret-file = $W/gw/dc2.secret|" "$W/gw/hook.conf" >"$W/gw/hook2.conf"
$P principal create dc2 --kind windows --capture pre-commit <"$W/gw/dc2.secret" >/dev/null
mkdir -p "$STATE/samba2/cps-hook.d"
printf '#!/bin/sh\nexec "%s" --samba-hook --config "%s"\n' "$GW_NOTIFY" "$W/gw/hook2.conf" >"$STATE/samba2/cps-hook.d/hook"
chmod 0755 "$STATE/samba2/cps-hook.d/hook"
pid=$(<"$STATE/run/samba2.pid")
kill -TERM "$pid"
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
t=$(ms)
if PWSYNC_SECOND_DC_HOOK=own "$top/testenv/second-dc" "$STATE" >>"$STATE/second-dc.log" 2>&1; then
    ok "dc2 restarted with a check password script of its own, dc1 started again ($(( $(ms) - t )) ms)"
else
    bad "testenv/second-dc could not restart the pair" "$STATE/second-dc.log"
fi
check "  ... dc2's smb.conf now names its own hook slot" grep -q "check password script = $STATE/samba2/bin/cps-hook" "$STATE/samba2/etc/smb.conf"
# Moved while running ("now reads"), or started again there after neither
# DC answered for a moment ("started on … (resuming)", with dc2's cookie).
watcher_on_dc1() { grep -Eq "directory watcher (now reads $PWSYNC_TEST_DC_URI |started on $PWSYNC_TEST_DC_URI \(resuming\))" "$W/gw/pwsyncd.log"; }
check "  ... the watcher reads dc1 again" wait_for 60 watcher_on_dc1
newpw P5 'Dcp-CapturedOnDc2.5e'
t=$(ms)
reset_on "$DC2_URI" "$P5" 2>"$W/out" || bad "dc2 refused the reset" "$W/out"
if wait_for 90 ldap_binds "$P5" >/dev/null; then
    CROSS_MS=$(( $(ms) - t ))
    ok "a change captured on dc2 is confirmed by the watcher on dc1 and delivered: $U binds to slapd with it ($CROSS_MS ms, replication included)"
else
    CROSS_MS=-
    bad "the change captured on dc2 did not reach slapd" "$W/gw/pwsyncd.log"
fi
dc2_last_principal() { $P status --json | python3 -c 'import json,sys
d = [d for d in json.load(sys.stdin)["domain_controllers"] if d["dc"] == sys.argv[1]]
sys.exit(0 if d and d[0]["last_capture_principal"] == sys.argv[2] else 1)' "$DC2" "$1"; }
check "  ... pwsync status: dc2 partly (1 captured, 3 uncaptured)" wait_for 10 dc_is "$DC2" partly 1 3
check "  ... its last capture came from principal dc2" dc2_last_principal dc2
check "  ... dc1's counts unchanged (1 captured, 0 uncaptured)" dc_is "$DC1" capturing 1 0
check "  ... the audit has the capture from principal dc2, pending then confirmed (2 confirmed in all, dc1's and dc2's)" \
    bash -c "'$P' audit | grep capture.pending | grep -i '$U' | grep -q 'from dc2 ' && [ \"\$('$P' audit | grep -c capture.confirmed)\" = 2 ]"

# ---- 7. no password anywhere it must not be ----
"$P" audit --json >"$W/audit.json"
$P status --json >"$W/status.json"
gw_stop
harness_secrets "$W/leak-secrets" "${USED_PASSWORDS[@]}" "Dc1-Capture-Secret-1" "Dc2-Capture-Secret-2" "Ldap-Agent-Secret-1"
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit.json" "$W/status.json" \
    "$W/stale.json" "$W/status.txt" "$W/out" "$W/gw/passwd.out" "$W/gw/store" "$STATE/second-dc.log" "$STATE/samba2/log/samba.log")
check "no password in the daemon's log, the audit, the store or the commands' output (${#USED_PASSWORDS[@]} checked)" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

# ---- both DCs stopped, nothing left running ----
stop_all
trap - EXIT
# leftover: processes in this PID namespace other than its init, this
# script, the subshell wait_for runs us in and the ps it runs (Samba
# renames its workers: match on no names).
leftover() {
    ps -e -o pid=,ppid=,args= >"$W/ps.txt"
    awk -v me=$$ -v sub_=$BASHPID '$1 != 1 && $1 != me && $1 != sub_ && $2 != sub_' "$W/ps.txt" >"$W/left.txt"
    [ ! -s "$W/left.txt" ]
}
if t=$(wait_for 15 leftover); then
    ok "both DCs, slapd and pwsyncd stopped: nothing left running in the namespace (${t} ms)"
else
    bad "processes left running 15 s after the stop" "$W/left.txt"
fi
echo "dc_pair: environment start $(( T_ENV - T0 )) ms, dc2 join and start ${JOIN_MS} ms, replication dc2 -> dc1 ${REPL_MS} ms, watcher failover to dc2 ${FAILOVER_MS:-} ms, capture on dc2 to slapd through the watcher on dc1 ${CROSS_MS:-} ms, total $(( $(ms) - T0 )) ms"
# Kept for a look when something failed (~100 MB).
[ "$failed" != 0 ] || rm -rf "$STATE"
harness_end
