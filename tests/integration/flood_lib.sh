# A capture flood's targets, changes and end-state checks, shared by the
# crash test and the high-availability tests: Windows -> External captures
# over ACCOUNTS accounts to slapd (application CRASH-LDAP) and to an exec
# target that logs each delivery in the order it came (CRASH-MIRROR). Source
# it after harness_begin ... gateway; set P (the pwsync CLI), W (the work
# folder) and run (the accounts' name prefix) first.
# shellcheck shell=bash
# shellcheck disable=SC2154 # run, P and W are the caller's

flood_ldap_admin=(-x -o nettimeout=10 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE")

# flood_targets ACCOUNTS: the slapd users (one ldapadd), both applications
# with their mappings (one CSV import each), the mirror target writing
# W/mirror.log, and the capturing principal crash-dc (secret in W/crash.secret).
flood_targets() {
    local accounts=$1 i u
    for i in $(seq -f '%03g' 1 "$accounts"); do
        u=${run}u$i
        printf 'dn: uid=%s,%s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: crash\nuserPassword: Initial-%s\n\n' \
            "$u" "$PWSYNC_TEST_LDAP_PEOPLE" "$u" "$u" "$u"
        printf '%s\\%s,%s\n' "$PWSYNC_TEST_DC_DOMAIN" "$u" "$u" >>"$W/mappings.csv"
    done >"$W/users.ldif"
    ldapadd "${flood_ldap_admin[@]}" -f "$W/users.ldif" >/dev/null || die "cannot add $accounts users to slapd"
    $P app create CRASH-LDAP >/dev/null && $P adapter add-app ext-ldap CRASH-LDAP >/dev/null || die "app CRASH-LDAP"
    $P mapping import --app CRASH-LDAP "$W/mappings.csv" >/dev/null || die "mapping import"
    # A second target that logs each delivery (account, hash of the password,
    # time, the delivering pwsyncd's pid) in the order it came, to check
    # ordering and who delivered when.
    cat >"$W/mirror.sh" <<'SH'
#!/bin/sh
# A password comes with its newline: without it the daemon died mid-write,
# and the delivery must fail (it is sent again).
IFS= read -r pw || exit 75
printf '%s %s %s %s\n' "$1" "$(printf '%s' "$pw" | sha256sum | cut -c1-16)" "$(date +%s.%N)" "$PPID" \
    >>"$(dirname "$0")/mirror.log"
SH
    chmod 0700 "$W/mirror.sh"
    $P app create CRASH-MIRROR >/dev/null
    $P adapter create mirror --type exec --property "program=$W/mirror.sh" --sync-to-adapter --retry-delay 1 \
        --concurrency 4 >/dev/null || die "adapter mirror"
    $P adapter add-app mirror CRASH-MIRROR >/dev/null && $P adapter enable mirror >/dev/null
    $P mapping import --app CRASH-MIRROR "$W/mappings.csv" >/dev/null || die "mapping import (mirror)"
    (umask 077 && printf '%s' 'Crash-Capture-Secret-1' >"$W/crash.secret")
    $P principal create crash-dc --kind windows --capture post-commit <"$W/crash.secret" >/dev/null || die "principal"
}

# flood_changes ACCOUNTS CHANGES: W/changes, the accounts in a scattered
# order, each password unique; W/expected.json, the last one per account and
# the order (hash -> sequence).
flood_changes() {
    python3 - "$1" "$2" "$run" "$PWSYNC_TEST_DC_DOMAIN" "$W" <<'PY' || die "cannot write the changes"
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
}

# flood_sent FLOOD_RC CHANGES: the sender's verdict from W/flood.out (sets
# sent and retries).
flood_sent() {
    sent=0 retries=0
    read -r _ sent _ retries <"$W/flood.out" || true
    if [ "$1" = 0 ] && [ "${sent:-0}" = "$2" ]; then ok "all $2 changes were accepted (${retries:-0} resent after no answer)"
    else bad "the sender did not get all changes through (rc $1): $(head -3 "$W/flood.err")"; fi
}

flood_queue_empty() { $P queue list --json | python3 -c 'import json,sys; q=json.load(sys.stdin); sys.exit(0 if not q["queued"] else 1)'; }

# flood_end_checks ACCOUNTS CHANGES: the queue drains with no dead letters,
# slapd holds each account's last password, the mirror got every account's
# changes in order, the audit accounts for every job, the store verifies.
flood_end_checks() {
    local accounts=$1 changes=$2 t wrong=0 u pw rc
    if t=$(wait_for 180 flood_queue_empty); then ok "the queue drained (${t} ms after the sender finished)"; else bad "the queue did not drain"; fi
    $P queue list --json >"$W/queue.json"
    check "no dead letters" python3 -c 'import json,sys; sys.exit(1 if json.load(open(sys.argv[1]))["dead_letters"] else 0)' "$W/queue.json"
    while read -r u pw; do
        if ! ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "uid=$u,$PWSYNC_TEST_LDAP_PEOPLE" "$pw"; then
            wrong=$((wrong + 1)); (( wrong <= 5 )) && echo "slapd: $u does not hold its last password" >&2
        fi
    done < <(python3 -c 'import json,sys; [print(u, p) for u, p in json.load(open(sys.argv[1]))["last"].items()]' "$W/expected.json")
    check "every one of $accounts slapd accounts holds exactly the last password sent for it" [ "$wrong" = 0 ]
    $P audit --json >"$W/audit.json"
    python3 "$HARNESS_TOP/tests/integration/order_check.py" "$W" "$run" "$changes" >"$W/analysis" 2>&1
    rc=$?
    cat "$W/analysis"
    check "no account got an older password after a newer one; the audit accounts for every job" [ "$rc" = 0 ]
    check "the store verifies" "$P" store verify
}
