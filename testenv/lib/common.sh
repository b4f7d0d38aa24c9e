# Shared by testenv/test and testenv/demo: install what is missing, build.
# shellcheck shell=bash

PWSYNC_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs every package named in testenv/packages*.txt that is missing:
# one apt-get update, then one apt-get install.
pwsync_install() {
    local f pkg missing=()
    for f in "$PWSYNC_TOP"/testenv/packages*.txt; do
        while read -r pkg; do
            pkg=${pkg%%#*}
            pkg=${pkg//[[:space:]]/}
            [ -n "$pkg" ] || continue
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
        done <"$f"
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "all packages present"
        return
    fi
    [ "$(id -u)" -eq 0 ] || die "missing packages (${missing[*]}); run as root to install them"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Configures and builds into $1 with extra CMake arguments after it.
# -O2 -g1: line tables and function names (what perf, gdb's backtraces and
# the sanitizers' reports use) for 16 % less compile time than -O2 -g
# (testenv/README.md, "The CI's schedule"); the sanitizer build sets its own.
# A unity build (8 sources per translation unit): the headers are parsed
# once per batch, 45 % less wall time from nothing (199 s against 363 s).
# The Debian 13 pass builds one source at a time, so a source that misses
# an include it gets from its batch still fails there.
pwsync_build() {
    local dir=$1
    shift
    say "building in $dir $*"
    cmake -S "$PWSYNC_TOP" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
        -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=8 "$@" >/dev/null || return
    cmake --build "$dir" -- -j"$(nproc)"
}
