# Helpers for the servers testenv starts, shared by testenv/env,
# testenv/second-dc and testenv/second-domain: certificates from the test
# CA and host names in the namespace's private /etc/hosts.
# shellcheck shell=bash

# pki_key NAME: an EC P-256 key PKI/NAME.key, mode 0600 (generated in
# milliseconds; RSA-2048 takes ~0.2 s per key).
pki_key() {
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$1.key")
    chmod 0600 "$PKI/$1.key"
}

# pki_leaf NAME CN EXTENDED_KEY_USAGE [SUBJECT_ALT_NAME]: PKI/NAME.pem and
# PKI/NAME.key, signed by the test CA in PKI (ca.pem, ca.key), 10 years.
pki_leaf() {
    local name=$1 cn=$2 eku=$3 san=${4:-}
    pki_key "$name"
    {
        echo "basicConstraints = critical, CA:FALSE"
        echo "keyUsage = critical, digitalSignature, keyAgreement"
        echo "extendedKeyUsage = $eku"
        echo "subjectKeyIdentifier = hash"
        echo "authorityKeyIdentifier = keyid"
        [[ -z $san ]] || echo "subjectAltName = $san"
    } >"$PKI/$name.ext"
    openssl req -new -key "$PKI/$name.key" -subj "/O=pwsync test/CN=$cn" -out "$PKI/$name.csr"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -days 3650 \
        -extfile "$PKI/$name.ext" -out "$PKI/$name.pem" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# pki_dc NAME FQDN IP: a DC's LDAPS certificate (SAN: its name and address).
pki_dc() { pki_leaf "$1" "$2" serverAuth "DNS:$2,IP:$3"; }

# hosts_add IP NAME [ALIAS...]: the line "IP NAME ALIAS..." in /etc/hosts
# unless NAME is there already. Only inside testenv/netns, where /etc/hosts
# is the namespace's private copy; appended (>>) so that the bind-mounted
# file keeps its inode.
hosts_add() {
    local ip=$1 name=$2
    [[ ${PWSYNC_NETNS:-} == 1 ]] || { echo "hosts_add: only inside testenv/netns" >&2; return 1; }
    awk -v n="$name" '$1 !~ /^#/ { for (i = 2; i <= NF; i++) if ($i == n) f = 1 } END { exit !f }' /etc/hosts ||
        echo "$ip ${*:2}" >>/etc/hosts
}
