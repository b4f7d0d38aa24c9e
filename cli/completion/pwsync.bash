# bash completion for pwsync. It asks pwsync itself (`pwsync --help`,
# `pwsync NOUN VERB --help`), so it always matches the installed version.
_pwsync() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local cmd=${COMP_WORDS[0]}
    local commands
    commands=$("$cmd" --help 2>/dev/null | sed -n 's/^  \([a-z][a-z-]*\)\( \([a-z][a-z-]*\)\)\{0,1\}.*/\1 \3/p')
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$(cut -d' ' -f1 <<<"$commands" | sort -u)" -- "$cur"))
        return
    fi
    local noun=${COMP_WORDS[1]}
    local verbs
    verbs=$(awk -v n="$noun" '$1 == n && NF > 1 {print $2}' <<<"$commands")
    if [[ $COMP_CWORD -eq 2 && -n $verbs ]]; then
        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
        return
    fi
    if [[ $cur == -* ]]; then
        local sub=()
        [[ -n $verbs ]] && sub=("${COMP_WORDS[2]}")
        COMPREPLY=($(compgen -W "$("$cmd" "$noun" "${sub[@]}" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)" -- "$cur"))
        return
    fi
    COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _pwsync pwsync
