#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (run from anywhere; the files
are committed, so this only needs running when the formats change)."""
import hashlib
import os
import sys

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ------------------------------------------------------------ LDAP (BER)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from ldap_raw import control, extended, integer, message, octets, pw_modify, tlv  # noqa: E402

PM = "1.3.6.1.4.1.4203.1.11.1"
ldap = {
    "bind_simple": message(1, tlv(0x60, integer(3) + octets("cn=hook,ou=principals") + octets("s3cret", 0x80))),
    "bind_anonymous": message(2, tlv(0x60, integer(3) + octets("") + octets("", 0x80))),
    "bind_sasl_external": message(3, tlv(0x60, integer(3) + octets("") + tlv(0xa3, octets("EXTERNAL")))),
    "bind_sasl_creds": message(4, tlv(0x60, integer(3) + octets("") + tlv(0xa3, octets("EXTERNAL") + octets("dn:x")))),
    "bind_v2": message(5, tlv(0x60, integer(2) + octets("cn=a") + octets("b", 0x80))),
    "pw_modify_full": message(6, extended(PM, pw_modify("uid=alice,ou=people", "old-pw", "new-pw"))),
    "pw_modify_new_only": message(7, extended(PM, pw_modify(new="only-new"))),
    "pw_modify_empty": message(8, extended(PM, pw_modify())),
    "pw_modify_utf8": message(9, extended(PM, pw_modify("alice", None, "pässwörd€"))),
    "whoami": message(10, extended("1.3.6.1.4.1.4203.1.11.3")),
    "starttls": message(11, extended("1.3.6.1.4.1.1466.20037")),
    "unknown_extended": message(12, extended("1.2.3.4", b"\x00\x01")),
    "unbind": message(13, tlv(0x42, b"")),
    "abandon": message(14, integer(3, 0x50)),
    "search": message(15, tlv(0x63, octets("") + tlv(0x0a, b"\x00") + tlv(0x0a, b"\x00") + integer(0) +
                              integer(0) + tlv(0x01, b"\x00") + octets("objectClass", 0x87) + tlv(0x30, b""))),
    "critical_control": message(16, extended("1.3.6.1.4.1.4203.1.11.3"),
                                tlv(0xa0, control("1.2.840.113556.1.4.319", True, b"\x30\x00"))),
    "capture_control": message(17, extended(PM, pw_modify("CORP\\alice", None, "captured")),
                               tlv(0xa0, control("1.3.6.1.4.1.99999.1", False))),
    "long_form_length": b"\x30\x84\x00\x00\x00\x0c" + integer(18) + tlv(0x42, b"") + b"\x00\x00\x00\x00",
    "big_message_id": message(2147483647, tlv(0x42, b"")),
}
for name, data in ldap.items():
    write("ldap_request", name, data)


# ------------------------------------------------------------ store records
def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(tag, value):
    if isinstance(value, bool):
        value = varint(int(value))
    elif isinstance(value, int):
        value = varint(value & 0xFFFFFFFFFFFFFFFF)
    elif isinstance(value, str):
        value = value.encode()
    return varint(tag) + varint(len(value)) + value


def record(*fields):
    return b"\x01" + b"".join(field(t, v) for t, v in fields)


T = 1764020000000000  # µs since 1970
KEY = b"k" * 32
KEY_ID = hashlib.sha256(b"pwsync master key id" + KEY).digest()[:4]


def seal_context(db, key, fieldname):
    ctx = b"pwsync-seal-v1"
    for part in (db, key, fieldname):
        ctx += b"\x00" + str(len(part)).encode() + b":" + part.encode()
    return ctx


def seal(plaintext, context):
    nonce = b"\x07" * 12
    return b"\x01" + KEY_ID + nonce + AESGCM(KEY).encrypt(nonce, plaintext.encode(), context)


sealed = seal("fuzz-seed-password", seal_context("mappings", "app", "credential"))
pair = lambda k, v: record((1, k), (2, v))
job = [(1, 42), (2, "ldap1"), (3, "app1"), (4, "CORP\\alice"), (5, "alice"), (6, "windows"), (7, 3), (8, T),
       (9, T + 1000), (10, "timeout"), (11, sealed), (12, sealed)]
stores = [
    ("app", record((1, "App1"), (2, "an application"), (3, "ops@example.org"), (4, True), (5, "ldap1"), (6, T), (7, T))),
    ("adapter", record((1, "ldap1"), (2, "ldap"), (3, "slapd"), (10, True), (11, True), (12, False), (13, True),
                       (14, True), (15, False), (16, False), (20, 5), (21, 30), (22, 86400), (23, 4), (24, 10),
                       (30, pair("uri", "ldap://x")), (31, pair("bind-password", sealed)), (40, "grp"), (50, T),
                       (51, T))),
    ("group", record((1, "grp"), (2, "a group"), (3, T))),
    ("mapping", record((1, "app1"), (2, "CORP\\alice"), (3, "alice"), (4, True), (5, 1), (6, "\x01" * 16),
                       (7, sealed), (8, T), (9, T), (10, T))),
    ("principal", record((1, "hook"), (2, 0), (3, ""), (4, 2), (5, "CN=dc1"), (6, T), (10, 16384), (11, 8), (12, 1),
                         (13, "s" * 16), (14, "h" * 32))),
    ("audit", record((1, T), (2, "admin"), (3, "mapping.add"), (4, "app1/alice"), (5, "detail"))),
    ("job", record(*job)),
    ("dead", record(*job, (30, "permanent failure"), (31, T))),
    ("pending", record((1, 7), (2, "CORP\\alice"), (3, "hook"), (4, T), (5, T + 10**6), (6, sealed))),
    ("marker", record((1, "ldap1"), (2, T))),
    ("fields", record((1, -1), (2, 2**63), (99999, "x"))),
    ("sealed", sealed),
]
for selector, (name, data) in enumerate(stores):
    write("store_record", name, bytes([selector]) + data)
write("store_record", "newer_format", bytes([0]) + b"\x02" + field(1, "x"))
write("store_record", "truncated", bytes([3]) + record((1, "app1"), (7, sealed))[:-5])
