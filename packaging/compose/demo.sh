#!/bin/bash
# The compose demo's services (compose.yaml): demo.sh init|samba|slapd|setup|demo.
# Every password is made by `init` into the demo-secrets volume and passed
# to tools as files (-y, -T, stdin), never on a command line.
set -euo pipefail

REALM=DEMO.EXAMPLE DOMAIN=DEMO BASE=DC=demo,DC=example
# The services' names on the compose network (compose.yaml).
DC_HOST=dc EXT_HOST=ext GW_HOST=gw EXT_BASE=dc=ext,dc=example
USERS=(alice bob carol)
SEC=/demo-secrets PKI=/demo-secrets/pki
SAMBA=/var/lib/pwsync-demo/samba SLAPD=/var/lib/pwsync-demo/slapd
PWSYNC_UID=999
SVC_DN=CN=svc-pwsync,CN=Users,$BASE
EXT_ROOT=cn=admin,$EXT_BASE
export LDAPTLS_CACERT=$PKI/ca.pem LDAPTLS_REQCERT=demand LDAPRC=/dev/null LDAPCONF=/dev/null

say() { echo "[$1] $2"; }
die() { echo "[$1] error: $2" >&2; exit 1; }
# wait_for WHAT SECONDS CMD...: until CMD succeeds, SECONDS of wall time.
wait_for() {
    local what=$1 limit=$2 end=$((SECONDS + $2))
    shift 2
    while ((SECONDS < end)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "waited ${limit}s for $what" >&2
    return 1
}
# The services find each other by name through the compose network's DNS
# (podman's CNI dnsname plugin): without it nothing else can work.
need_names() {
    local who=$1 h
    shift
    for h in "$@"; do
        wait_for "the name $h" 30 getent hosts "$h" ||
            die "$who" "cannot resolve '$h': the compose network has no DNS (on Debian: apt-get install golang-github-containernetworking-plugin-dnsname, then podman-compose down and up again)"
    done
}
ad_dn() { echo "CN=$1,CN=Users,$BASE"; }
ext_dn() { echo "uid=$1,ou=people,$EXT_BASE"; }
# bind_ok URI DN PASSWORD_FILE: a simple bind works (a base search of the root DSE).
bind_ok() { ldapsearch -x -o nettimeout=5 -H "$1" -D "$2" -y "$3" -b "" -s base 1.1 >/dev/null 2>&1; }
dc_up() { bind_ok "ldaps://$DC_HOST" "$SVC_DN" "$SEC/svc.pw"; }
ext_up() { bind_ok "ldaps://$EXT_HOST" "$EXT_ROOT" "$SEC/ldap-root.pw"; }
gw_up() { ldapwhoami -x -o nettimeout=5 -H "ldaps://$GW_HOST:1636" -D cn=ldap-agent -y "$SEC/ldap-agent.pw" >/dev/null 2>&1; }
# A password AD's default policy accepts: 16 random characters and one of each class.
new_password() { (umask 077 && printf '%sAa1.' "$(openssl rand -base64 24 | tr -dc 'A-Za-z0-9' | cut -c1-16)" >"$1"); }

cert() {  # cert NAME DNS: a server certificate from the demo CA
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$PKI/$1.key" -out "$PKI/$1.csr" 2>/dev/null
    openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial -days 825 \
        -extfile <(printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' "$2") \
        -out "$PKI/$1.pem" 2>/dev/null
}

do_init() {
    if [[ -f $SEC/ready ]]; then say init "already done"; return; fi
    umask 077
    mkdir -p "$PKI"
    local n
    for n in admin svc ldap-root dc1-hook ldap-agent hr-agent "${USERS[@]}"; do new_password "$SEC/$n.pw"; done
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 -subj "/CN=pwsync demo CA" \
        -keyout "$PKI/ca.key" -out "$PKI/ca.pem" 2>/dev/null
    cert dc "$DC_HOST"
    cert ext "$EXT_HOST"
    cert gw "$GW_HOST"
    chmod 0644 "$PKI/ca.pem"
    # pwsyncd's share, owned by its user: certificate and CA in its
    # configuration volume, key and bind password in its secrets volume.
    install -m 0644 "$PKI/ca.pem" /etc/pwsync/ca.pem
    install -m 0644 "$PKI/gw.pem" /etc/pwsync/gateway.pem
    install -o "$PWSYNC_UID" -g "$PWSYNC_UID" -m 0600 "$PKI/gw.key" /run/secrets/pwsync/gateway.key
    install -o "$PWSYNC_UID" -g "$PWSYNC_UID" -m 0600 "$SEC/svc.pw" /run/secrets/pwsync/ad.secret
    rm -f /etc/pwsync/ready
    touch "$SEC/ready"
    say init "PKI and passwords made"
}

# Users and passwords from stdin (name TAB password per line).
SAMBA_USERS_PY='import sys
from samba.auth import system_session
from samba.param import LoadParm
from samba.samdb import SamDB
lp = LoadParm()
lp.load(sys.argv[1])
db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
db.set_minPwdAge("0")
for line in sys.stdin.read().splitlines():
    name, pw = line.split("\t", 1)
    if name == "Administrator":
        db.setpassword("(sAMAccountName=Administrator)", pw)
    else:
        db.newuser(name, pw, givenname=name.capitalize(), surname="Demo")
db.add_remove_group_members("Domain Admins", ["svc-pwsync"], add_members_operation=True)
'

do_samba() {
    wait_for "init" 120 test -f "$SEC/ready" || exit 1
    if [[ ! -f $SAMBA/provisioned ]]; then
        say samba "provisioning $REALM"
        rm -rf "${SAMBA:?}"/*
        mkdir -p "$SAMBA/etc" "$SAMBA/run" "$SAMBA/sock"
        : >"$SAMBA/etc/smb.conf"
        # vfs objects: ACLs in a tdb instead of security xattrs, which an
        # unprivileged container may not write.
        samba-tool domain provision --configfile="$SAMBA/etc/smb.conf" --targetdir="$SAMBA" \
            --realm="$REALM" --domain="$DOMAIN" --host-name=dc --server-role=dc --dns-backend=NONE \
            --use-rfc2307 \
            --option="vfs objects = dfs_samba4 acl_xattr xattr_tdb" --option="pid directory = $SAMBA/run" \
            --option="winbindd socket directory = $SAMBA/sock" --option="ntp signd socket directory = $SAMBA/sock" \
            --option="ncalrpc dir = $SAMBA/sock" \
            --option="tls enabled = yes" --option="tls certfile = $PKI/dc.pem" \
            --option="tls keyfile = $PKI/dc.key" --option="tls cafile = $PKI/ca.pem" >"$SAMBA/provision.log" 2>&1 ||
            { tail -20 "$SAMBA/provision.log" >&2; die samba "provisioning failed"; }
        # Users and passwords from stdin (not argv); the service account may
        # reset passwords and read DirSync (Domain Admins: a demo, not a template).
        { printf 'Administrator\t%s\n' "$(<"$SEC/admin.pw")"; printf 'svc-pwsync\t%s\n' "$(<"$SEC/svc.pw")"
          for n in "${USERS[@]}"; do printf '%s\t%s\n' "$n" "$(<"$SEC/$n.pw")"; done; } |
            python3 -c "$SAMBA_USERS_PY" "$SAMBA/etc/smb.conf"
        # pwsync's capture hook, from the package: every password change
        # made on this DC goes to the gateway before the DC commits it.
        sed -i '/^\[global\]$/a\\tcheck password script = /usr/lib/pwsync/samba-check-password' "$SAMBA/etc/smb.conf"
        touch "$SAMBA/provisioned"
    fi
    say samba "starting the DC"
    exec samba --foreground --no-process-group --debug-stdout -M single -s "$SAMBA/etc/smb.conf" \
        --option="server services = ldap kdc"
}

do_slapd() {
    wait_for "init" 120 test -f "$SEC/ready" || exit 1
    if [[ ! -f $SLAPD/slapd.conf ]]; then
        mkdir -p "$SLAPD/data"
        cat >"$SLAPD/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $SLAPD/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile $PKI/ca.pem
TLSCertificateFile $PKI/ext.pem
TLSCertificateKeyFile $PKI/ext.key
password-hash {SSHA}
database mdb
maxsize 268435456
suffix "$EXT_BASE"
rootdn "$EXT_ROOT"
rootpw $(slappasswd -T "$SEC/ldap-root.pw")
directory $SLAPD/data
access to attrs=userPassword
    by self write
    by anonymous auth
    by * none
access to *
    by * read
EOF
        { printf 'dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: ext\no: pwsync demo external system\n\n' "$EXT_BASE"
          printf 'dn: ou=people,%s\nobjectClass: organizationalUnit\nou: people\n\n' "$EXT_BASE"
          for n in "${USERS[@]}"; do
              printf 'dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s Demo\nsn: Demo\nuserPassword: %s\n\n' \
                  "$(ext_dn "$n")" "$n" "${n^}" "$(slappasswd -T "$SEC/$n.pw")"
          done; } | slapadd -q -f "$SLAPD/slapd.conf" || die slapd "slapadd failed"
    fi
    say slapd "starting OpenLDAP"
    exec slapd -d none -f "$SLAPD/slapd.conf" -h "ldap:/// ldaps:///"
}

do_setup() {
    wait_for "init" 120 test -f "$SEC/ready" || exit 1
    if [[ -f /etc/pwsync/ready ]]; then say setup "already done"; return; fi
    need_names setup "$DC_HOST" "$EXT_HOST"
    wait_for "the DC" 180 dc_up || die setup "the DC does not answer"
    wait_for "OpenLDAP" 60 ext_up || die setup "OpenLDAP does not answer"
    cat >/etc/pwsync/pwsyncd.conf <<EOF
# Written by the compose demo's setup (packaging/compose/demo.sh).
store = /var/lib/pwsync
key = /run/secrets/pwsync/master.key
[listen]
uri = ldaps://0.0.0.0:1636
cert = /etc/pwsync/gateway.pem
key = /run/secrets/pwsync/gateway.key
[directory]
uri = ldaps://$DC_HOST
base = $BASE
domain = $DOMAIN
bind = simple
bind-dn = $SVC_DN
bind-password-file = /run/secrets/pwsync/ad.secret
ca = /etc/pwsync/ca.pem
poll-interval = 5
[log]
level = info
EOF
    cat >/etc/pwsync/hook.conf <<EOF
# The DC's capture hook (samba-check-password): where to send changes.
[notify]
gateway = ldaps://$GW_HOST:1636
principal = dc1
secret-file = $SEC/dc1-hook.pw
ca = /etc/pwsync/ca.pem
timeout = 10
EOF
    chmod 0644 /etc/pwsync/pwsyncd.conf /etc/pwsync/hook.conf
    pwsync init >/dev/null
    pwsync sync enable windows >/dev/null
    pwsync sync enable full >/dev/null
    pwsync sync enable partial >/dev/null
    # LINUX-LDAP: both ways, and full sync into AD.
    pwsync app create LINUX-LDAP --description "OpenLDAP for the Linux fleet" >/dev/null
    pwsync adapter create ext-ldap --type ldap --property "uri=ldaps://$EXT_HOST" --property "bind-dn=$EXT_ROOT" \
        --property "dn-template=uid=%s,ou=people,$EXT_BASE" --property ca=/etc/pwsync/ca.pem \
        --secret-property bind-password --sync-to-adapter --sync-from-adapter --change-windows-password \
        <"$SEC/ldap-root.pw" >/dev/null
    pwsync adapter add-app ext-ldap LINUX-LDAP >/dev/null
    pwsync adapter enable ext-ldap >/dev/null
    # HR-PORTAL: reports its users' changes, which are only stored (partial sync).
    pwsync app create HR-PORTAL --description "reports changes; pwsync keeps them" >/dev/null
    pwsync adapter create hr-portal --type ldap --property "uri=ldaps://$EXT_HOST" --property "bind-dn=$EXT_ROOT" \
        --property "dn-template=uid=%s,ou=people,$EXT_BASE" --property ca=/etc/pwsync/ca.pem \
        --secret-property bind-password --sync-from-adapter <"$SEC/ldap-root.pw" >/dev/null
    pwsync adapter add-app hr-portal HR-PORTAL >/dev/null
    pwsync adapter enable hr-portal >/dev/null
    for n in alice bob; do
        pwsync mapping create --app LINUX-LDAP --windows "$DOMAIN\\$n" --external "$n" >/dev/null
        pwsync mapping set-credentials --app LINUX-LDAP --windows "$DOMAIN\\$n" <"$SEC/$n.pw" >/dev/null
    done
    pwsync mapping create --app HR-PORTAL --windows "$DOMAIN\\carol" --external carol >/dev/null
    pwsync mapping set-credentials --app HR-PORTAL --windows "$DOMAIN\\carol" <"$SEC/carol.pw" >/dev/null
    pwsync principal create dc1 --kind windows --capture pre-commit <"$SEC/dc1-hook.pw" >/dev/null
    pwsync principal create ldap-agent --kind adapter --adapter ext-ldap <"$SEC/ldap-agent.pw" >/dev/null
    pwsync principal create hr-agent --kind adapter --adapter hr-portal <"$SEC/hr-agent.pw" >/dev/null
    chown -R "$PWSYNC_UID:$PWSYNC_UID" /var/lib/pwsync /run/secrets/pwsync
    touch /etc/pwsync/ready
    say setup "store, adapters, mappings and principals made"
}

# ldappasswd to the gateway as PRINCIPAL for USER: OLD_FILE NEW_FILE.
gw_passwd() {
    ldappasswd -x -o nettimeout=10 -H "ldaps://$GW_HOST:1636" -D "cn=$1" -y "$SEC/$1.pw" -t "$3" -T "$4" "$2" >/dev/null
}
# AD's user change (delete the old, add the new), bound as the user.
ad_change() {
    local old new
    old=$(printf '"%s"' "$(<"$2")" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
    new=$(printf '"%s"' "$(<"$3")" | iconv -f UTF-8 -t UTF-16LE | base64 -w0)
    printf 'dn: %s\nchangetype: modify\ndelete: unicodePwd\nunicodePwd:: %s\n-\nadd: unicodePwd\nunicodePwd:: %s\n-\n' \
        "$(ad_dn "$1")" "$old" "$new" | ldapmodify -x -o nettimeout=10 -H "ldaps://$DC_HOST" -D "$(ad_dn "$1")" -y "$2" >/dev/null
}

do_demo() {
    wait_for "init" 120 test -f "$SEC/ready" || exit 1
    need_names demo "$DC_HOST" "$EXT_HOST" "$GW_HOST"
    wait_for "the DC" 240 dc_up || die demo "the DC does not answer"
    wait_for "OpenLDAP" 60 ext_up || die demo "OpenLDAP does not answer"
    wait_for "the gateway" 120 gw_up || die demo "the gateway does not answer"
    local t0 failed=0
    umask 077
    # Each new password replaces the old file once it is in place, so a
    # second run starts from the passwords the last one set.
    new_password "$SEC/alice.new"
    t0=$SECONDS
    if ad_change alice "$SEC/alice.pw" "$SEC/alice.new" &&
       wait_for "alice's password in OpenLDAP" 60 bind_ok "ldaps://$EXT_HOST" "$(ext_dn alice)" "$SEC/alice.new"; then
        mv "$SEC/alice.new" "$SEC/alice.pw"
        say demo "Windows -> External: alice changed her password in AD; OpenLDAP has it ($((SECONDS - t0)) s)"
    else say demo "Windows -> External: FAILED"; failed=1; fi

    new_password "$SEC/bob.new"
    if gw_passwd ldap-agent bob "$SEC/bob.pw" "$SEC/bob.new" && bind_ok "ldaps://$DC_HOST" "$(ad_dn bob)" "$SEC/bob.new"; then
        mv "$SEC/bob.new" "$SEC/bob.pw"
        say demo "External -> Windows, full: LINUX-LDAP reported bob's change; AD has it"
    else say demo "External -> Windows, full: FAILED"; failed=1; fi

    # HR-PORTAL's password for carol (what pwsync stores) moves on; her AD one stays.
    [[ -f $SEC/carol.hr ]] || cp "$SEC/carol.pw" "$SEC/carol.hr"
    new_password "$SEC/carol.hr.new"
    if gw_passwd hr-agent carol "$SEC/carol.hr" "$SEC/carol.hr.new" &&
       bind_ok "ldaps://$DC_HOST" "$(ad_dn carol)" "$SEC/carol.pw" && ! bind_ok "ldaps://$DC_HOST" "$(ad_dn carol)" "$SEC/carol.hr.new"; then
        mv "$SEC/carol.hr.new" "$SEC/carol.hr"
        say demo "External -> Windows, partial: HR-PORTAL reported carol's change; pwsync stored it, AD kept hers"
    else say demo "External -> Windows, partial: FAILED"; failed=1; fi
    [[ $failed == 0 ]] && say demo "all three modes shown"
    return "$failed"
}

case ${1:-help} in
    init) do_init ;;
    samba) do_samba ;;
    slapd) do_slapd ;;
    setup) do_setup ;;
    demo) do_demo ;;
    *) echo "usage: demo.sh init|samba|slapd|setup|demo (run by compose.yaml)" >&2; exit 2 ;;
esac
