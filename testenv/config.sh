# testenv/config.sh — names, addresses and initial passwords of the test
# environment. Sourced by testenv/env and testenv/samba-provision (bash).
#
# Changing anything here changes the hash that keys the cached Samba
# template, so the next start re-provisions.
#
# These are throwaway test credentials for servers that only ever listen
# inside a private network namespace. Passwords contain no quotes, `$`,
# backslashes or spaces, so that env.sh can hold them in single quotes.
# shellcheck shell=bash disable=SC2034 # variables are used by the sourcing scripts

# ---- Samba AD DC ----
# The first domain's values; te_select_domain (below) swaps in another's.
TE_REALM=TEST.EXAMPLE
TE_DOMAIN=TEST
TE_DNS_DOMAIN=test.example
TE_DC_BASE=DC=test,DC=example
TE_DC_HOST=dc1
TE_DC_FQDN=dc1.test.example
TE_DC_IP=127.0.0.2
# Its LDAPS certificate in the PKI folder (NAME.pem, NAME.key).
TE_DC_CERT=dc1
TE_DC_ADMIN=Administrator
TE_DC_ADMIN_PASSWORD=Adm1n-Test-Pw.1
# The gateway's service account. Member of Domain Admins: acceptable for a
# test DC (it needs password reset and DirSync "replicating directory
# changes" rights); a production deployment delegates narrower rights.
TE_SVC_USER=svc-pwsync
TE_SVC_PASSWORD=Svc-Pwsync-Pw.1
# Enabled users in CN=Users, and their initial passwords in AD. All pass the
# default policy (complexity, length >= 7).
TE_DC_USERS=(alice bob carol)
declare -A TE_DC_PASSWORD=(
    [alice]=Alice-AD-Init.1
    [bob]=Bob-AD-Init.1
    [carol]=Carol-AD-Init.1
)
# One disabled user (userAccountControl 514), for enabled/disabled checks.
TE_DC_DISABLED_USER=dora
TE_DC_DISABLED_PASSWORD=Dora-AD-Init.1

# ---- A second, independent AD domain (testenv/second-domain) ----
# te_select_domain NAME: `test` (the first domain, the values above) or
# `other`: OTHER.EXAMPLE, one DC dc1.other.example on 127.0.0.4 (the first
# domain's DC is on .2, testenv/second-dc's dc2 on .3), with the same
# account names as the first domain and other passwords. It sets the TE_*
# names above, so that testenv/env and testenv/samba-provision serve either
# domain with the same code (PWSYNC_TESTENV_DOMAIN=other).
te_select_domain() {
    case $1 in
        test) ;;
        other)
            TE_REALM=OTHER.EXAMPLE
            TE_DOMAIN=OTHER
            TE_DNS_DOMAIN=other.example
            TE_DC_BASE=DC=other,DC=example
            TE_DC_HOST=dc1
            TE_DC_FQDN=dc1.other.example
            TE_DC_IP=127.0.0.4
            TE_DC_CERT=other-dc1
            TE_DC_ADMIN_PASSWORD=Adm1n-Other-Pw.2
            TE_SVC_PASSWORD=Svc-Pwsync-Other.2
            TE_DC_USERS=(alice bob carol)
            TE_DC_PASSWORD=(
                [alice]=Alice-Other-Init.2
                [bob]=Bob-Other-Init.2
                [carol]=Carol-Other-Init.2
            )
            TE_DC_DISABLED_PASSWORD=Dora-Other-Init.2
            ;;
        *) return 1 ;;
    esac
}

# ---- OpenLDAP slapd, the "external system" ----
TE_LDAP_FQDN=ldap.test.example
TE_LDAP_IP=127.0.0.1
TE_LDAP_PORT=3389
TE_LDAPS_PORT=3636
TE_LDAP_BASE=dc=ext,dc=example
TE_LDAP_ROOTDN=cn=admin,dc=ext,dc=example
TE_LDAP_ROOTPW=Ext-Admin-Pw.1
# uid=NAME,ou=people,dc=ext,dc=example and initial userPassword.
TE_LDAP_USERS=(alice bob carol dave erin)
declare -A TE_LDAP_PASSWORD=(
    [alice]=Alice-Ext-Init.1
    [bob]=Bob-Ext-Init.1
    [carol]=Carol-Ext-Init.1
    [dave]=Dave-Ext-Init.1
    [erin]=Erin-Ext-Init.1
)

# ---- pwsync gateway (certificate only; the gateway is started by tests) ----
TE_GATEWAY_FQDN=gateway.test.example

# ---- PostgreSQL, the shared store backend ----
# 127.0.0.1 over TLS (verify-full against the test CA, the certificate names
# the IP), SCRAM with a password file; the superuser only on the Unix socket.
TE_PG_IP=127.0.0.1
TE_PG_PORT=5432
TE_PG_DB=pwsync
TE_PG_USER=pwsync
TE_PG_PASSWORD=Pg-Store-Pw.1
