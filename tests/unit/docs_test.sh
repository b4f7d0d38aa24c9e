#!/bin/bash
# The man page names every command `pwsync --help` lists, and the bash
# completion offers commands, subcommands and options.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$top/testenv/lib/harness.sh"
harness_begin docs_test
pwsync=${PWSYNC_BIN_pwsync:?}

# Commands: the first one or two words of each command line of --help.
man=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$top/docs/man/pwsync.8")
mapfile -t commands < <("$pwsync" --help | sed -n 's/^  \([a-z][a-z-]*\)\( \([a-z][a-z-]*\)\)\{0,1\}.*/\1 \3/p' | sed 's/ *$//')
(( ${#commands[@]} > 40 )) || bad "too few commands parsed from pwsync --help: ${#commands[@]}"
for c in "${commands[@]}"; do
    if grep -qF "pwsync $c" <<<"$man"; then ok; else bad "docs/man/pwsync.8 does not mention 'pwsync $c'"; fi
done
# Every option of every command too.
for c in "${commands[@]}"; do
    read -ra words <<<"$c"
    for opt in $("$pwsync" "${words[@]}" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        case $opt in --help|--store|--config|--json) continue ;; esac
        if grep -qF -- "$opt" <<<"$man"; then ok; else bad "docs/man/pwsync.8 does not mention $opt of 'pwsync $c'"; fi
    done
done
# The README's opening says what is here: nothing that exists is "to come",
# and every document it points to exists.
opening=$(sed -n '1,/^## Quick start/p' "$top/README.md")
if grep -qi 'still to come' <<<"$opening"; then fail "README.md's opening still lists work as to come"; else ok; fi
for doc in $(grep -o 'docs/[A-Z]*\.md' <<<"$opening" | sort -u); do
    if [ -f "$top/$doc" ]; then ok; else fail "README.md points to $doc, which does not exist"; fi
done
for part in metrics 'cn=monitor' 'Debian' 'Windows DCs' 'BENCHMARKS'; do
    if grep -qF "$part" <<<"$opening"; then ok; else fail "README.md's opening does not mention $part"; fi
done
for page in pwsyncd.8 pwsyncd.conf.5; do
    if grep -q '^\.TH ' "$top/docs/man/$page" && grep -q '^\.SH SEE ALSO' "$top/docs/man/$page"; then ok; else bad "$page is not a man page"; fi
done

# Completion: load it and ask as bash would.
complete_words() {  # WORDS... (the last is the word being completed)
    local COMP_WORDS=("$pwsync" "$@") COMP_CWORD=$#
    COMPREPLY=()
    _pwsync
    printf '%s\n' "${COMPREPLY[@]}"
}
# shellcheck source=../../cli/completion/pwsync.bash
source "$top/cli/completion/pwsync.bash"
grep -qx mapping <(complete_words ma) && ok || bad "completion: 'ma' does not offer mapping"
grep -qx set-credentials <(complete_words mapping "") && ok || bad "completion: mapping subcommands"
grep -qx -- --reveal <(complete_words mapping show --) && ok || bad "completion: options of mapping show"
grep -qx -- --samba-hook <(complete_words notify --s) && ok || bad "completion: options of notify"
grep -qx preview <(complete_words rule "") && ok || bad "completion: rule subcommands"
grep -qx -- --keep-mappings <(complete_words rule delete --k) && ok || bad "completion: options of rule delete"
[ -z "$(complete_words zzz)" ] && ok || bad "completion: offers something for an unknown prefix"

harness_end
