# A private PostgreSQL primary + synchronous standby for one test (the HA
# tests), in the test's own folder and on ports of its own: the shared
# testenv cluster on 5432 stays untouched. Same TLS (the testenv PKI's
# postgres certificate, for 127.0.0.1), role, database and password as the
# shared cluster (PWSYNC_TEST_PG_*), so a store URI differs only in its
# hosts. Source it after STATE/env.sh, inside testenv/netns, and call
# pair_stop_all from the test's EXIT trap.
#
#   pair_start DIR [PORT1 PORT2]  primary (wal_level replica, synchronous
#                        commit to any standby) on PORT1 (5441), standby
#                        cloned by pg_basebackup -R on PORT2 (5442); returns
#                        once the standby streams synchronously
#   pair_uri [PORT...]   the multi-host store URI (target_session_attrs=
#                        read-write); the ports default to the two servers'
#                        (other ports: e.g. nftables redirects to them)
#   pair_stop_primary    the primary stopped hard (immediate: no shutdown
#                        checkpoint, clients cut), as a crashed host
#   pair_promote         the standby promoted and waiting until it accepts writes
#   pair_admin N [psql args]  psql as the superuser on server N (1 or 2),
#                        over its Unix socket; SQL on stdin
#   pair_stop_all        both servers stopped (immediate); safe to repeat
# shellcheck shell=bash

PAIR_BIN=${PWSYNC_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}

pair_as() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
pair_admin() {
    local n=$1
    shift
    timeout -k 1 10 psql -X -q -v ON_ERROR_STOP=1 -h "$PAIR_DIR/run" -p "${PAIR_PORTS[$n]}" -U postgres "$@"
}
# pair_ctl N pg_ctl-args...: pg_ctl on server N as postgres, detached from
# our stdio (ctest would otherwise wait for the server's pipes to close).
pair_ctl() {
    local n=$1
    shift
    pair_as "$PAIR_BIN/pg_ctl" -D "$PAIR_DIR/data$n" -l "$PAIR_DIR/server$n.log" "$@" </dev/null >/dev/null 2>&1
}

pair_start() {
    PAIR_DIR=$1/pg
    PAIR_PORTS=(_ "${2:-5441}" "${3:-5442}")
    local pki d
    pki=$(dirname "$PWSYNC_TEST_CA")
    # The postgres user must reach PAIR_DIR: traverse-only on the folders above.
    d=$1
    while [[ $d != "$PWSYNC_TEST_STATE" && $d != / ]]; do chmod o+x "$d"; d=$(dirname "$d"); done
    mkdir -p "$PAIR_DIR/run"
    install -m 0600 -o postgres -g postgres "$pki/postgres.key" "$PAIR_DIR/server.key"
    install -m 0644 -o postgres -g postgres "$pki/postgres.pem" "$PAIR_DIR/server.pem"
    chown -R postgres:postgres "$PAIR_DIR"
    chmod 0700 "$PAIR_DIR"
    chmod 0755 "$PAIR_DIR/run"
    # The store's password file: the role on any port of 127.0.0.1 (root's).
    PAIR_PASSFILE=$1/pg.pass
    (umask 077 && printf '127.0.0.1:*:pwsync:pwsync:%s\n' "$PWSYNC_TEST_PG_PASSWORD" >"$PAIR_PASSFILE")
    pair_as "$PAIR_BIN/initdb" -D "$PAIR_DIR/data1" -U postgres -E UTF8 --locale=C.UTF-8 -A reject \
        >"$PAIR_DIR/initdb.log" 2>&1 || { cat "$PAIR_DIR/initdb.log" >&2; return 1; }
    cat >>"$PAIR_DIR/data1/postgresql.conf" <<EOF

# Added by testenv/lib/pg_pair.sh.
listen_addresses = '127.0.0.1'
port = ${PAIR_PORTS[1]}
unix_socket_directories = '$PAIR_DIR/run'
ssl = on
ssl_cert_file = '$PAIR_DIR/server.pem'
ssl_key_file = '$PAIR_DIR/server.key'
password_encryption = 'scram-sha-256'
max_connections = 100
shared_buffers = 32MB
wal_level = replica
max_wal_senders = 4
hot_standby = on
# A commit is acknowledged once the standby has it: what a client was told
# is stored survives the loss of the primary.
synchronous_commit = on
synchronous_standby_names = '*'
EOF
    # The superuser (root mapped to it) and replication on the socket; the
    # store's role over TLS with SCRAM only.
    cat >"$PAIR_DIR/data1/pg_hba.conf" <<EOF
local   all         postgres                  peer map=admins
local   replication postgres                  peer map=admins
hostssl pwsync      pwsync   127.0.0.1/32     scram-sha-256
host    all         all      0.0.0.0/0        reject
EOF
    printf 'admins root postgres\nadmins postgres postgres\n' >"$PAIR_DIR/data1/pg_ident.conf"
    chown postgres:postgres "$PAIR_DIR/data1/pg_hba.conf" "$PAIR_DIR/data1/pg_ident.conf"
    pair_ctl 1 -w -t 60 start || { tail -n 20 "$PAIR_DIR/server1.log" >&2; return 1; }
    # No standby yet: these commits must not wait for one.
    pair_admin 1 -d postgres <<EOF || return 1
SET synchronous_commit = local;
CREATE ROLE pwsync LOGIN PASSWORD '$PWSYNC_TEST_PG_PASSWORD';
CREATE DATABASE pwsync OWNER pwsync;
EOF
    # The standby: a base backup with its primary_conninfo (-R); on its own
    # port, and never waiting for a synchronous standby of its own once
    # promoted (commits would hang: it has none).
    pair_as "$PAIR_BIN/pg_basebackup" -h "$PAIR_DIR/run" -p "${PAIR_PORTS[1]}" -U postgres \
        -D "$PAIR_DIR/data2" -R -X stream -c fast >"$PAIR_DIR/basebackup.log" 2>&1 ||
        { cat "$PAIR_DIR/basebackup.log" >&2; return 1; }
    printf "\nport = %s\nsynchronous_standby_names = ''\n" "${PAIR_PORTS[2]}" >>"$PAIR_DIR/data2/postgresql.conf"
    pair_ctl 2 -w -t 60 start || { tail -n 20 "$PAIR_DIR/server2.log" >&2; return 1; }
    local state
    for _ in $(seq 1 100); do
        state=$(pair_admin 1 -d postgres -At -c "SELECT sync_state FROM pg_stat_replication" 2>/dev/null)
        [[ $state == sync ]] && return 0
        sleep 0.1
    done
    echo "pg_pair: the standby does not stream synchronously (sync_state '$state')" >&2
    return 1
}

pair_uri() {
    local hosts='' p
    (( $# )) || set -- "${PAIR_PORTS[1]}" "${PAIR_PORTS[2]}"
    for p in "$@"; do hosts+=${hosts:+,}127.0.0.1:$p; done
    printf 'postgresql://pwsync@%s/pwsync?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=%s&passfile=%s' \
        "$hosts" "$PWSYNC_TEST_CA" "$PAIR_PASSFILE"
}

pair_stop_primary() { pair_ctl 1 -m immediate -w stop; }

pair_promote() {
    pair_ctl 2 -w -t 60 promote || return 1
    [[ $(pair_admin 2 -d postgres -At -c 'SELECT pg_is_in_recovery()') == f ]]
}

pair_stop_all() {
    [[ -n ${PAIR_DIR:-} ]] || return 0
    local n
    for n in 1 2; do
        [[ -f $PAIR_DIR/data$n/postmaster.pid ]] && pair_ctl "$n" -m immediate -w stop
    done
    return 0
}
