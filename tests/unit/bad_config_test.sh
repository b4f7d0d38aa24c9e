#!/usr/bin/env bash
# Bad configuration never crashes pwsyncd or pwsync: each case below must end
# with exactly one line on stderr that says what is wrong, and an ordinary
# non-zero exit (not a signal, no sanitizer report). No servers needed.
# Needs PWSYNC_BIN_pwsync and PWSYNC_BIN_pwsyncd.
set -uo pipefail
# shellcheck source=../../testenv/lib/harness.sh
source "$(cd "$(dirname "$0")/../.." && pwd)/testenv/lib/harness.sh"
harness_begin bad_config_test
pwsync=${PWSYNC_BIN_pwsync:?}
pwsyncd=${PWSYNC_BIN_pwsyncd:?}
work=$(mktemp -d)
trap 'chmod -R u+rwX "$work"; rm -rf "$work"' EXIT
chmod 0700 "$work"

# expect_error NAME PATTERN COMMAND...: COMMAND fails cleanly, saying PATTERN.
expect_error() {
    local name=$1 pattern=$2
    shift 2
    local rc=0
    "$@" >"$work/out" 2>"$work/err" </dev/null || rc=$?
    local lines
    lines=$(grep -c '' "$work/err")
    if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ] || [ "$lines" -ne 1 ] || ! grep -qiE -- "$pattern" "$work/err" ||
        ! harness_no_crash "$work/err"; then
        echo "FAIL $name: exit $rc, $lines line(s) on stderr, expected /$pattern/:" >&2
        head -n 20 "$work/err" >&2
        failed=$((failed + 1))
    else
        ok "$name: exit $rc: $(cat "$work/err")"
    fi
}

# A CA, a server certificate from it, and a second unrelated CA.
pki=$work/pki
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=test-ca \
    -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -out "$pki/server.pem" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other \
    -keyout "$pki/other.key" -out "$pki/other.pem" 2>/dev/null
chmod 0600 "$pki"/*.key
printf 'not a certificate\n' >"$pki/garbage.pem"

store=$work/store
PWSYNC_STORE=$store PWSYNC_CONFIG= "$pwsync" init >/dev/null || { echo "pwsync init failed" >&2; exit 1; }

# conf FILE [EXTRA LINES...]: a valid pwsyncd.conf (no directory), plus lines.
conf() {
    local file=$1
    shift
    {
        echo "store = $store"
        printf '%s\n' "$@"
        echo "[listen]"
        echo "uri = ldaps://127.0.0.1:0"
        echo "cert = $pki/server.pem"
        echo "key = $pki/server.key"
        echo "client-ca = $pki/ca.pem"
        echo "[log]"
        echo "file = $work/pwsyncd.log"
    } >"$file"
}
conf "$work/good.conf"
if ! "$pwsyncd" --config "$work/good.conf" --check-config >/dev/null 2>"$work/err"; then
    echo "the valid configuration is refused:" >&2
    cat "$work/err" >&2
    exit 1
fi

d() { expect_error "pwsyncd: $1" "$2" "$pwsyncd" --config "$3" "${@:4}"; }

# Configuration files.
d "missing file" "cannot read configuration file" "$work/nonexistent.conf" --check-config
printf 'store = %s\nthis line has no equals sign\n' "$store" >"$work/noeq.conf"
d "line without =" "noeq.conf" "$work/noeq.conf"
printf 'store = %s\n[listen\n' "$store" >"$work/bracket.conf"
d "unterminated section" "bracket.conf" "$work/bracket.conf"
conf "$work/section.conf" "[nonsense]" "a = b"
d "unknown section" "unknown section \[nonsense\]" "$work/section.conf"
conf "$work/key.conf" "[gateway]" "colour = blue"
d "unknown key" "gateway.colour: unknown key" "$work/key.conf"
conf "$work/number.conf" "[gateway]" "workers = lots"
d "not a number" "workers = lots: expected a whole number" "$work/number.conf"
printf '[listen]\nuri = ldaps://127.0.0.1:0\n' >"$work/nostore.conf"
d "no store" "store = DIR is missing" "$work/nostore.conf"
printf '\xff\xfe\x00garbage\x00\n' >"$work/binary.conf"
d "binary file" "binary.conf" "$work/binary.conf"
conf "$work/level.conf" "[log]" "level = loud"
d "bad log level" "expected debug, info, warning or error" "$work/level.conf"
conf "$work/uri.conf"
sed -i 's|^uri = .*|uri = http://127.0.0.1:80|' "$work/uri.conf"
d "listen URI of another scheme" "http" "$work/uri.conf" --check-config

# The master key.
cp "$store/master.key" "$work/master.key.saved"
conf "$work/keypath.conf" "key = $work/no-such.key"
d "missing key" "no-such.key" "$work/keypath.conf" --check-config
mkdir "$work/keydir"
conf "$work/keydir.conf" "key = $work/keydir"
d "key is a directory" "keydir" "$work/keydir.conf" --check-config
cp "$work/master.key.saved" "$work/open.key"
chmod 0644 "$work/open.key"
conf "$work/open.conf" "key = $work/open.key"
d "key readable by others" "open.key.*(group|others|chmod)" "$work/open.conf" --check-config
head -c 7 "$work/master.key.saved" >"$work/short.key"
chmod 0600 "$work/short.key"
conf "$work/short.conf" "key = $work/short.key"
d "truncated key" "short.key" "$work/short.conf" --check-config
head -c 32 /dev/urandom >"$work/other.key"
chmod 0600 "$work/other.key"
conf "$work/other.conf" "key = $work/other.key"
d "another store's key" "key" "$work/other.conf" --check-config
if [ "$(id -u)" -ne 0 ]; then
    cp "$work/master.key.saved" "$work/locked.key"
    chmod 0000 "$work/locked.key"
    conf "$work/locked.conf" "key = $work/locked.key"
    d "unreadable key" "locked.key" "$work/locked.conf" --check-config
fi

# TLS material.
conf "$work/ca.conf"
sed -i "s|^client-ca = .*|client-ca = $pki/garbage.pem|" "$work/ca.conf"
d "client CA that is not a certificate" "garbage.pem" "$work/ca.conf" --check-config
conf "$work/noca.conf"
sed -i "s|^client-ca = .*|client-ca = $work/no-such-ca.pem|" "$work/noca.conf"
d "missing client CA" "no-such-ca.pem" "$work/noca.conf" --check-config
conf "$work/mismatch.conf"
sed -i "s|^key = $pki/server.key|key = $pki/other.key|" "$work/mismatch.conf"
d "certificate and key that do not match" "key" "$work/mismatch.conf" --check-config
conf "$work/dirca.conf"
printf '[directory]\nuri = ldaps://127.0.0.1:1\nbase = DC=x\ndomain = X\nbind = simple\nbind-dn = CN=svc\n' >>"$work/dirca.conf"
(umask 077; printf 'svc-password' >"$work/svc.password")
printf 'bind-password-file = %s\nca = %s\n' "$work/svc.password" "$pki/garbage.pem" >>"$work/dirca.conf"
d "directory CA that is not a certificate" "garbage.pem|ca" "$work/dirca.conf" --check-config

# pwsync, the admin CLI.
c() { expect_error "pwsync: $1" "$2" env PWSYNC_STORE="$3" PWSYNC_CONFIG="$4" "$pwsync" "${@:5}"; }
c "missing store" "no-such-store" "$work/no-such-store" "" mapping list
c "bad INI" "line without|=|noeq" "" "$work/noeq.conf" mapping list
chmod 0644 "$store/master.key"
c "key readable by others" "(group|others|chmod)" "$store" "" mapping list
chmod 0600 "$store/master.key"
mv "$store/master.key" "$work/moved.key"
c "missing key" "master.key" "$store" "" mapping list
mv "$work/moved.key" "$store/master.key"
c "unknown adapter type" "unknown.*type|type.*bogus" "$store" "" adapter create x --type bogus
c "unknown command" "frobnicate" "$store" "" frobnicate

harness_end
