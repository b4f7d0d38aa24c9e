#!/usr/bin/env python3
"""Password Modify (RFC 3062) through Debian's python3-ldap3, a foreign client.

Binds to the gateway over LDAPS, sends userIdentity as given and prints
"Result: CODE MESSAGE". The passwords come on stdin (old, then new, one a
line; an empty old one is left out), never on the command line. With
--check-names (ldap3's default) ldap3 itself insists on a DN.
"""
import argparse
import ssl
import sys

from ldap3 import NONE, Connection, Server, Tls


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--bind-dn", required=True)
    ap.add_argument("--secret-file", required=True)
    ap.add_argument("--identity", required=True)
    ap.add_argument("--check-names", action="store_true")
    args = ap.parse_args()
    with open(args.secret_file, encoding="utf-8") as f:
        secret = f.read()
    lines = sys.stdin.read().split("\n")
    old, new = lines[0], lines[1]

    server = Server(args.uri, tls=Tls(ca_certs_file=args.ca, validate=ssl.CERT_REQUIRED), get_info=NONE,
                    connect_timeout=10)
    conn = Connection(server, user=args.bind_dn, password=secret, check_names=args.check_names,
                      raise_exceptions=False, receive_timeout=20)
    if not conn.bind():
        print(f"bind failed: {conn.result['result']} {conn.result['message']}")
        return 1
    conn.extend.standard.modify_password(user=args.identity, old_password=old or None, new_password=new)
    print(f"Result: {conn.result['result']} {conn.result['message']}")
    conn.unbind()
    return 0 if conn.result["result"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
