# Shared by bench/samba-down and bench/network-cut: enter the test
# namespace with a started environment, then configure the gateway with
# testenv/lib/gateway.sh. Source it from a bench script.
# shellcheck shell=bash

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../testenv/lib/harness.sh
source "$BENCH_ROOT/testenv/lib/harness.sh"

# bench_enter NAME SCRIPT ARGS...: outside the namespace, re-run SCRIPT
# inside testenv/netns with Samba and slapd started in
# build/bench-NAME-state (stopped again at the end); inside, return.
bench_enter() {
    local name=$1 script=$2
    shift 2
    [[ ${PWSYNC_NETNS:-} == 1 ]] && return 0
    export PWSYNC_BIN=${PWSYNC_BIN:-$BENCH_ROOT/build}
    export PWSYNC_TESTENV_STATE=${PWSYNC_TESTENV_STATE:-$BENCH_ROOT/build/bench-$name-state}
    [[ -x $PWSYNC_BIN/gateway/pwsyncd && -x $PWSYNC_BIN/cli/pwsync ]] \
        || { echo "bench/$name: build pwsync and pwsyncd in $PWSYNC_BIN first" >&2; exit 2; }
    # Two runs on one state folder would stop each other's servers: the lock
    # (fd 9, kept across exec) is held until the run ends.
    exec 9>"$PWSYNC_TESTENV_STATE.lock"
    flock -n 9 || { echo "bench/$name: another run uses $PWSYNC_TESTENV_STATE" >&2; exit 2; }
    exec "$BENCH_ROOT/testenv/netns" bash -c '
        root=$1 script=$2; shift 2
        "$root/testenv/env" start "$PWSYNC_TESTENV_STATE" >/dev/null || exit 1
        rc=0; "$script" "$@" || rc=$?
        "$root/testenv/env" stop "$PWSYNC_TESTENV_STATE" >/dev/null; exit $rc' _ "$BENCH_ROOT" "$script" "$@"
}

# bench_init NAME: inside the namespace: env.sh, the gateway helpers, a work
# folder $W, the harness's PASS/FAIL counters, and $ENV (testenv/env) for
# stop/start.
bench_init() {
    BENCH_NAME=$1
    harness_begin "bench/$BENCH_NAME" netns env bin gateway
    ENV=$BENCH_ROOT/testenv/env
    export LDAPTLS_CACERT=$PWSYNC_TEST_CA LDAPTLS_REQCERT=demand LDAPRC=/dev/null LDAPCONF=/dev/null
    W=$(mktemp -d "$PWSYNC_TEST_TMP/$BENCH_NAME.XXXXXX")
    (umask 077 && : >"$W/used-passwords")
}
say() { echo "bench/$BENCH_NAME: $*"; }
now_ms() { date +%s%3N; }
bench_done() { harness_end; }

# remember_password PW: kept (0600) for the leak check at the end.
remember_password() { printf '%s\n' "$1" >>"$W/used-passwords"; }

# agent_passwd EXTERNAL NEWPW: Password Modify to the gateway as the ldap
# adapter's agent (as gateway_e2e does); prints "RC TEXT" (LDAP result code,
# or "none", and the server's additional text).
agent_passwd() {
    local f out rc
    f=$(mktemp "$W/.np.XXXXXX")
    printf '%s' "$2" >"$f"
    out=$(ldappasswd -x -o nettimeout=10 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$GW_WORK/agent.secret" \
        -T "$f" "$1" 2>&1)
    rm -f "$f"
    rc=$(sed -n 's/^Result: .*(\([0-9]*\))$/\1/p' <<<"$out" | head -n1)
    # ldappasswd prints no Result line on success.
    [[ -z $rc ]] && ! grep -q '^Result:\|ldap_' <<<"$out" && rc=0
    printf '%s %s\n' "${rc:-none}" "$(sed -n 's/^Additional info: //p' <<<"$out" | head -n1)"
}

# queue_figures: "QUEUED DEAD" from `pwsync queue list --json`.
queue_figures() {
    "$GW_PWSYNC" queue list --json | python3 -c 'import json,sys; q=json.load(sys.stdin); print(len(q["queued"]), len(q["dead_letters"]))'
}
queue_empty() { [[ $(queue_figures) == "0 "* ]]; }

# listener_ms: milliseconds for a bind to the gateway's LDAPS listener (an
# adapter principal's simple bind); fails when it got no answer in 10 s.
listener_ms() {
    local t0 t1
    t0=$(now_ms)
    ldapwhoami -x -o nettimeout=10 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$GW_WORK/agent.secret" >/dev/null 2>&1 || return 1
    t1=$(now_ms)
    echo $((t1 - t0))
}

# leak_check: none of the remembered passwords in pwsyncd's log, stderr or
# the audit, and no crash report on its stderr.
leak_check() {
    "$GW_PWSYNC" audit --json >"$W/audit.json"
    local leaks
    leaks=$(harness_leaks "$W/used-passwords" "$GW_WORK/pwsyncd.log" "$GW_WORK/pwsyncd.stderr" "$W/audit.json")
    check "no password in pwsyncd's log, stderr or the audit ($(wc -l <"$W/used-passwords") checked)" [ "$leaks" = 0 ]
    check "pwsyncd logged no crash of its own" harness_no_crash "$GW_WORK/pwsyncd.stderr"
}

# ad_create_users PREFIX N: N enabled AD users PREFIX01..PREFIXN (one
# ldapadd by the service account, a Domain Admin), each with a random
# initial password nobody needs.
ad_create_users() {
    local prefix=$1 n=$2 i u pw
    for i in $(seq -f '%02g' 1 "$n"); do
        u=$prefix$i
        pw=$(printf '"Init-%s.Xq9"' "$RANDOM$RANDOM" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
        printf 'dn: CN=%s,CN=Users,%s\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@%s\nunicodePwd:: %s\nuserAccountControl: 512\n\n' \
            "$u" "$PWSYNC_TEST_DC_BASE" "$u" "$u" "$PWSYNC_TEST_DC_DNS_DOMAIN" "$pw"
    done >"$W/ad-users.ldif"
    ldapadd -x -o nettimeout=30 -H "$PWSYNC_TEST_DC_URI" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" \
        -f "$W/ad-users.ldif" >/dev/null
}
