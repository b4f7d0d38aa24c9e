#!/bin/bash
# Crash test: while CHANGES Windows -> External captures over ACCOUNTS
# accounts flow to slapd (and to an exec adapter that logs what it gets, in
# order), pwsyncd is killed with SIGKILL at random moments KILLS times and
# restarted each time. The sender retries what got no answer, as the capture
# hook does. At the end: every slapd account holds exactly the last password
# sent for it, no account got an older password after a newer one, the queue
# is empty with no dead letters, `pwsync store verify` passes, and the audit
# accounts for every change (each queued job delivered or superseded).
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
# Sizes: CRASH_ACCOUNTS (200), CRASH_CHANGES (2000), CRASH_KILLS (10),
# CRASH_WORKERS (4), CRASH_SLAPD_DOWN (0: seconds slapd is stopped while
# the changes flow, before the kills). bench/crash and bench/target-down run
# longer variants.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin crash_test netns env bin gateway

ACCOUNTS=${CRASH_ACCOUNTS:-200}
CHANGES=${CRASH_CHANGES:-2000}
KILLS=${CRASH_KILLS:-10}
SLAPD_DOWN=${CRASH_SLAPD_DOWN:-0}
WORKERS=${CRASH_WORKERS:-4}
FLOOD=${CAPTURE_FLOOD:-$PWSYNC_BIN/tests/integration/capture_flood}
W=$(mktemp -d "$PWSYNC_TEST_TMP/crash.XXXXXX")
cleanup() {
    [[ -n ${FLOOD_PID:-} ]] && kill "$FLOOD_PID" 2>/dev/null
    "$here/../../testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null 2>&1
    gw_stop
    rm -rf "$W"
}
trap cleanup EXIT

gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
P=$GW_PWSYNC
run=r$RANDOM
ldap_admin=(-x -o nettimeout=10 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE")

# ACCOUNTS slapd users (one ldapadd), their mappings (one CSV import each app).
for i in $(seq -f '%03g' 1 "$ACCOUNTS"); do
    u=${run}u$i
    printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: crash\nuserPassword: Initial-%s\n\n' \
        "$u" "$PWSYNC_TEST_LDAP_PEOPLE" "$u" "$u" "$u"
    printf '%s\\%s,%s\n' "$PWSYNC_TEST_DC_DOMAIN" "$u" "$u" >>"$W/mappings.csv"
done >"$W/users.ldif"
ldapadd "${ldap_admin[@]}" -f "$W/users.ldif" >/dev/null || die "cannot add $ACCOUNTS users to slapd"
$P app create CRASH-LDAP >/dev/null && $P adapter add-app ext-ldap CRASH-LDAP >/dev/null || die "app CRASH-LDAP"
$P mapping import --app CRASH-LDAP "$W/mappings.csv" >/dev/null || die "mapping import"
# A second target that logs each delivery (account, hash of the password) in
# the order it came, to check ordering.
cat >"$W/mirror.sh" <<'SH'
#!/bin/sh
# A password comes with its newline: without it the daemon died mid-write,
# and the delivery must fail (it is sent again).
IFS= read -r pw || exit 75
printf '%s %s\n' "$1" "$(printf '%s' "$pw" | sha256sum | cut -c1-16)" >>"$(dirname "$0")/mirror.log"
SH
chmod 0700 "$W/mirror.sh"
$P app create CRASH-MIRROR >/dev/null
$P adapter create mirror --type exec --property "program=$W/mirror.sh" --sync-to-adapter --retry-delay 1 \
    --concurrency 4 >/dev/null || die "adapter mirror"
$P adapter add-app mirror CRASH-MIRROR >/dev/null && $P adapter enable mirror >/dev/null
$P mapping import --app CRASH-MIRROR "$W/mappings.csv" >/dev/null || die "mapping import (mirror)"
(umask 077 && printf '%s' 'Crash-Capture-Secret-1' >"$W/crash.secret")
$P principal create crash-dc --kind windows --capture post-commit <"$W/crash.secret" >/dev/null || die "principal"
gw_start || die "could not start the gateway"

# The changes: accounts in a scattered order, each password unique; the
# last one per account and the order (hash -> sequence) remembered.
python3 - "$ACCOUNTS" "$CHANGES" "$run" "$PWSYNC_TEST_DC_DOMAIN" "$W" <<'PY' || die "cannot write the changes"
import hashlib, json, random, sys
accounts, changes, run, domain, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rng = random.Random()
seq, last, order = {}, {}, {}
with open(f"{work}/changes", "w") as out:
    for n in range(changes):
        u = f"{run}u{(n % accounts) + 1:03d}" if n < accounts else f"{run}u{rng.randint(1, accounts):03d}"
        seq[u] = seq.get(u, 0) + 1
        pw = f"Crash-{u}-{seq[u]:05d}-{rng.randint(0, 10**9)}"
        out.write(f"{domain}\\{u}\t{pw}\n")
        last[u] = pw
        order[hashlib.sha256(pw.encode()).hexdigest()[:16]] = [u, seq[u]]
json.dump({"last": last, "order": order}, open(f"{work}/expected.json", "w"))
PY
chmod 0600 "$W/changes" "$W/expected.json"

t0=$(date +%s)
"$FLOOD" ldaps://127.0.0.1:1636 crash-dc "$W/crash.secret" "$PWSYNC_TEST_CA" "$WORKERS" "${CRASH_DEADLINE:-600}" <"$W/changes" \
    >"$W/flood.out" 2>"$W/flood.err" &
FLOOD_PID=$!
if (( SLAPD_DOWN > 0 )); then
    # Retries must outlast the outage (retry-delay 1 s doubles each time).
    $P adapter update ext-ldap --retry-count 12 >/dev/null
    sleep 2
    "$here/../../testenv/env" stop-slapd "$PWSYNC_TESTENV_STATE" >/dev/null || bad "cannot stop slapd"
    sleep "$SLAPD_DOWN"
    queued_then=$($P queue list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["queued"]))')
    "$here/../../testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null || bad "cannot start slapd"
    echo "crash_test: slapd was down ${SLAPD_DOWN} s; $queued_then jobs queued when it came back"
fi
kills=0
while (( kills < KILLS )); do
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + r / 32768 * 1.7 }')"
    kill -9 "$GW_PID" 2>/dev/null || { bad "pwsyncd was not running before kill $((kills + 1))"; break; }
    wait "$GW_PID" 2>/dev/null
    GW_PID=
    kills=$((kills + 1))
    gw_start || { bad "pwsyncd did not restart after kill $kills"; break; }
done
flood_rc=0
wait "$FLOOD_PID" || flood_rc=$?
FLOOD_PID=
read -r _ sent _ retries <"$W/flood.out" || true
echo "crash_test: $kills kills, ${sent:-0} changes answered, ${retries:-0} resends, $(( $(date +%s) - t0 )) s"
check "pwsyncd survived $kills kill -9 and restarts" [ "$kills" = "$KILLS" ]
if [ "$flood_rc" = 0 ] && [ "${sent:-0}" = "$CHANGES" ]; then ok "all $CHANGES changes were accepted (${retries:-0} resent after no answer)"
else bad "the sender did not get all changes through (rc $flood_rc): $(head -3 "$W/flood.err")"; fi

# Everything queued is delivered.
queue_empty() { $P queue list --json | python3 -c 'import json,sys; q=json.load(sys.stdin); sys.exit(0 if not q["queued"] else 1)'; }
if t=$(wait_for 180 queue_empty); then ok "the queue drained (${t} ms after the last kill)"; else bad "the queue did not drain"; fi
$P queue list --json >"$W/queue.json"
check "no dead letters" python3 -c 'import json,sys; sys.exit(1 if json.load(open(sys.argv[1]))["dead_letters"] else 0)' "$W/queue.json"

# slapd holds exactly the last password of each account.
wrong=0
while read -r u pw; do
    if ! ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "uid=$u,$PWSYNC_TEST_LDAP_PEOPLE" "$pw"; then
        wrong=$((wrong + 1)); (( wrong <= 5 )) && echo "slapd: $u does not hold its last password" >&2
    fi
done < <(python3 -c 'import json,sys; [print(u, p) for u, p in json.load(open(sys.argv[1]))["last"].items()]' "$W/expected.json")
check "every one of $ACCOUNTS slapd accounts holds exactly the last password sent for it" [ "$wrong" = 0 ]

# Ordering and completeness at the logging target; the audit's accounting.
$P audit --json >"$W/audit.json"
python3 - "$W" "$run" "$CHANGES" <<'PY' >"$W/analysis" 2>&1
import collections, json, sys
work, run, changes = sys.argv[1], sys.argv[2], int(sys.argv[3])
exp = json.load(open(f"{work}/expected.json"))
order, last = exp["order"], exp["last"]
seen, problems, dupes = {}, [], 0
for line in open(f"{work}/mirror.log"):
    account, h = line.split()
    if h not in order:
        problems.append(f"mirror got a password never sent ({account} {h})")
        continue
    u, s = order[h]
    if not account.lower().endswith(u.lower()):
        problems.append(f"mirror: {account} got {u}'s password")
    prev = seen.get(u, 0)
    if s < prev:
        problems.append(f"mirror: {u} got change {s} after change {prev}")
    dupes += s == prev
    seen[u] = max(prev, s)
for u, pw in last.items():
    import hashlib
    want = order[hashlib.sha256(pw.encode()).hexdigest()[:16]][1]
    if seen.get(u) != want:
        problems.append(f"mirror: {u} ended at change {seen.get(u)}, the last sent was {want}")
audit = json.load(open(f"{work}/audit.json"))
records = audit if isinstance(audit, list) else audit.get("records", audit.get("audit", []))
count = collections.Counter()
for r in records:
    obj = r.get("object", "")
    if run in obj:
        count[r["action"]] += 1
queued = count["job.queued"]
closed = count["job.delivered"] + count["job.superseded"]
# Two applications: each change queues two jobs exactly once; a change sent
# again after a crash that had been stored is damped, never queued twice.
if queued != 2 * changes:
    problems.append(f"audit: {queued} jobs queued for {changes} changes to two applications")
if queued != closed + count["job.dead"] or count["job.dead"]:
    problems.append(f"audit: {queued} jobs queued but {count['job.delivered']} delivered, "
                    f"{count['job.superseded']} superseded, {count['job.dead']} dead")
print(f"mirror deliveries in order for {len(seen)} accounts ({dupes} repeated after a crash); audit: " +
      ", ".join(f"{k} {v}" for k, v in sorted(count.items())))
for p in problems[:10]:
    print("PROBLEM:", p)
sys.exit(1 if problems else 0)
PY
analysis_rc=$?
cat "$W/analysis"
check "no account got an older password after a newer one; the audit accounts for every job" [ "$analysis_rc" = 0 ]
check "the store verifies" "$P" store verify
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

harness_end
