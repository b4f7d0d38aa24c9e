# Shared by testenv/demo and the gateway integration test: configures pwsync
# against the running test environment and starts pwsyncd. Source it inside
# testenv/netns after sourcing STATE/env.sh; needs $PWSYNC_BIN (build/).
# shellcheck shell=bash

# gw_setup WORK: a store, pwsyncd.conf and the capture hook in WORK. The
# store is LMDB in WORK, or with PWSYNC_E2E_STORE=postgresql a schema of its
# own ($GW_PG_SCHEMA) in the test environment's PostgreSQL, with the master
# key in WORK (the CLI then reads store and key from pwsyncd.conf).
gw_setup() {
    local work=$1 store key_line=
    GW_WORK=$work
    GW_PWSYNC=$PWSYNC_BIN/cli/pwsync
    GW_NOTIFY=$PWSYNC_BIN/cli/pwsync-notify
    GW_PWSYNCD=$PWSYNC_BIN/gateway/pwsyncd
    store=$work/store
    export PWSYNC_CONFIG=
    if [[ ${PWSYNC_E2E_STORE:-lmdb} == postgresql ]]; then
        GW_PG_SCHEMA=gw_$$_$RANDOM
        printf 'CREATE SCHEMA %s AUTHORIZATION pwsync;\n' "$GW_PG_SCHEMA" |
            psql -X -q -v ON_ERROR_STOP=1 -d "$PWSYNC_TEST_PG_ADMIN_URI" || return 1
        store="$PWSYNC_TEST_PG_URI&options=-csearch_path%3D$GW_PG_SCHEMA"
        key_line="key = $work/master.key"
        export PWSYNC_CONFIG=$work/pwsyncd.conf
    fi
    export PWSYNC_STORE=$store
    export LDAPTLS_CACERT=$PWSYNC_TEST_CA LDAPTLS_REQCERT=demand LDAPRC=/dev/null LDAPCONF=/dev/null
    mkdir -p "$work"
    chmod 0700 "$work"
    (umask 077
     printf '%s' 'Dc1-Capture-Secret-1' >"$work/dc1.secret"
     printf '%s' 'Ldap-Agent-Secret-1' >"$work/agent.secret")
    cat >"$work/pwsyncd.conf" <<CONF
store = $store
$key_line
[listen]
uri = ldaps://127.0.0.1:1636 ldap://127.0.0.1:1389
cert = $PWSYNC_TEST_GATEWAY_CERT
key = $PWSYNC_TEST_GATEWAY_KEY
client-ca = $PWSYNC_TEST_CA
[directory]
uri = $PWSYNC_TEST_DC_URI
base = $PWSYNC_TEST_DC_BASE
domain = $PWSYNC_TEST_DC_DOMAIN
bind = simple
bind-dn = $PWSYNC_TEST_SVC_DN
bind-password-file = $PWSYNC_TEST_SVC_PASSWORD_FILE
ca = $PWSYNC_TEST_CA
poll-interval = 5
[gateway]
pending-ttl = 30
[log]
level = debug
file = $work/pwsyncd.log
CONF
    cat >"$work/hook.conf" <<CONF
[notify]
gateway = ldaps://127.0.0.1:1636 ldap://127.0.0.1:1389
principal = dc1
secret-file = $work/dc1.secret
ca = $PWSYNC_TEST_CA
timeout = 5
CONF
    "$GW_PWSYNC" init >/dev/null || return 1
    # Samba's check password script: one process, the lean pwsync-notify
    # (pwsync notify's code without the CLI's libraries) in hook mode.
    cat >"$work/hook" <<HOOK
#!/bin/sh
exec "$GW_NOTIFY" --samba-hook --config "$work/hook.conf"
HOOK
    chmod 0755 "$work/hook"
    # The test DC's dispatcher runs Samba's own complexity check first;
    # pwsync's hook checks complexity too, as it must on a production DC.
    ln -sf "$work/hook" "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
}

# gw_configure: applications, adapters, mappings and principals via the CLI.
gw_configure() {
    local p=$GW_PWSYNC u
    $p sync enable windows >/dev/null
    $p sync enable partial >/dev/null
    $p sync enable full >/dev/null
    $p app create LINUX-LDAP --description "OpenLDAP for the Linux fleet" >/dev/null
    $p adapter create ext-ldap --type ldap --property "uri=$PWSYNC_TEST_LDAP_URI" \
        --property "bind-dn=$PWSYNC_TEST_LDAP_ROOTDN" --property "dn-template=uid=%s,$PWSYNC_TEST_LDAP_PEOPLE" \
        --property "ca=$PWSYNC_TEST_CA" --secret-property bind-password \
        --sync-to-adapter --sync-from-adapter --change-windows-password --retry-delay 1 --timeout 5 \
        <"$PWSYNC_TEST_LDAP_ROOTPW_FILE" >/dev/null
    $p adapter add-app ext-ldap LINUX-LDAP >/dev/null
    $p adapter enable ext-ldap >/dev/null
    # A second application, so full sync can show "sent on, not back".
    cat >"$GW_WORK/mainframe.sh" <<'SH'
#!/bin/sh
# Stands in for a mainframe: records which account got a new password (and
# a hash of it, so the test can compare without keeping the password).
read -r pw
printf '%s %s\n' "$1" "$(printf '%s' "$pw" | sha256sum | cut -c1-16)" >>"$(dirname "$0")/mainframe.log"
SH
    chmod 0700 "$GW_WORK/mainframe.sh"
    $p app create MAINFRAME >/dev/null
    $p adapter create mainframe --type exec --property "program=$GW_WORK/mainframe.sh" --sync-to-adapter \
        --retry-delay 1 >/dev/null
    $p adapter add-app mainframe MAINFRAME >/dev/null
    $p adapter enable mainframe >/dev/null
    for u in alice bob carol; do
        $p mapping create --app LINUX-LDAP --windows "$PWSYNC_TEST_DC_DOMAIN\\$u" --external "$u" >/dev/null
        local var=PWSYNC_TEST_LDAP_PASSWORD_${u^^}
        printf '%s' "${!var}" | $p mapping set-credentials --app LINUX-LDAP --windows "$PWSYNC_TEST_DC_DOMAIN\\$u" >/dev/null
        $p mapping create --app MAINFRAME --windows "$u@$PWSYNC_TEST_DC_DNS_DOMAIN" --external "${u^^}" >/dev/null
    done
    $p principal create dc1 --kind windows --capture pre-commit <"$GW_WORK/dc1.secret" >/dev/null
    $p principal create ldap-agent --kind adapter --adapter ext-ldap <"$GW_WORK/agent.secret" >/dev/null
}

# gw_start: pwsyncd in the background; waits until it answers.
gw_start() { gw_start_conf "$GW_WORK/pwsyncd.conf" ldaps://127.0.0.1:1636 "$GW_WORK/pwsyncd.log"; }

# gw_start_conf CONF LDAPS_URI LOG: the same for a pwsyncd.conf of one's own
# (several gateways on one store): stderr to CONF's name with .stderr,
# waits until LDAPS_URI answers; GW_PID is its pid.
gw_start_conf() {
    local stderr=${1%.conf}.stderr
    "$GW_PWSYNCD" --config "$1" 2>>"$stderr" &
    GW_PID=$!
    local i
    for i in $(seq 1 100); do
        if ldapwhoami -x -o nettimeout=2 -H "$2" -D cn=ldap-agent -y "$GW_WORK/agent.secret" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$GW_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "pwsyncd did not start:" >&2
    tail -n 20 "$stderr" "$3" >&2 2>/dev/null
    return 1
}

gw_stop() {
    rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
    if [ -n "${GW_PID:-}" ] && kill -0 "$GW_PID" 2>/dev/null; then
        kill -TERM "$GW_PID"
        wait "$GW_PID" 2>/dev/null || true
    fi
    GW_PID=
}

# gw_passwd USER OLD NEW: ldappasswd to the gateway as the ldap adapter's
# agent (no OLD when empty); the LDAP result code in $RC ("none" when there
# was no answer), ldappasswd's output in $GW_WORK/passwd.out.
gw_passwd() {
    (umask 077 && printf '%s' "$3" >"$GW_WORK/.gwnew" && printf '%s' "$2" >"$GW_WORK/.gwold")
    local args=(-x -o nettimeout=10 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$GW_WORK/agent.secret" -T "$GW_WORK/.gwnew")
    [[ -n $2 ]] && args+=(-t "$GW_WORK/.gwold")
    ldappasswd "${args[@]}" "$1" >"$GW_WORK/passwd.out" 2>&1
    # ldappasswd exits 1 on any failure: the LDAP result code is in its output.
    RC=$(sed -n 's/^Result: .*(\([0-9]*\))$/\1/p' "$GW_WORK/passwd.out" | head -n1)
    RC=${RC:-none}
}

# ad_user_change USER OLD NEW: the user changes their own password in AD.
ad_user_change() {
    local dn_var=PWSYNC_TEST_DC_DN_${1^^}
    local old new
    old=$(printf '"%s"' "$2" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
    new=$(printf '"%s"' "$3" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
    (umask 077 && printf "%s" "$2" >"$GW_WORK/.oldpw")
    printf 'dn: %s\nchangetype: modify\ndelete: unicodePwd\nunicodePwd:: %s\n-\nadd: unicodePwd\nunicodePwd:: %s\n-\n' \
        "${!dn_var}" "$old" "$new" |
        ldapmodify -x -o nettimeout=10 -H "$PWSYNC_TEST_DC_URI" -D "${!dn_var}" -y "$GW_WORK/.oldpw"
    local rc=$?
    rm -f "$GW_WORK/.oldpw"
    return $rc
}

# ldap_bind_ok URI DN PASSWORD: can DN bind with PASSWORD?
ldap_bind_ok() {
    (umask 077 && printf '%s' "$3" >"$GW_WORK/.pw")
    # A base search of the root DSE: Samba has no WhoAmI.
    ldapsearch -x -o nettimeout=5 -H "$1" -D "$2" -y "$GW_WORK/.pw" -b "" -s base 1.1 >/dev/null 2>&1
    local rc=$?
    rm -f "$GW_WORK/.pw"
    return $rc
}

# wait_for SECONDS CMD...: retries CMD every 0.05 s; prints the time taken
# in milliseconds.
wait_for() {
    local limit_ms=$(( $1 * 1000 )) start now
    shift
    start=$(date +%s%3N)
    while true; do
        if "$@"; then
            now=$(date +%s%3N)
            echo $(( now - start ))
            return 0
        fi
        now=$(date +%s%3N)
        (( now - start > limit_ms )) && return 1
        sleep 0.05
    done
}

# ad_var NAME: the test domain's PWSYNC_TEST_NAME; with AD=PWSYNC_TEST_OTHER
# (the prefix of testenv/second-domain's variables), the second domain's.
# ad_admin_reset and ad_add_user act on that domain.
ad_var() { local v=${AD:-PWSYNC_TEST}_$1; printf '%s' "${!v}"; }
# ad_ldif: ldapmodify as the domain's service account (a Domain Admin).
ad_ldif() {
    ldapmodify -x -o nettimeout=10 -H "$(ad_var DC_URI)" -D "$(ad_var SVC_DN)" -y "$(ad_var SVC_PASSWORD_FILE)" >/dev/null
}
# ad_unicode_pwd PASSWORD: AD's unicodePwd value, base64.
ad_unicode_pwd() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }

# ad_admin_reset USER PASSWORD: the service account (a Domain Admin) sets
# USER's AD password, as an administrator's reset (no history check).
ad_admin_reset() {
    printf 'dn: %s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n' "$(ad_var "DC_DN_${1^^}")" \
        "$(ad_unicode_pwd "$2")" | ad_ldif
}

# ad_add_user NAME PASSWORD: an enabled user CN=NAME,CN=Users in the domain,
# UPN NAME@<its DNS domain>; its DN in <prefix>_DC_DN_<NAME>, for ad_admin_reset.
ad_add_user() {
    local dn="CN=$1,CN=Users,$(ad_var DC_BASE)"
    printf 'dn: %s\nchangetype: add\nobjectClass: user\nsAMAccountName: %s\nuserPrincipalName: %s@%s\nunicodePwd:: %s\nuserAccountControl: 512\n' \
        "$dn" "$1" "$1" "$(ad_var DC_DNS_DOMAIN)" "$(ad_unicode_pwd "$2")" | ad_ldif || return 1
    declare -gx "${AD:-PWSYNC_TEST}_DC_DN_${1^^}=$dn"
}

# ldap_admin_reset USER PASSWORD: slapd's root DN sets uid=USER's password.
ldap_admin_reset() {
    (umask 077 && printf '%s' "$2" >"$GW_WORK/.newpw")
    ldappasswd -x -o nettimeout=10 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" \
        -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE" -T "$GW_WORK/.newpw" "uid=$1,$PWSYNC_TEST_LDAP_PEOPLE" >/dev/null
    local rc=$?
    rm -f "$GW_WORK/.newpw"
    return $rc
}
