#!/bin/bash
# Account names across restarts and renames (issue 12, part 1), against the
# real Samba AD DC: one AD account mapped in five applications, each mapping
# made with another name form (sam, DOMAIN\sam, UPN, DN, {GUID}). A change
# captured under every one of those forms must reach all five mappings —
# after the first start, after a restart of pwsyncd (the watcher resuming
# from its saved cookie), and after the account is renamed in AD. A change
# nobody captured must mark all five stale each time. Also: a capture for an
# account whose mapping is not resolved yet is looked up, not refused.
# Needs a started environment (PWSYNC_TESTENV_STATE) and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin account_names netns env bin gateway

W=$(mktemp -d "$PWSYNC_TEST_TMP/names.XXXXXX")
BASE=$PWSYNC_TEST_DC_BASE
DOM=$PWSYNC_TEST_DC_DOMAIN
DNS=$PWSYNC_TEST_DC_DNS_DOMAIN
U=nmx$RANDOM U2=nmy$RANDOM
R=${U}r   # the name after the rename
ad_ldif() { ldapmodify -x -o nettimeout=10 -H "$PWSYNC_TEST_DC_URI" -D "$PWSYNC_TEST_SVC_DN" -y "$PWSYNC_TEST_SVC_PASSWORD_FILE" >/dev/null; }
cleanup() {
    gw_stop
    for n in "$U" "$R" "$U2"; do "$PWSYNC_TEST_SAMBA_TOOL" user delete "$n" >/dev/null 2>&1; done
    rm -rf "$W"
}
trap cleanup EXIT

# An AD account of this test's own, with an explicit UPN.
ad_add_user() {
    local pw
    pw=$(printf '"%s"' "$2" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
    printf 'dn: CN=%s,CN=Users,%s\nchangetype: add\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@%s\nunicodePwd:: %s\nuserAccountControl: 512\n' \
        "$1" "$BASE" "$1" "$1" "$DNS" "$pw" | ad_ldif
}
gw_setup "$W/gw" || die "could not set up the gateway"
newpw P0 'Names-Start.1a'
ad_add_user "$U" "$P0" || die "cannot create the AD user $U"
ad_add_user "$U2" "$P0" || die "cannot create the AD user $U2"
declare -x "PWSYNC_TEST_DC_DN_${U^^}=CN=$U,CN=Users,$BASE" "PWSYNC_TEST_DC_DN_${U2^^}=CN=$U2,CN=Users,$BASE"
P=$GW_PWSYNC
CONF=$W/gw/pwsyncd.conf   # has the [directory]: `pwsync --config` resolves at creation
GUID=$($P check --user "$U" --config "$CONF" | sed -n 's/^OK  user [^:]*: \({[^}]*}\) .*/\1/p')
[[ $GUID == \{*\} ]] || die "cannot read the objectGUID of $U"

# Five applications behind one exec adapter that records which external
# account got which password (a hash of it, never the password).
cat >"$W/rec.sh" <<'SH'
#!/bin/sh
read -r pw
printf '%s %s\n' "$1" "$(printf '%s' "$pw" | sha256sum | cut -c1-16)" >>"$(dirname "$0")/rec.log"
SH
chmod 0700 "$W/rec.sh"
$P sync enable windows >/dev/null
$P adapter create rec --type exec --property "program=$W/rec.sh" --sync-to-adapter --retry-delay 1 >/dev/null
$P adapter enable rec >/dev/null
FORMS=(sam dsam upn dn guid)
name_of() {  # name_of FORM SAM: the account's name in that form
    case $1 in
        sam) echo "$2" ;; dsam) echo "$DOM\\$2" ;; upn) echo "$2@$DNS" ;;
        dn) echo "CN=$2,CN=Users,$BASE" ;; guid) echo "$GUID" ;;
    esac
}
map_as() {  # map_as FORM [--config FILE]
    local f=$1
    shift
    $P app create "APP-$f" >/dev/null && $P adapter add-app rec "APP-$f" >/dev/null
    $P mapping create --app "APP-$f" --windows "$(name_of "$f" "$U")" --external "ext-$f" "$@" >/dev/null ||
        die "cannot map $U as $f"
}
# Two made with no [directory] at hand: pwsyncd resolves them when it starts.
map_as dsam
map_as dn
$P principal create dc1 --kind windows --capture pre-commit <"$W/gw/dc1.secret" >/dev/null
$P principal create ldap-agent --kind adapter --adapter rec <"$W/gw/agent.secret" >/dev/null
# The DC's hook names the account in the form written in $W/form.
cat >"$W/gw/hook" <<HOOK
#!/bin/sh
SAMBA_CPS_ACCOUNT_NAME="\$(cat "$W/form")" exec "$GW_NOTIFY" --samba-hook --config "$W/gw/hook.conf"
HOOK
chmod 0755 "$W/gw/hook"

unresolved_count() { $P mapping list --json | python3 -c 'import json,sys; print(sum(1 for m in json.load(sys.stdin) if not m["object_guid"]))'; }
stale_count() { $P mapping list --json | python3 -c 'import json,sys; print(sum(1 for m in json.load(sys.stdin) if m["status"] == "stale" and m["app"].startswith("APP-")))'; }
unresolved_is() { [ "$(unresolved_count)" = "$1" ]; }
stale_is() { [ "$(stale_count)" = "$1" ]; }
check "mappings made without a [directory] are not resolved" unresolved_is 2
gw_start || die "could not start the gateway"
check "pwsyncd resolves them in the background when it starts" wait_for 10 unresolved_is 0
# Three made with the [directory]: resolved by the CLI at creation.
map_as sam --config "$CONF"
map_as upn --config "$CONF"
map_as guid --config "$CONF"
check "the CLI resolves a mapping at creation when the configuration has a [directory]" unresolved_is 0

delivered() {  # delivered HASH: every one of the five external accounts got it
    local f
    for f in "${FORMS[@]}"; do grep -q "^ext-$f $1\$" "$W/rec.log" 2>/dev/null || return 1; done
}
hash_of() { printf '%s' "$1" | sha256sum | cut -c1-16; }
N=0 ROUNDS=0
# round PHASE SAM: a change captured under each name form, then one not captured.
round() {
    local phase=$1 sam=$2 f pw
    for f in "${FORMS[@]}"; do
        N=$((N + 1))
        name_of "$f" "$sam" >"$W/form"
        newpw pw "Names-Pass.${N}x$RANDOM"
        if ! ad_admin_reset "$sam" "$pw" >/dev/null 2>&1; then bad "$phase: AD refused the reset"; continue; fi
        if t=$(wait_for 10 delivered "$(hash_of "$pw")"); then
            ok "$phase: a capture naming the account as $f reaches all 5 mappings (${t} ms)"
        else
            bad "$phase: a capture naming the account as $f ($(cat "$W/form")) did not reach all 5 mappings"
        fi
    done
    check "$phase: the mappings are not stale" [ "$(stale_count)" = 0 ]
    # Uncaptured: no hook in the DC's slot (Samba lets the change through).
    rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
    N=$((N + 1))
    newpw pw "Names-Lost.${N}x$RANDOM"
    ad_admin_reset "$sam" "$pw" >/dev/null 2>&1 || bad "$phase: AD refused the uncaptured reset"
    check "$phase: an uncaptured change marks all 5 mappings stale, whatever name they were made with" \
        wait_for 10 stale_is 5
    ROUNDS=$((ROUNDS + 1))
    check "$phase: the audit counts them" bash -c "[ \$('$P' audit | grep -c 'change\.uncaptured .* 5 mapping(s) marked stale') = $ROUNDS ]"
    ln -sf "$W/gw/hook" "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
}

round "first start" "$U"

# ---- restart: the watcher resumes from its saved cookie ----
kill -TERM "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=
gw_start || die "pwsyncd did not restart"
check "after the restart the watcher resumes from its cookie" wait_for 5 bash -c "grep -q 'directory watcher started on .* (resuming)' '$W/gw/pwsyncd.log'"
round "after a restart" "$U"

# ---- a rename in AD: sAMAccountName, UPN and the CN (so the DN) ----
printf 'dn: CN=%s,CN=Users,%s\nchangetype: modify\nreplace: sAMAccountName\nsAMAccountName: %s\n-\nreplace: userPrincipalName\nuserPrincipalName: %s@%s\n-\n' \
    "$U" "$BASE" "$R" "$R" "$DNS" | ad_ldif || bad "the rename of sAMAccountName and UPN failed"
printf 'dn: CN=%s,CN=Users,%s\nchangetype: modrdn\nnewrdn: CN=%s\ndeleteoldrdn: 1\n' "$U" "$BASE" "$R" | ad_ldif ||
    bad "the rename of the CN failed"
declare -x "PWSYNC_TEST_DC_DN_${R^^}=CN=$R,CN=Users,$BASE"
check "pwsyncd sees the rename (audit account.rename)" wait_for 10 bash -c \
    "'$P' audit | grep 'account.rename' | grep -q 'sam .* -> $R, .* dn .* -> CN=$R,'"
round "after a rename" "$R"
kill -TERM "$GW_PID"; wait "$GW_PID" 2>/dev/null; GW_PID=
gw_start || die "pwsyncd did not restart"
N=$((N + 1)); name_of upn "$R" >"$W/form"; newpw pw "Names-Pass.${N}x$RANDOM"
ad_admin_reset "$R" "$pw" >/dev/null 2>&1 || bad "AD refused the reset after the last restart"
check "after the rename and another restart, the new UPN still reaches all 5" wait_for 10 delivered "$(hash_of "$pw")"

# ---- a mapping created while pwsyncd runs, not resolved: the capture is
# not refused; the watcher resolves the account and the change arrives ----
$P app create APP-LATE >/dev/null && $P adapter add-app rec APP-LATE >/dev/null
$P mapping create --app APP-LATE --windows "$U2@$DNS" --external ext-late >/dev/null
check "  ... the new mapping is not resolved yet" [ "$(unresolved_count)" = 1 ]
name_of sam "$U2" >"$W/form"
N=$((N + 1)); newpw pw "Names-Late.${N}x$RANDOM"
if ad_admin_reset "$U2" "$pw" >/dev/null 2>&1; then
    check "a capture (by sam) for a mapping made by UPN and not resolved yet arrives" \
        wait_for 10 grep -q "^ext-late $(hash_of "$pw")\$" "$W/rec.log"
else bad "AD refused the reset of $U2"; fi
check "the store verifies" "$P" store verify

# ---- no password anywhere it must not be ----
"$P" audit --json >"$W/audit.json"
harness_secrets "$W/leak-secrets" "${USED_PASSWORDS[@]}"
leaks=$(harness_leaks "$W/leak-secrets" "$W/gw/pwsyncd.log" "$W/gw/pwsyncd.stderr" "$W/audit.json" "$W/gw/store")
check "no password in the daemon's log, the audit or the store files (${#USED_PASSWORDS[@]} checked)" [ "$leaks" = 0 ]
check "pwsyncd logged no crash of its own" harness_no_crash "$W/gw/pwsyncd.stderr"

harness_end
