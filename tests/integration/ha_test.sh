#!/bin/bash
# High availability (issue 15): two pwsyncd on one PostgreSQL store, a
# private primary + synchronous standby (testenv/lib/pg_pair.sh); Windows ->
# External captures flow from capture_flood (given both gateways' URIs, at a
# bounded rate so that they keep flowing) to slapd and to the mirror target,
# which logs each delivery with its time and the delivering pwsyncd's pid.
#
#   ha_test.sh failover   the active gateway is killed -9 HA_KILLS (5) times
#                         and restarted each time; before kill HA_DB_AT (3)
#                         the database primary is stopped hard and the
#                         standby promoted. Each takeover (kill -> the other
#                         gateway's next "active:" log line) within
#                         failover-timeout; the killed one is restarted then.
#   ha_test.sh external   External -> Windows, full sync, through the
#                         standby gateway while the active one is down (killed
#                         -9): AD gets the password once (one run of the DC's
#                         check password script), it goes on to the other
#                         application, and does not bounce back to slapd.
#   ha_test.sh partition  the active gateway is cut from the database for
#                         HA_CUT (30) s by an nftables rule (each gateway
#                         reaches PostgreSQL through ports of its own,
#                         redirected to the servers', so one gateway's
#                         packets can be dropped): the other takes over within
#                         failover-timeout, the cut one delivers nothing after
#                         that, and rejoins as standby once the cut heals.
# failover and partition end with the crash test's checks (flood_end_checks);
# all with a status check and a leak scan.
# Sizes: HA_ACCOUNTS, HA_CHANGES, HA_RATE (changes/s), HA_FAILOVER_TIMEOUT (15),
# HA_DEADLINE (240 s for the sender). HA_KEEP=1 keeps the work folder.
set -uo pipefail

MODE=${1:-}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin "ha_$MODE" netns env bin gateway
# shellcheck source=../../testenv/lib/pg_pair.sh
source "$here/../../testenv/lib/pg_pair.sh"

FT=${HA_FAILOVER_TIMEOUT:-15}
case $MODE in
    failover) ACCOUNTS=${HA_ACCOUNTS:-200} CHANGES=${HA_CHANGES:-2000} RATE=${HA_RATE:-20}
              KILLS=${HA_KILLS:-5} DB_AT=${HA_DB_AT:-3} PORTS=(5441 5442) ;;
    partition) ACCOUNTS=${HA_ACCOUNTS:-100} CHANGES=${HA_CHANGES:-1000} RATE=${HA_RATE:-20}
               CUT=${HA_CUT:-30} PORTS=(5443 5444) ;;
    external) PORTS=(5445 5446) ;;
    *) die "usage: ha_test.sh failover|partition|external" ;;
esac
FLOOD=${CAPTURE_FLOOD:-$PWSYNC_BIN/tests/integration/capture_flood}
W=$(mktemp -d "$PWSYNC_TEST_TMP/ha.XXXXXX")
declare -A GPID=()
NFT_TABLE=pwsync_ha

# ha_stop N: gateway N stopped (SIGTERM, SIGKILL after 10 s).
ha_stop() {
    local pid=${GPID[$1]:-} i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    GPID[$1]=
}
cleanup() {
    [[ -n ${FLOOD_PID:-} ]] && kill "$FLOOD_PID" 2>/dev/null
    nft delete table ip "$NFT_TABLE" 2>/dev/null
    ha_stop 1
    ha_stop 2
    gw_stop
    pair_stop_all
    if [[ -n ${HA_KEEP:-} ]]; then echo "ha_$MODE: work folder kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

pair_start "$W" "${PORTS[@]}" || die "cannot start the PostgreSQL pair"
# gw_setup's PostgreSQL store (a schema of its own) in the pair's database.
PWSYNC_E2E_STORE=postgresql PWSYNC_TEST_PG_URI=$(pair_uri) \
    PWSYNC_TEST_PG_ADMIN_URI="postgresql://postgres@/pwsync?host=$PAIR_DIR/run&port=${PAIR_PORTS[1]}" \
    gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
P=$GW_PWSYNC
run=r$RANDOM
# shellcheck source=flood_lib.sh
source "$here/flood_lib.sh"
if [[ $MODE != external ]]; then
    flood_targets "$ACCOUNTS"
    flood_changes "$ACCOUNTS" "$CHANGES"
fi

# ha_conf N STORE: gwN.conf from gw_setup's pwsyncd.conf (which the CLI
# keeps using): its name, failover-timeout, store URI, ports N636/N389, log.
ha_conf() {
    local line
    while IFS= read -r line; do
        case $line in
            'store = '*) line="store = $2" ;;
            'uri = ldaps://127.0.0.1:1636 '*) line="uri = ldaps://127.0.0.1:${1}636 ldap://127.0.0.1:${1}389" ;;
            'file = '*/pwsyncd.log) line="file = $W/gw/gw$1.log" ;;
        esac
        printf '%s\n' "$line"
        [[ $line != '[gateway]' ]] || printf 'name = gw%s\nfailover-timeout = %s\n' "$1" "$FT"
    done <"$W/gw/pwsyncd.conf" >"$W/gw/gw$1.conf"
}
# ha_start N: gateway N started; W/pids maps its pid to N.
ha_start() {
    gw_start_conf "$W/gw/gw$1.conf" "ldaps://127.0.0.1:${1}636" "$W/gw/gw$1.log" || return 1
    GPID[$1]=$GW_PID
    echo "$GW_PID $1" >>"$W/pids"
}
# ha_active: the active gateway's number per `pwsync status --json` (empty: none).
ha_active() {
    timeout 10 "$P" status --json 2>/dev/null |
        python3 -c 'import json,sys; a=json.load(sys.stdin).get("active_gateway") or ""; print(a[2:] if a.startswith("gw") else a)'
}
ha_is_active() { [[ $(ha_active) == "$1" ]]; }
ha_some_active() { [[ -n $(ha_active) ]]; }
# ha_delivered_since EPOCH: the mirror got something after EPOCH (s.fraction).
ha_delivered_since() { awk -v t="$1" '$3 > t { f = 1 } END { exit !f }' "$W/mirror.log"; }
# ha_active_lines [N]: how many "active:" lines gateway N (default: both) logged.
ha_active_lines() {
    local files=("$W/gw/gw1.log" "$W/gw/gw2.log")
    [[ -z ${1:-} ]] || files=("$W/gw/gw$1.log")
    cat "${files[@]}" 2>/dev/null | grep -c ': active:'
}
ha_more_active_lines() { (( $(ha_active_lines "${2:-}") > $1 )); }
now_ms() { date +%s%3N; }
# ha_diagnose: what the gateways and the database are doing (after a stall).
ha_diagnose() {
    echo "ha_$MODE: status: $(timeout 10 "$P" status --json 2>&1 | python3 -c 'import json,sys; s=json.load(sys.stdin); print(json.dumps({"active_gateway": s.get("active_gateway"), "gateways": s.get("gateways")}))' 2>&1)"
    local n
    for n in 1 2; do
        [[ -f $PAIR_DIR/data$n/postmaster.pid ]] || continue
        echo "ha_$MODE: server $n sessions (state, wait event, query):"
        pair_admin "$n" -d postgres -At -F ' | ' -c "SELECT state, wait_event_type, wait_event, left(query, 100)
            FROM pg_stat_activity WHERE datname = 'pwsync' ORDER BY 1, 2, 3" 2>&1 | sort | uniq -c | sed 's/^/    /'
    done
}

# The store URI of each gateway: the same for both, or in the partition
# test each through ports of its own, redirected to the servers' ports.
store_of() { printf '%s&options=-csearch_path%%3D%s' "$(pair_uri "$@")" "$GW_PG_SCHEMA"; }
if [[ $MODE == partition ]]; then
    nft -f - <<EOF || die "cannot set up the nftables redirects"
table ip $NFT_TABLE {
    chain nat_out {
        type nat hook output priority -100;
        ip daddr 127.0.0.1 tcp dport { 6443, 7443 } redirect to :${PAIR_PORTS[1]}
        ip daddr 127.0.0.1 tcp dport { 6444, 7444 } redirect to :${PAIR_PORTS[2]}
    }
    chain cut { type filter hook output priority 0; }
}
EOF
    # Gateway N through ports (N+5)443 and (N+5)444.
    ha_conf 1 "$(store_of 6443 6444)"
    ha_conf 2 "$(store_of 7443 7444)"
else
    ha_conf 1 "$(store_of)"
    ha_conf 2 "$(store_of)"
fi
ha_start 1 || die "could not start gateway 1"
wait_for $((FT + 15)) ha_is_active 1 >/dev/null || die "gateway 1 did not become active: $(ha_active)"
ha_start 2 || die "could not start gateway 2"
check "gateway 2 started as standby" ha_is_active 1

t0=$(date +%s)
flood() {
    "$FLOOD" "$1" crash-dc "$W/crash.secret" "$PWSYNC_TEST_CA" 4 "${HA_DEADLINE:-240}" "$RATE" <"$W/changes" \
        >"$W/flood.out" 2>"$W/flood.err" &
    FLOOD_PID=$!
}

if [[ $MODE == external ]]; then
    # bob from his first passwords (an earlier test may have changed them).
    if ! ldap_bind_ok "$PWSYNC_TEST_DC_URI" "$PWSYNC_TEST_DC_DN_BOB" "$PWSYNC_TEST_DC_PASSWORD_BOB" ||
       ! ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_BOB" "$PWSYNC_TEST_LDAP_PASSWORD_BOB"; then
        "$here/../../testenv/env" reset-directories "$PWSYNC_TESTENV_STATE" >"$W/reset.log" 2>&1 ||
            { cat "$W/reset.log" >&2; die "could not reset the directories"; }
    fi
    # The DC's capture hook: both gateways, and each run for bob counted
    # (Samba runs it once per password write).
    sed -i 's|^gateway = .*|gateway = ldaps://127.0.0.1:1636 ldaps://127.0.0.1:2636|' "$W/gw/hook.conf"
    cat >"$W/gw/hook" <<HOOK
#!/bin/sh
[ "\$SAMBA_CPS_ACCOUNT_NAME" != bob ] || echo bob >>"$W/hook-runs"
exec "$GW_PWSYNC" notify --samba-hook --config "$W/gw/hook.conf"
HOOK
    B1='Blue-Harbour.71k'
    c=$(ha_active)
    [[ $c == 1 || $c == 2 ]] || die "no active gateway (status: '$c')"
    o=$((3 - c))
    kill -9 "${GPID[$c]}"
    wait "${GPID[$c]}" 2>/dev/null
    GPID[$c]=
    tk=$(now_ms)
    (umask 077 && printf '%s' "$PWSYNC_TEST_LDAP_PASSWORD_BOB" >"$W/old" && printf '%s' "$B1" >"$W/new")
    ldappasswd -x -o nettimeout=10 -H "ldaps://127.0.0.1:${o}636" -D cn=ldap-agent -y "$W/gw/agent.secret" \
        -t "$W/old" -T "$W/new" bob >"$W/out" 2>&1
    check "ldappasswd for bob through the standby gw$o, gw$c down, succeeds" [ $? = 0 ]
    mainframe_has() { grep -c "^BOB $(printf '%s' "$B1" | sha256sum | cut -c1-16)\$" "$W/gw/mainframe.log" 2>/dev/null; }
    if wait_for $((FT + 15)) ldap_bind_ok "$PWSYNC_TEST_DC_URI" "$PWSYNC_TEST_DC_DN_BOB" "$B1" >/dev/null; then
        ok "AD has bob's new password ($(( $(now_ms) - tk )) ms after the active gateway was killed)"
    else bad "AD did not get bob's new password within $((FT + 15)) s"; fi
    check "it went on to bob's other application" wait_for $((FT + 15)) mainframe_has
    sleep 6   # past a watcher poll (poll-interval 5)
    check "AD got it once (the check password script ran $(grep -c . "$W/hook-runs" 2>/dev/null) times for bob)" \
        [ "$(grep -c . "$W/hook-runs" 2>/dev/null)" = 1 ]
    check "the other application got it once" [ "$(mainframe_has)" = 1 ]
    check "not bounced back to the origin (slapd still holds bob's old password)" \
        ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_BOB" "$PWSYNC_TEST_LDAP_PASSWORD_BOB"
    ha_start "$c" || bad "gateway $c did not restart"
    sample=("$B1")
elif [[ $MODE == failover ]]; then
    flood "ldaps://127.0.0.1:1636 ldaps://127.0.0.1:2636"
    : >"$W/takeovers"
    kills=0 late=0
    for ((k = 1; k <= KILLS; k++)); do
        sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 1 + r / 32768 * 2 }')"
        if (( k == DB_AT )); then
            # The database's own failover: primary gone, standby promoted.
            td=$(now_ms)
            pair_stop_primary || bad "the primary did not stop"
            # A foreign client's bind while no primary answers: told to try
            # again (52), not that its secret is wrong (49, which the bind
            # throttle counts and a sender takes as final).
            tw=$(now_ms)
            ldapwhoami -x -o nettimeout=10 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$W/gw/agent.secret" \
                >"$W/whoami" 2>&1
            rc=$?
            td=$((td + $(now_ms) - tw))  # the figures below leave the bind's time out
            pair_promote || bad "the standby was not promoted"
            tp=$(now_ms)
            check "ldapwhoami while the database has no primary: 52, not 49 (exit $rc: $(tr '\n' ' ' <"$W/whoami"))" [ "$rc" = 52 ]
            agent_whoami() { ldapwhoami -x -o nettimeout=10 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$W/gw/agent.secret" >/dev/null 2>&1; }
            check "the same bind once the standby is promoted" wait_for 30 agent_whoami
            check "the store URI reaches the promoted standby" \
                test "$(timeout 10 psql -X -At "$(store_of)" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = f
            # Dispatch resumes: a delivery after the promotion (while changes flow).
            if kill -0 "$FLOOD_PID" 2>/dev/null; then
                if t=$(wait_for $((FT + 30)) ha_delivered_since "$(awk -v t="$tp" 'BEGIN { printf "%.3f", t / 1000 }')"); then
                    echo "ha_failover: primary stopped and standby promoted in $((tp - td)) ms; first delivery $((tp - td + t)) ms after the stop"
                    ok
                else
                    bad "no delivery within $((FT + 30)) s of the standby's promotion"
                    ha_diagnose
                fi
            fi
            wait_for $((FT + 30)) ha_some_active >/dev/null
        fi
        n=$(ha_active)
        [[ $n == 1 || $n == 2 ]] || { bad "no active gateway before kill $k (status: '$n')"; break; }
        pid=${GPID[$n]}
        flowing=no
        kill -0 "$FLOOD_PID" 2>/dev/null && flowing=yes
        before=$(ha_active_lines $((3 - n)))
        tk=$(now_ms)
        kill -9 "$pid"
        wait "$pid" 2>/dev/null
        GPID[$n]=
        kills=$k
        # The other one takes over; then the killed one comes back (as standby).
        if wait_for $((FT + 15)) ha_more_active_lines "$before" $((3 - n)) >/dev/null; then
            took=$(( $(now_ms) - tk ))
            echo "ha_failover: kill $k: gw$n (pid $pid) killed, gw$((3 - n)) active after $took ms (changes flowing: $flowing)"
            echo "$k $n $pid $tk $took $flowing" >>"$W/takeovers"
            (( took <= FT * 1000 )) || late=$((late + 1))
        else
            bad "kill $k: gw$((3 - n)) did not take over within $((FT + 15)) s"
            late=$((late + 1))
        fi
        ha_start "$n" || { bad "gateway $n did not restart after kill $k"; break; }
    done
    flood_rc=0
    wait "$FLOOD_PID" || flood_rc=$?
    FLOOD_PID=
    echo "ha_failover: $kills kills, $(( $(date +%s) - t0 )) s"
    check "the active gateway was killed -9 $KILLS times, and restarted" [ "$kills" = "$KILLS" ]
    check "each takeover within failover-timeout ($FT s)" [ "$late" = 0 ]
    # Kill -> first delivery by another pwsyncd (the issue's failover figure).
    python3 - "$W" <<'PY'
import statistics, sys
w = sys.argv[1]
mirror = [(float(l.split()[2]), int(l.split()[3])) for l in open(f"{w}/mirror.log")]
took, first = [], []
for line in open(f"{w}/takeovers"):
    k, n, pid, tk, ms, flowing = line.split()
    took.append(int(ms))
    after = [t for t, p in mirror if t * 1000 > int(tk) and p != int(pid)]
    if after:
        first.append(round(min(after) * 1000 - int(tk)))
if took:
    print(f"ha_failover: kill -> next active: p50 {statistics.median(took):.0f} ms, max {max(took)} ms; "
          f"kill -> first delivery by another pwsyncd: "
          + (f"p50 {statistics.median(first):.0f} ms, max {max(first)} ms" if first else "none"))
PY
else
    # The flood goes to the standby gateway first: the cut one's listener
    # cannot store either.
    flood "ldaps://127.0.0.1:2636 ldaps://127.0.0.1:1636"
    sleep 5
    c=$(ha_active)
    [[ $c == 1 || $c == 2 ]] || die "no active gateway before the cut (status: '$c')"
    o=$((3 - c))
    cpid=${GPID[$c]}
    before=$(ha_active_lines "$o")
    tc=$(now_ms)
    nft add rule ip "$NFT_TABLE" cut meta l4proto tcp ct original proto-dst "{ $((c + 5))443, $((c + 5))444 }" drop ||
        die "cannot cut gateway $c from the database"
    if wait_for $((FT + 15)) ha_more_active_lines "$before" "$o" >/dev/null; then
        takeover=$(now_ms)
        echo "ha_partition: gw$c cut from the database; gw$o active after $((takeover - tc)) ms"
        check "gw$o took over within failover-timeout ($FT s)" [ $((takeover - tc)) -le $((FT * 1000)) ]
    else
        takeover=$(now_ms)
        bad "gw$o did not take over within $((FT + 15)) s of the cut"
    fi
    sleep "$(awk -v t="$tc" -v n="$(now_ms)" -v c="$CUT" 'BEGIN { s = (t + c * 1000 - n) / 1000; printf "%.3f", (s > 0 ? s : 0) }')"
    nft flush chain ip "$NFT_TABLE" cut || bad "cannot heal the cut"
    th=$(now_ms)
    echo "ha_partition: the cut healed after $((th - tc)) ms"
    check "the cut gateway is still running" kill -0 "$cpid"
    # It rejoins as standby: both in status, gw$o active, gw$c in contact again.
    rejoined() {
        timeout 10 "$P" status --json 2>/dev/null | python3 -c '
import datetime, json, sys
s, cut, other, healed = json.load(sys.stdin), "gw" + sys.argv[1], "gw" + sys.argv[2], int(sys.argv[3]) / 1000
g = {x["name"]: x for x in s.get("gateways", [])}
def t(v):
    return datetime.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() if v else 0
ok = (s.get("active_gateway") == other and cut in g and not g[cut]["active"] and g[other]["active"]
      and t(g[cut].get("last_contact")) >= int(healed))
sys.exit(0 if ok else 1)' "$c" "$o" "$th"
    }
    if t=$(wait_for $((FT + 15)) rejoined); then ok "after the cut gw$c rejoined as standby ($t ms after the heal), gw$o active"
    else bad "gw$c did not rejoin as standby with gw$o active: $(timeout 10 "$P" status --json 2>&1 | head -c 1500)"; fi
    flood_rc=0
    wait "$FLOOD_PID" || flood_rc=$?
    FLOOD_PID=
    echo "ha_partition: $(( $(date +%s) - t0 )) s"
    # Fencing, from the mirror's timestamps: nothing by the cut gateway after
    # the other took over (seen in its log, or its first delivery if earlier).
    python3 - "$W/mirror.log" "$cpid" "$tc" "$takeover" "$W/gw/gw$c.log" <<'PY' >"$W/fencing"
import re, sys
log, cpid, tc, seen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000, int(sys.argv[4]) / 1000
rows = [(float(l.split()[2]), int(l.split()[3])) for l in open(log)]
other = [t for t, p in rows if t > tc and p != cpid]
cutoff = min([seen] + other[:1])
cut_after = [t for t, p in rows if t > tc and p == cpid]
late = [t for t in cut_after if t > cutoff]
standby = [l[:20] for l in open(sys.argv[5]) if ": standby:" in l]
print(f"deliveries by the cut gateway after the cut: {len(cut_after)} (last {max(cut_after) - tc:.3f} s after it)"
      if cut_after else "deliveries by the cut gateway after the cut: none")
print(f"first delivery by the other gateway {other[0] - tc:.3f} s after the cut" if other else "no delivery by the other gateway")
print(f"the cut gateway's standby: lines: {', '.join(standby) or 'none'}")
print(f"deliveries by the cut gateway after the takeover ({cutoff - tc:.3f} s after the cut): {len(late)}")
sys.exit(1 if late else 0)
PY
    fence_rc=$?
    sed 's/^/ha_partition: /' "$W/fencing"
    check "the cut gateway delivered nothing after the other took over" [ "$fence_rc" = 0 ]
fi

if [[ $MODE != external ]]; then
    flood_sent "$flood_rc" "$CHANGES"
    flood_end_checks "$ACCOUNTS" "$CHANGES"
    # Fifty of the passwords sent, for the leak scan.
    mapfile -t sample < <(cut -f2 "$W/changes" | shuf -n 50)
fi
# Exactly one active gateway at the end, one of ours and alive.
timeout 10 "$P" status --json >"$W/status.json" 2>&1
check "status shows exactly one active gateway, a running one" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
act = [g for g in s.get("gateways", []) if g.get("active")]
sys.exit(0 if len(act) == 1 and act[0]["name"] == s.get("active_gateway") and str(act[0]["pid"]) in sys.argv[2:] else 1)' \
    "$W/status.json" "${GPID[1]}" "${GPID[2]}"
check "no pwsyncd logged a crash of its own" harness_no_crash "$W"/gw/*.stderr
# The passwords sent: in no log, status, audit or output.
harness_secrets "$W/secrets" "${sample[@]}"
leaks=$(harness_leaks "$W/secrets" "$W"/gw/*.log "$W"/gw/*.stderr "$W/mirror.log" "$W/gw/mainframe.log" "$W/flood.out" \
    "$W/flood.err" "$W/out" "$W/audit.json" "$W/queue.json" "$W/status.json" "$PAIR_DIR"/server*.log)
check "no password leaked into logs, audit, status or the servers' logs ($leaks found)" [ "$leaks" = 0 ]

harness_end
