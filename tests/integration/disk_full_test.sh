#!/bin/bash
# Disk full: the store lives on a small tmpfs (mounted in the test's own
# mount namespace) that a filler file then fills. Captures keep coming:
# each is answered either success (and then it is stored and delivered) or an
# error (never success for a change that was not stored); the daemon keeps
# running; nothing stored before is lost; `pwsync store verify` passes; when
# space returns, service resumes and the newest accepted password arrives.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin disk_full_test netns env bin gateway
W=$(mktemp -d "$PWSYNC_TEST_TMP/diskfull.XXXXXX")
trap 'gw_stop; umount "$W/gw/store" 2>/dev/null; rm -rf "$W"' EXIT

mkdir -p "$W/gw/store"
mount -t tmpfs -o size=2m,mode=0700 pwsync-test-store "$W/gw/store" || die "cannot mount a tmpfs"
gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
P=$GW_PWSYNC
(umask 077 && printf '%s' 'Disk-Full-Capture-Secret-1' >"$W/dc.secret")
$P principal create dc-post --kind windows --capture post-commit <"$W/dc.secret" >/dev/null || die "principal"
gw_start || die "could not start the gateway"

# send PASSWORD: one capture for TEST\alice; the pwsync notify exit code in $RC.
send() {
    printf '%s' "$1" | "$P" notify --account "$PWSYNC_TEST_DC_DOMAIN\\alice" --gateway ldaps://127.0.0.1:1636 \
        --principal dc-post --secret-file "$W/dc.secret" --ca "$PWSYNC_TEST_CA" --timeout 10 --quiet \
        >"$W/out" 2>&1
    RC=$?
}
USED=()
before="Before-Full.$RANDOM$RANDOM"; USED+=("$before")
send "$before"
check "a capture is stored while there is space" [ "$RC" = 0 ]
check "  ... and reaches slapd" wait_for 20 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$before"
$P audit --json >"$W/audit-before.json"

# Fill the disk.
dd if=/dev/zero of="$W/gw/store/filler" bs=4k >/dev/null 2>&1
echo "store tmpfs: $(df -k --output=used,avail "$W/gw/store" | tail -n1) (KiB used, available)"
accepted=() refused=0 other=0
for i in $(seq 1 60); do
    pw="During-Full.$i.$RANDOM$RANDOM"; USED+=("$pw")
    send "$pw"
    case $RC in
        0) accepted+=("$pw") ;;
        # 52 unavailable: the sender keeps the change and tries again later.
        1 | 3) if grep -q 'refused the change (52)' "$W/out"; then
                   refused=$((refused + 1)); [[ $refused = 1 ]] && echo "first refusal: $(cat "$W/out")"
               else other=$((other + 1)); echo "notify exit $RC: $(cat "$W/out")" >&2; fi ;;
        *) other=$((other + 1)); echo "notify exit $RC: $(cat "$W/out")" >&2 ;;
    esac
done
echo "disk full: ${#accepted[@]} of 60 captures stored (LMDB reuses free pages), $refused refused with 52, $other other"
check "with the disk full, captures are refused with 52 (unavailable), never answered otherwise" \
    bash -c "[ $refused -gt 0 ] && [ $other = 0 ]"
check "pwsyncd keeps running" kill -0 "$GW_PID"
check "the gateway still answers binds" ldapwhoami -x -o nettimeout=5 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$W/gw/agent.secret"

# Space returns.
rm -f "$W/gw/store/filler"
after="After-Full.$RANDOM$RANDOM"; USED+=("$after")
for i in $(seq 1 20); do send "$after"; [ "$RC" = 0 ] && break; sleep 0.5; done
check "when space returns, captures are stored again" [ "$RC" = 0 ]
check "  ... and the newest reaches slapd" wait_for 30 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$after"
queue_clear() { $P queue list --json | python3 -c 'import json,sys; q=json.load(sys.stdin); sys.exit(0 if not q["queued"] and not q["dead_letters"] else 1)'; }
check "the queue drains with no dead letters" wait_for 30 queue_clear
check "the store verifies" "$P" store verify
$P audit --json >"$W/audit-after.json"
python3 - "$W/audit-before.json" "$W/audit-after.json" <<'PY' && ok "nothing audited before the disk filled was lost" || bad "audit records were lost"
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
key = lambda r: (r["time"], r["action"], r["object"])
missing = set(map(key, before)) - set(map(key, after))
sys.exit(1 if missing else 0)
PY
# Each accepted change was queued: two applications each.
queued=$(python3 -c 'import json,sys; print(sum(1 for r in json.load(open(sys.argv[1])) if r["action"] == "job.queued" and "alice" in r["object"].lower()))' "$W/audit-after.json")
echo "audit: $queued jobs queued for alice"
check "every accepted capture was queued (2 jobs each: ${#accepted[@]} during, 2 around)" [ "$queued" -ge $(( 2 * (${#accepted[@]} + 2) )) ]
harness_secrets "$W/leak-secrets" "${USED[@]}"
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit-after.json" "$W/gw/store")
check "no password in the log, the audit or the store" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"
harness_end
