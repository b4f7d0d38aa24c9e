#!/bin/bash
# Mapping rules against the test DC (issue 17, "Rules"): a rule over a group
# maps its members, nested ones too; adding and removing members, disabling,
# renaming (held, then allowed), deleting and moving between OUs are each
# reflected in the mappings and audited; every `rule preview` lists exactly
# what the following `rule apply` (or pwsyncd, with PWSYNC_RULES_DAEMON=1)
# then does; a member of Domain Admins (and an account with adminCount=1) is
# never mapped; an account without the template's attribute is reported,
# not mapped. Needs a started environment and testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin rule_mappings netns env bin gateway
PY=/usr/bin/python3
ST=$PWSYNC_TEST_SAMBA_TOOL
BASE=$PWSYNC_TEST_DC_BASE
DOM=$PWSYNC_TEST_DC_DOMAIN

W=$(mktemp -d "$PWSYNC_TEST_TMP/rule_mappings.XXXXXX")
USERS=(ru1 ru2 ru3 ru3new ru4 ru5 radm rcnt)
cleanup() {
    gw_stop
    for u in "${USERS[@]}"; do "$ST" user delete "$u" >/dev/null 2>&1; done
    for g in rstaff rnested; do "$ST" group delete "$g" >/dev/null 2>&1; done
    for o in RulesA RulesB; do "$ST" ou delete "OU=$o" >/dev/null 2>&1; done
    rm -rf "$W"
}
trap cleanup EXIT
cleanup_dc() { for u in "${USERS[@]}"; do "$ST" user delete "$u" >/dev/null 2>&1; done
    for g in rstaff rnested; do "$ST" group delete "$g" >/dev/null 2>&1; done
    for o in RulesA RulesB; do "$ST" ou delete "OU=$o" >/dev/null 2>&1; done; }
cleanup_dc

PW='Rule-Start.1pw'
for o in RulesA RulesB; do "$ST" ou create "OU=$o" >/dev/null || die "cannot create OU $o"; done
for u in ru1 ru2 ru3 radm rcnt; do "$ST" user create "$u" "$PW" >/dev/null || die "cannot create $u"; done
"$ST" user create ru4 "$PW" --userou=OU=RulesA >/dev/null || die "cannot create ru4"
"$ST" user create ru5 "$PW" --userou=OU=RulesA >/dev/null || die "cannot create ru5"
"$ST" group add rstaff >/dev/null && "$ST" group add rnested >/dev/null || die "cannot create the groups"
# ru1 directly, ru2 through rnested (nested in rstaff), radm directly and in Domain Admins.
"$ST" group addmembers rstaff ru1,rnested,radm,rcnt >/dev/null || die "cannot fill rstaff"
"$ST" group addmembers rnested ru2 >/dev/null || die "cannot fill rnested"
"$ST" group addmembers "Domain Admins" radm >/dev/null || die "cannot make radm a domain admin"
# rcnt: in no protected group, but adminCount=1 (what AD's SDProp leaves on a former admin).
LDAPTLS_CACERT=$PWSYNC_TEST_CA LDAPTLS_REQCERT=demand LDAPRC=/dev/null LDAPCONF=/dev/null \
    ldapmodify -x -H "$PWSYNC_TEST_DC_URI" -D "$PWSYNC_TEST_DC_ADMIN_DN" -y "$PWSYNC_TEST_DC_ADMIN_PASSWORD_FILE" \
    >/dev/null <<LDIF || die "cannot set adminCount on rcnt"
dn: CN=rcnt,CN=Users,$BASE
changetype: modify
replace: adminCount
adminCount: 1
LDIF

gw_setup "$W/gw" || die "could not set up the store"
export PWSYNC_CONFIG=$W/gw/pwsyncd.conf  # the [directory] that preview and apply read
P=$GW_PWSYNC
$P app create RULEAPP >/dev/null && $P app create OUAPP >/dev/null || die "cannot create the applications"
check "rule create (group scope, upper-case template)" \
    $P rule create staff --app RULEAPP --scope group=rstaff --external '{sAMAccountName|upper}'
check "rule create (OU scope and a filter)" \
    $P rule create people --app OUAPP --scope "ou=OU=RulesA,$BASE" --scope 'filter=(objectClass=person)' \
    --external 'x-{sAMAccountName}'
if $P rule create bad --app RULEAPP --scope group=rstaff --external '{sAMAccountName|title}' 2>"$W/err"; then
    bad "a bad template is refused"
else
    grep -q "unknown transform 'title'" "$W/err" && ok "a bad template is refused, saying why" || bad "template error text" "$W/err"
fi

# mapped APP: "windows=external" lines of the app's mappings, sorted.
mapped() {
    $P mapping list --app "$1" --json | "$PY" -c '
import json, sys
for m in sorted(json.load(sys.stdin), key=lambda m: m["windows"].lower()):
    print(m["windows"] + "=" + m["external"] + ("" if m.get("rule") else " (hand-made)"))'
}
# plan_of FILE: the plan's changes as sorted lines, for comparing preview and apply.
plan_of() {
    "$PY" -c '
import json, sys
p = json.load(open(sys.argv[1]))
out = ["create %s=%s" % (c["windows"], c["external"]) for c in p["create"]]
out += ["change %s=%s" % (c["windows"], c["external"]) for c in p["change"]]
out += ["remove %s" % c["windows"] for c in p["remove"]]
print("\n".join(sorted(out)))' "$1"
}
# step RULE WANT...: preview (writes nothing), then apply; the applied plan
# must be the preview's, and the plan's lines must be WANT (sorted).
PREVIEW_MS=()
step() {
    local rule=$1 what=$2
    shift 2
    local before after
    before=$(mapped RULEAPP; mapped OUAPP)
    $P rule preview "$rule" --json >"$W/preview.json" 2>"$W/err" || { bad "$what: preview failed" "$W/err"; return; }
    PREVIEW_MS+=("$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["milliseconds"])' "$W/preview.json")")
    after=$(mapped RULEAPP; mapped OUAPP)
    [[ $before == "$after" ]] || bad "$what: preview wrote to the store"
    if [[ ${PWSYNC_RULES_DAEMON:-0} == 1 ]]; then
        daemon_applies "$rule" || { bad "$what: pwsyncd did not apply the plan in time"; return; }
    else
        $P rule apply "$rule" --json >"$W/apply.json" 2>"$W/err" || { bad "$what: apply failed" "$W/err"; return; }
        if [[ $(plan_of "$W/preview.json") == "$(plan_of "$W/apply.json")" ]]; then ok "$what: apply did what preview showed"
        else bad "$what: apply differs from preview"; diff <(plan_of "$W/preview.json") <(plan_of "$W/apply.json") >&2; fi
    fi
    local want got
    want=$(printf '%s\n' "$@" | sed '/^$/d' | sort)
    got=$(plan_of "$W/preview.json" | sed '/^$/d')
    if [[ $got == "$want" ]]; then ok "$what: plan is [$(tr '\n' ';' <<<"$want")]"
    else bad "$what: plan"; diff <(echo "$want") <(echo "$got") >&2; fi
}
never_admin() {
    if mapped RULEAPP | grep -qiE 'radm|rcnt'; then bad "$1: a privileged account was mapped"; else ok; fi
    if grep -qiE 'radm|rcnt' "$W/preview.json"; then bad "$1: a privileged account is in the plan"; else ok; fi
}

# 1. Direct and nested members; the domain admin is not.
step staff "first evaluation" "create $DOM\\ru1=RU1" "create $DOM\\ru2=RU2"
never_admin "first evaluation"
[[ $(mapped RULEAPP) == "$(printf '%s\n' "$DOM\\ru1=RU1" "$DOM\\ru2=RU2")" ]] && ok "mappings made by the rule" \
    || bad "mappings after the first evaluation: $(mapped RULEAPP | tr '\n' ' ')"
step staff "nothing changed" ""
never_admin "nothing changed"
# 2. A member added directly, and one through the nested group.
"$ST" group addmembers rstaff ru3 >/dev/null
"$ST" group addmembers rnested ru5 >/dev/null
step staff "members added (direct and nested)" "create $DOM\\ru3=RU3" "create $DOM\\ru5=RU5"
# 3. A member removed; a member disabled.
"$ST" group removemembers rstaff ru1 >/dev/null
"$ST" user disable ru2 >/dev/null
step staff "a member removed, one disabled" "remove $DOM\\ru1" "remove $DOM\\ru2"
# 4. A rename: held until the rule allows external id updates.
"$ST" user rename ru3 --samaccountname=ru3new >/dev/null || bad "samba-tool user rename"
step staff "a rename with updates not allowed" ""
$P rule show staff --json | grep -q "would change from 'RU3' to 'RU3NEW'" && ok "the held rename is listed as a conflict" \
    || bad "held rename not listed in rule show"
$P status | grep -q "rule conflicts: 1" && ok "status shows the rule's conflict" || bad "status does not show the conflict"
check "rule update --allow-external-updates yes" $P rule update staff --allow-external-updates yes
step staff "a rename with updates allowed" "change $DOM\\ru3=RU3NEW"
# 5. A hand-made mapping wins over the rule, reported.
$P mapping create --app RULEAPP --windows "$DOM\\ru1" --external by-hand >/dev/null
"$ST" group addmembers rstaff ru1 >/dev/null
step staff "hand-made mapping wins" ""
grep -q "hand-made" "$W/preview.json" && ok "the hand-made conflict is in the preview" || bad "hand-made conflict not shown"
# 6. OU scope: moves out of and back into the OU.
step people "OU scope" "create $DOM\\ru4=x-ru4" "create $DOM\\ru5=x-ru5"
step people "OU scope, again" ""
"$ST" user move ru4 OU=RulesB >/dev/null || bad "samba-tool user move"
step people "moved out of the OU" "remove $DOM\\ru4"
"$ST" user move ru4 OU=RulesA >/dev/null
step people "moved back into the OU" "create $DOM\\ru4=x-ru4"
# 7. Deletion.
"$ST" user delete ru5 >/dev/null
step staff "a member deleted" "remove $DOM\\ru5"
step people "deleted (OU rule)" "remove $DOM\\ru5"
never_admin "at the end"
# 8. A template attribute the accounts lack: reported, never mapped.
$P rule create eid --app OUAPP --scope "ou=OU=RulesB,$BASE" --external '{employeeID}' >/dev/null
"$ST" user move ru4 OU=RulesB >/dev/null
$P rule preview eid --json >"$W/eid.json"
grep -q "missing attribute employeeID" "$W/eid.json" && ok "a missing attribute is reported" || bad "missing attribute not reported" "$W/eid.json"
[[ $(plan_of "$W/eid.json") == "" ]] && ok "and not mapped" || bad "an account without the attribute got a mapping"

# A rule whose group (named by DN) was deleted keeps its mappings, saying
# why, instead of finding no members and removing them all.
"$ST" group add rgone >/dev/null && "$ST" group addmembers rgone ru4 >/dev/null || bad "samba-tool group add rgone"
$P app create GAPP >/dev/null
$P rule create gone --app GAPP --scope "group=CN=rgone,CN=Users,$BASE" --external '{sAMAccountName}' >/dev/null
$P rule apply gone >/dev/null 2>"$W/err" || bad "rule apply gone" "$W/err"
"$ST" group delete rgone >/dev/null
if $P rule apply gone >/dev/null 2>"$W/err"; then bad "a rule whose group is gone was applied"
else grep -q "no group CN=rgone" "$W/err" && ok "a rule whose group is gone is refused, saying why" || bad "gone group text" "$W/err"; fi
[[ $(mapped GAPP) == "$DOM\\ru4=ru4" ]] && ok "and its mappings are kept" || bad "after the group went: $(mapped GAPP | tr '\n' ' ')"
$P rule delete gone --delete-mappings >/dev/null

# The audit: every change, with its rule.
$P audit --json >"$W/audit.json"
for want in "rule.create" "rule.update" "rule.apply" "rule.remove" "rule.conflict" "mapping.external"; do
    grep -q "\"$want\"" "$W/audit.json" && ok "audited: $want" || bad "not audited: $want"
done
grep -q 'rule=staff' "$W/audit.json" && ok "mapping.create names its rule" || bad "mapping.create does not name the rule"
# Deleting a rule asks what happens to its mappings.
if $P rule delete people >/dev/null 2>"$W/err"; then bad "rule delete without a choice"
else grep -q -- "--keep-mappings" "$W/err" && ok "rule delete asks --keep-mappings or --delete-mappings" || bad "delete text" "$W/err"; fi
check "rule delete --keep-mappings" $P rule delete people --keep-mappings
mapped OUAPP | grep -q "x-ru4 (hand-made)" && ok "kept mappings became hand-made" || bad "kept mappings: $(mapped OUAPP | tr '\n' ' ')"
check "rule delete --delete-mappings" $P rule delete staff --delete-mappings
[[ $(mapped RULEAPP) == "$DOM\\ru1=by-hand (hand-made)" ]] && ok "the rule's mappings went with it, the hand-made one stayed" \
    || bad "after delete: $(mapped RULEAPP | tr '\n' ' ')"

# 9. pwsyncd keeps a rule current by itself (rule-interval = 1): what the
# preview showed, then a member added through the nested group, one removed,
# one disabled, one deleted.
sed -i 's/^\[gateway\]$/[gateway]\nrule-interval = 1/' "$W/gw/pwsyncd.conf"
$P app create DAPP >/dev/null
$P rule create dstaff --app DAPP --scope group=rstaff --external '{sAMAccountName|lower}' >/dev/null
$P rule preview dstaff --json >"$W/dpreview.json"
want=$("$PY" -c 'import json,sys; print("\n".join(sorted("%s=%s" % (c["windows"], c["external"]) for c in json.load(open(sys.argv[1]))["create"])))' "$W/dpreview.json")
[[ $want == "$(printf '%s\n' "$DOM\ru1=ru1" "$DOM\ru3new=ru3new")" ]] && ok "daemon rule: preview" || bad "daemon rule preview: $want"
# wait_mapped WHAT WANT: DAPP's mappings become WANT within 20 s.
wait_mapped() {
    local what=$1 want=$2 t0=$SECONDS got=
    while (( SECONDS - t0 < 20 )); do
        got=$(mapped DAPP)
        [[ $got == "$want" ]] && { ok "$what (after $((SECONDS - t0)) s)"; return; }
        sleep 0.5
    done
    bad "$what: DAPP has [$(tr '\n' ';' <<<"$got")], want [$(tr '\n' ';' <<<"$want")]"
}
# gw_start's readiness probe binds as the ldap-agent principal.
$P adapter create probe --type null >/dev/null &&
    $P principal create ldap-agent --kind adapter --adapter probe <"$W/gw/agent.secret" >/dev/null ||
    die "cannot create the probe principal"
gw_start || die "could not start pwsyncd"
wait_mapped "pwsyncd applied what the preview showed" "$want"
"$ST" group addmembers rnested ru4 >/dev/null
wait_mapped "pwsyncd: a member added through the nested group is mapped" \
    "$(printf '%s\n' "$DOM\ru1=ru1" "$DOM\ru3new=ru3new" "$DOM\ru4=ru4")"
"$ST" group removemembers rstaff ru1 >/dev/null
wait_mapped "pwsyncd: a member removed loses the mapping" "$(printf '%s\n' "$DOM\ru3new=ru3new" "$DOM\ru4=ru4")"
grep -q "rule dstaff: 1 created" "$W/gw/pwsyncd.log" && ok "pwsyncd logs what a rule did" || bad "no rule line in the log" "$W/gw/pwsyncd.log"
# Changes made on accounts, not on groups, are incremental rounds: only the
# changed accounts are searched for (rule_keeper.h).
"$ST" user disable ru4 >/dev/null
wait_mapped "pwsyncd: a member disabled loses the mapping" "$DOM\ru3new=ru3new"
"$ST" user delete ru3new >/dev/null
wait_mapped "pwsyncd: a member deleted loses the mapping" ""
n=$(grep -cE "mapping rules: incremental round: [0-9]+ object\(s\) changed, [0-9]+ account\(s\) examined, 0 created, 0 changed, 1 removed" "$W/gw/pwsyncd.log")
[[ $n == 2 ]] && ok "the disable and the delete were incremental rounds" || bad "incremental rounds that removed one: $n" "$W/gw/pwsyncd.log"
grep -qE "mapping rules: full round: [0-9]+ rule\(s\), [0-9]+ account\(s\) examined, 1 created" "$W/gw/pwsyncd.log" &&
    ok "a group's member added was a full round of the rule" || bad "no full round for the group change" "$W/gw/pwsyncd.log"
gw_stop
if mapped DAPP | grep -qiE 'radm|rcnt'; then bad "pwsyncd mapped a privileged account"; else ok "pwsyncd mapped no privileged account"; fi
check "store verify" $P store verify
echo "preview times (ms): ${PREVIEW_MS[*]}"
harness_end
