# The shell harness of the integration tests, the shell unit tests and the
# bench scripts: one preamble, one set of counters, one summary line, one
# password-leak scan and one sanitizer-crash scan, so that they cannot drift.
# Source it first, then call harness_begin.
# shellcheck shell=bash

HARNESS_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# harness_begin NAME [netns] [env] [bin] [gateway]: names the script (for
# die and the summary) and checks what it needs: netns (inside
# testenv/netns), env (a started environment: sources STATE/env.sh), bin
# ($PWSYNC_BIN set), gateway (sources testenv/lib/gateway.sh).
harness_begin() {
    HARNESS_NAME=$1
    shift
    passed=0 failed=0
    local need
    for need in "$@"; do
        case $need in
            netns) [[ ${PWSYNC_NETNS:-} == 1 ]] || die "run inside testenv/netns" ;;
            env)
                [[ -f ${PWSYNC_TESTENV_STATE:-}/env.sh ]] || die "no env.sh in \$PWSYNC_TESTENV_STATE (environment not started?)"
                # shellcheck source=/dev/null
                source "$PWSYNC_TESTENV_STATE/env.sh"
                ;;
            bin) [[ -n ${PWSYNC_BIN:-} ]] || die "PWSYNC_BIN (the build folder) is not set" ;;
            gateway)
                # shellcheck source=gateway.sh
                source "$HARNESS_TOP/testenv/lib/gateway.sh"
                ;;
            *) die "harness_begin: unknown need '$need'" ;;
        esac
    done
}

# die TEXT: the script cannot run (exit 2, not a test failure).
die() { echo "${HARNESS_NAME:-test}: $*" >&2; exit 2; }

# ok [WHAT] / bad WHAT [FILE]: count a passed or failed assertion (ok
# without WHAT counts silently); bad shows FILE indented when given.
ok() { [[ -z ${1:-} ]] || echo "PASS: $1"; passed=$((passed + 1)); }
bad() {
    echo "FAIL: $1" >&2
    [[ -z ${2:-} ]] || sed 's/^/    /' "$2" >&2
    failed=$((failed + 1))
}
# check WHAT CMD...: passes when CMD succeeds (its stdout discarded).
check() { local what=$1; shift; if "$@" >/dev/null; then ok "$what"; else bad "$what"; fi; }
# check_quiet WHAT CMD...: the same, its stderr discarded too.
check_quiet() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

# harness_end: the summary line; the script's status (exit "$?" or use it last).
harness_end() {
    echo "${HARNESS_NAME:-test}: $passed passed, $failed failed"
    [ "$failed" = 0 ]
}

# newpw VAR VALUE: sets VAR to a password of this test and remembers it in
# USED_PASSWORDS, for the leak check (harness_secrets, harness_leaks).
USED_PASSWORDS=()
newpw() { printf -v "$1" '%s' "$2"; USED_PASSWORDS+=("$2"); }

# harness_secrets FILE PASSWORD...: writes the passwords (one a line, 0600)
# for harness_leaks.
harness_secrets() {
    local file=$1
    shift
    (umask 077 && printf '%s\n' "$@" >"$file")
}

# harness_leaks SECRETS TARGET...: prints how many (password, file) pairs
# leak: each non-empty line of SECRETS searched as UTF-8 and as UTF-16LE
# (what Windows and AD use) in every TARGET file and every file under a
# TARGET folder. Names each leak on stderr, never the password itself.
harness_leaks() {
    python3 - "$@" <<'PY'
import os, sys
secrets = [l for l in open(sys.argv[1], encoding="utf-8").read().split("\n") if l]
needles = [(s.encode("utf-8"), s.encode("utf-16-le")) for s in secrets]
files = []
for t in sys.argv[2:]:
    if os.path.isdir(t):
        files += [os.path.join(d, f) for d, _, fs in os.walk(t) for f in fs]
    elif os.path.exists(t):
        files.append(t)
leaks = 0
for f in sorted(files):
    try:
        data = open(f, "rb").read()
    except OSError:
        continue
    for i, (u8, u16) in enumerate(needles):
        for enc, n in (("UTF-8", u8), ("UTF-16LE", u16)):
            if n in data:
                print(f"leak: password #{i + 1} ({enc}) in {f}", file=sys.stderr)
                leaks += 1
print(leaks)
PY
}

# harness_no_crash FILE...: true when no FILE holds a sanitizer report, an
# uncaught exception (terminate) or an abort.
HARNESS_CRASH_PATTERN='sanitizer|runtime error:|terminate|abort'
harness_no_crash() { ! grep -qiE "$HARNESS_CRASH_PATTERN" "$@" 2>/dev/null; }
