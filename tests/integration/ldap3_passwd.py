#!/usr/bin/env python3
"""Password Modify (RFC 3062) through Debian's python3-ldap3, a foreign client.

Serves requests read from stdin, one a line, tab-separated:
    BIND_DN  SECRET_FILE  CHECK_NAMES(0|1)  USER_IDENTITY  OLD_PASSWORD  NEW_PASSWORD
and answers each with one line "CODE MESSAGE" (CODE "none" when ldap3 gave
up before sending: the reason follows). An empty old password is left out.
Passwords never go on the command line. With CHECK_NAMES=1 (ldap3's own
default) ldap3 insists on a DN. One LDAPS connection per bind DN is kept.
"""
import argparse
import ssl
import sys

from ldap3 import NONE, Connection, Server, Tls


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--ca", required=True)
    args = ap.parse_args()
    server = Server(args.uri, tls=Tls(ca_certs_file=args.ca, validate=ssl.CERT_REQUIRED), get_info=NONE,
                    connect_timeout=10)
    connections = {}
    for line in sys.stdin:
        bind_dn, secret_file, check, identity, old, new = line.rstrip("\n").split("\t")
        try:
            conn = connections.get(bind_dn)
            if conn is None:
                with open(secret_file, encoding="utf-8") as f:
                    conn = Connection(server, user=bind_dn, password=f.read(), raise_exceptions=False,
                                      receive_timeout=20)
                if not conn.bind():
                    raise RuntimeError(f"bind failed: {conn.result['result']} {conn.result['message']}")
                connections[bind_dn] = conn
            conn.check_names = check == "1"
            conn.extend.standard.modify_password(user=identity, old_password=old or None, new_password=new)
            reply = f"{conn.result['result']} {conn.result['message']}"
        except Exception as e:  # noqa: BLE001 - the test prints why the client gave up
            reply = f"none {type(e).__name__}: {e}"
        print(reply.replace("\n", " "), flush=True)
    for conn in connections.values():
        conn.unbind()
    return 0


if __name__ == "__main__":
    sys.exit(main())
