#!/bin/bash
# `pwsync store migrate`: a store of N mappings (PWSYNC_MIGRATE_MAPPINGS,
# 5000 by default; 100000 is the issue's figure, run by hand) from LMDB into
# the test environment's PostgreSQL and back into LMDB, with identical
# `store verify` reports and records (odd names included), a non-empty
# target refused, `store backup` on PostgreSQL, a malformed URI's password
# never echoed, and no password in the database's files or pg_dump.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin store_migrate netns env bin
[[ -n ${PWSYNC_TEST_PG_URI:-} ]] || die "the test environment has no PostgreSQL"

N=${PWSYNC_MIGRATE_MAPPINGS:-5000}
W=$(mktemp -d "$PWSYNC_TEST_TMP/migrate.XXXXXX")
P=$PWSYNC_BIN/cli/pwsync
SCHEMA=mig_$$_$RANDOM
admin_sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$PWSYNC_TEST_PG_ADMIN_URI" -c "$1"; }
cleanup() {
    admin_sql "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
admin_sql "CREATE SCHEMA $SCHEMA AUTHORIZATION pwsync" || die "cannot create schema $SCHEMA"
PG="$PWSYNC_TEST_PG_URI&options=-csearch_path%3D$SCHEMA"
A=$W/a B=$W/b
# Every store is opened with the source's master key (store migrate does not copy it).
printf 'key = %s\n' "$A/master.key" >"$W/pwsync.conf"
pw() { "$P" "$@" --config "$W/pwsync.conf"; }

# ---- the source: odd names, secrets, N mappings ----
APP=$'App "q" \'s\' back\\slash 100% _x_ \xc3\xa9t\xc3\xa9 \xe2\x82\xac'
DESC=$'line 1\nline\t2 \x01\x1f\x7f \\ \' " %_'
PASSWORDS=('Migrate-Secret-1x' 'Migrate-Secret-2y' $'Migrate-\xc3\xa9-3z')
pw init --store "$A" >/dev/null || die "init failed"
pw app create "$APP" --description "$DESC" --store "$A" >/dev/null || die "app create failed"
python3 - "$N" >"$W/mappings.csv" <<'PY'
import sys
n = int(sys.argv[1])
odd = ["TEST\\o'neil \"x\"", "TEST\\back\\slash", "TEST\\100%_under", "TEST\\\u00e9t\u00e9 \u20ac"]
for i in range(n):
    w = odd[i] if i < len(odd) else f"TEST\\user{i}"
    print(f"{w},ext {i} 'q' \"d\" %_")
PY
t0=$(date +%s%N)
pw mapping import --app "$APP" "$W/mappings.csv" --store "$A" >/dev/null || die "mapping import failed"
t1=$(date +%s%N)
for i in 0 1 2; do
    w=$(sed -n "$((i + 1))p" "$W/mappings.csv" | cut -d, -f1)
    printf '%s' "${PASSWORDS[$i]}" | pw mapping set-credentials --app "$APP" --windows "$w" --store "$A" >/dev/null ||
        die "set-credentials failed"
done
echo "imported $N mappings in $(((t1 - t0) / 1000000)) ms"

# ---- LMDB -> PostgreSQL -> LMDB ----
t0=$(date +%s%N)
pw store migrate --to "$PG" --store "$A" >"$W/to-pg.out" 2>&1
rc=$?
t1=$(date +%s%N)
check "LMDB -> PostgreSQL succeeds ($N mappings in $(((t1 - t0) / 1000000)) ms)" [ "$rc" = 0 ]
check "  ... and reports the mappings it copied and compared" grep -qE "^mappings +$N\$" "$W/to-pg.out"
check "  ... and says where the target needs the master key" grep -q "master key: the target is sealed with $A/master.key" "$W/to-pg.out"
t0=$(date +%s%N)
pw store migrate --to "$B" --store "$PG" >"$W/to-lmdb.out" 2>&1
rc=$?
t1=$(date +%s%N)
check "PostgreSQL -> LMDB succeeds ($(((t1 - t0) / 1000000)) ms)" [ "$rc" = 0 ]
check "  ... and reports the mappings it copied" grep -qE "^mappings +$N\$" "$W/to-lmdb.out"

for s in A PG B; do
    pw store verify --json --store "${!s}" >"$W/verify.$s.json" 2>"$W/verify.$s.err" || bad "store verify on $s" "$W/verify.$s.err"
    pw audit --json --store "${!s}" >"$W/audit.$s.json"
    pw mapping list --app "$APP" --json --store "${!s}" >"$W/mappings.$s.json"
    pw app show "$APP" --json --store "${!s}" >"$W/app.$s.json"
done
# The reports are the same but for the audit records the migrations added (one per hop).
same_report() { # FROM TO HOPS
    jq -e --argjson hops "$3" --slurpfile b "$W/verify.$2.json" \
        '.ok and $b[0].ok and .secrets == $b[0].secrets and .problems == $b[0].problems and
         .records + $hops == $b[0].records' "$W/verify.$1.json"
}
check "store verify: PostgreSQL's report is the source's (plus its store.migrate record)" same_report A PG 1
check "store verify: the LMDB copy's report is the source's (plus two store.migrate records)" same_report A B 2
check "  ... the secrets were opened ($(jq .secrets "$W/verify.A.json") of them)" jq -e '.secrets >= 4' "$W/verify.B.json"
check "the audit trail is the source's plus the migrations" \
    bash -c "diff <(jq -c '.[] | del(.id)' '$W/audit.A.json') <(jq -c '[.[] | select(.action != \"store.migrate\")][] | del(.id)' '$W/audit.B.json')"
check "  ... with one store.migrate record per hop" jq -e '[.[] | select(.action == "store.migrate")] | length == 2' "$W/audit.B.json"
check "every mapping (odd names, $N in all) round-trips" cmp "$W/mappings.A.json" "$W/mappings.B.json"
check "  ... through PostgreSQL too" cmp "$W/mappings.A.json" "$W/mappings.PG.json"
check "  ... all $N of them" jq -e "length == $N" "$W/mappings.B.json"
check "quotes, backslashes, %, _, non-ASCII and control characters round-trip" cmp "$W/app.A.json" "$W/app.B.json"
check "  ... the description still holds its control characters" jq -e --arg d "$DESC" '.description == $d' "$W/app.B.json"
w=$(sed -n 3p "$W/mappings.csv" | cut -d, -f1)
pw mapping show --app "$APP" --windows "$w" --reveal --store "$B" >"$W/revealed" 2>&1
check "a sealed credential opens in the copy with the source's key" grep -qF "${PASSWORDS[2]}" "$W/revealed"
rm -f "$W/revealed"

# ---- a non-empty target is refused, nothing written ----
before=$(admin_sql "SELECT count(*) FROM $SCHEMA.pwsync_audit")
pw store migrate --to "$PG" --store "$A" >/dev/null 2>"$W/refused.err"
rc=$?
check "a PostgreSQL target that holds a store is refused (exit $rc)" [ "$rc" = 1 ]
check "  ... with a clear message" grep -q "a store already exists in" "$W/refused.err"
check "  ... and nothing written there" [ "$(admin_sql "SELECT count(*) FROM $SCHEMA.pwsync_audit")" = "$before" ]
pw store migrate --to "$B" --store "$PG" >/dev/null 2>"$W/refused2.err"
check "an LMDB target that holds a store is refused" grep -q "a store already exists in $B" "$W/refused2.err"

# ---- passwords never in a URI or an error ----
pw store migrate --to "postgresql://pwsync:Fake-Uri-Pw-1@127.0.0.1/pwsync" --store "$A" >/dev/null 2>"$W/pwuri.err"
check "a target URI with a password is refused" grep -q "holds a password" "$W/pwuri.err"
check "  ... without repeating it" bash -c "! grep -q Fake-Uri-Pw '$W/pwuri.err'"
for bad_uri in 'postgresql://pwsync:Fake-Uri-Pw-2%zz@127.0.0.1/pwsync' \
               'postgresql://pwsync:Fake-Uri-Pw-3@127.0.0.1/pwsync?sslmode' \
               'postgresql://pwsync:Fake-Uri-Pw-4@[::1/pwsync'; do
    pw store verify --store "$bad_uri" >/dev/null 2>"$W/baduri.err"
    rc=$?
    if [ "$rc" != 0 ] && grep -q "bad PostgreSQL store URI" "$W/baduri.err" && ! grep -q "Fake-Uri-Pw" "$W/baduri.err"; then
        ok "a malformed URI is refused without echoing its password ($(cut -c1-90 "$W/baduri.err"))"
    else bad "a malformed URI's error repeats its password or is unclear" "$W/baduri.err"; fi
done

# ---- store backup on PostgreSQL: the database's, with what a restore needs ----
pw store backup --store "$PG" >"$W/backup.out" 2>&1
rc=$?
check "store backup on PostgreSQL succeeds (it copies nothing)" [ "$rc" = 0 ]
check "  ... and says backups are the database's" grep -q "pg_dump" "$W/backup.out"
check "  ... and names the master key to back up apart" grep -q "back up the master key $A/master.key" "$W/backup.out"
admin_sql "DELETE FROM $SCHEMA.pwsync_settings WHERE k = 'keycheck'::bytea"
pw store backup --store "$PG" >/dev/null 2>"$W/backup.err"
rc=$?
check "store backup on PostgreSQL fails when the key check value is gone (exit $rc)" [ "$rc" != 0 ]
check "  ... with a clear message" grep -q "no key check value" "$W/backup.err"

# ---- no password in the database's files, its log, pg_dump or the LMDB stores ----
"$PWSYNC_TEST_PG_BIN/pg_dump" -d "$PWSYNC_TEST_PG_ADMIN_URI" -n "$SCHEMA" -f "$W/pg_dump.sql"
check "pg_dump has the migrated mappings" grep -q "pwsync_mappings" "$W/pg_dump.sql"
admin_sql "CHECKPOINT"
harness_secrets "$W/leak-secrets" "${PASSWORDS[@]}"
leaks=$(harness_leaks "$W/leak-secrets" "$PWSYNC_TEST_PG_DATA" "$PWSYNC_TEST_PG_LOG" "$W/pg_dump.sql" "$A" "$B" \
        "$W/to-pg.out" "$W/to-lmdb.out" "$W/audit.B.json")
check "no password in the database's files, its log, pg_dump, the stores or the reports" [ "$leaks" = 0 ]

harness_end
