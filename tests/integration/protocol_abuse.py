#!/usr/bin/env python3
"""Protocol abuse against a running pwsyncd (started by protocol_abuse.sh):
each case gets the right LDAP result code, and the gateway keeps serving
well-behaved clients afterwards. Prints PASS/FAIL lines; exits 1 on a FAIL.
Environment: GW_LDAPS_PORT, GW_LDAP_PORT, GW_CA, GW_AGENT_SECRET,
GW_DC_SECRET, GW_DOMAIN, IDLE_CONNECTIONS, GW_PID."""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ldap_raw import (NOTICE_OF_DISCONNECTION, PASSWORD_MODIFY, START_TLS, Client, bind, control,  # noqa: E402
                      extended, message, pw_modify, tlv)

HOST = "127.0.0.1"
LDAPS = int(os.environ["GW_LDAPS_PORT"])
LDAP = int(os.environ["GW_LDAP_PORT"])
CA = os.environ["GW_CA"]
AGENT = ("cn=ldap-agent", open(os.environ["GW_AGENT_SECRET"]).read())
DC = ("cn=dc1", open(os.environ["GW_DC_SECRET"]).read())
DOMAIN = os.environ["GW_DOMAIN"]
IDLE = int(os.environ.get("IDLE_CONNECTIONS", "2000"))
PID = int(os.environ["GW_PID"])
failed = 0


def result(ok, what):
    global failed
    print(("PASS: " if ok else "FAIL: ") + what, flush=True)
    failed += 0 if ok else 1


def bound(who, source=None, tls_port=LDAPS):
    c = Client(HOST, tls_port, True, CA, source=source, timeout=40)
    c.send(bind(1, *who))
    r = c.receive()
    return c, r


def still_serving(source=None):
    """A well-behaved client binds and gets WhoAmI answered, in time."""
    t0 = time.monotonic()
    try:
        c, r = bound(DC, source)
        if r is None or r.code != 0:
            return False, 0
        c.send(message(2, extended("1.3.6.1.4.1.4203.1.11.3")))
        w = c.receive()
        c.close()
        return w is not None and w.code == 0, int((time.monotonic() - t0) * 1000)
    except OSError:
        return False, 0


def serving(what, source=None):
    ok, ms = still_serving(source)
    result(ok, f"  ... and the gateway still serves others ({ms} ms)")


def notice_then_close(c, code):
    r = c.receive()
    ok = r is not None and r.message_id == 0 and r.name == NOTICE_OF_DISCONNECTION and r.code == code
    return ok and c.closed(), r


# ---- bind before TLS on the plain port: 13; StartTLS then bind: 0 ----
c = Client(HOST, LDAP, False, CA)
c.send(bind(1, *AGENT))
r = c.receive()
result(r is not None and r.code == 13, f"a bind before StartTLS on ldap:// gives 13 (got {r})")
c.send(message(2, extended(START_TLS)))
r = c.receive()
result(r is not None and r.code == 0, "  ... StartTLS on the same connection succeeds")
c.start_tls()
c.send(bind(3, *AGENT))
r = c.receive()
result(r is not None and r.code == 0, "  ... and then the bind succeeds (0)")
c.close()
c = Client(HOST, LDAP, False, CA)
c.send(message(1, extended(PASSWORD_MODIFY, pw_modify("alice", None, "Plain-Text-Attempt.1"))))
r = c.receive()
result(r is not None and r.code == 13, "a Password Modify in clear text gives 13 and is not processed")
c.close()

# ---- oversized message: Notice of Disconnection (protocolError 2), closed ----
c = Client(HOST, LDAPS, True, CA)
c.send(b"\x30\x84\x00\x10\x00\x00")  # claims 1 MiB: over max-message-size
ok, r = notice_then_close(c, 2)
result(ok, f"a message over max-message-size gets a Notice of Disconnection (2) and the connection closes ({r})")
serving("oversized")
c = Client(HOST, LDAPS, True, CA)
huge = bind(1, "cn=" + "x" * 200000, "y")
try:
    c.send(huge)
except OSError:
    pass
ok, r = notice_then_close(c, 2)
result(ok, "a 200 KB bind request is refused the same way before it is read")

# ---- truncated message: the connection closes, nothing is answered ----
c = Client(HOST, LDAP, False, CA)  # before TLS: the same framing, and a half-close is possible
full = message(1, extended(START_TLS))
c.send(full[:len(full) // 2])
c.sock.shutdown(socket.SHUT_WR)
r = c.receive()
result(r is None or r.code != 0, f"a truncated request then EOF is never answered with success ({r})")
result(c.closed(), "  ... and the connection closes")
c.close()
c = Client(HOST, LDAPS, True, CA)
inner = bind(1, *AGENT)
broken = inner[:2] + inner[2:5] + b"\x04\x7f" + b"x" * 5  # an inner element claims more than the message holds
c.send(b"\x30" + bytes([len(broken) - 2]) + broken[2:])
ok, r = notice_then_close(c, 2)
result(ok, f"an inner element longer than its message gives a Notice of Disconnection (2) ({r})")
serving("truncated")

# ---- an adapter principal for an account outside its adapter: 32 ----
c, r = bound(AGENT)
c.send(message(2, extended(PASSWORD_MODIFY, pw_modify("OTHER-ONLY", None, "Not-Yours-At-All.7"))))
r = c.receive()
result(r is not None and r.code == 32,
       f"ldap-agent changing a user mapped only in another adapter's application gives 32 ({r})")
# ---- an adapter principal posing as windows ----
c.send(message(3, extended(PASSWORD_MODIFY, pw_modify(f"{DOMAIN}\\alice", None, "Posing-As-Windows.8"))))
r = c.receive()
result(r is not None and r.code == 32, f"ldap-agent naming a Windows account (posing as a DC) gives 32 ({r})")
c.send(message(4, extended(PASSWORD_MODIFY, pw_modify(f"{DOMAIN}\\alice", None, "Posing-As-Windows.9")),
               tlv(0xa0, control("1.3.6.1.4.1.7165.4.3.99", True))))
r = c.receive()
result(r is not None and r.code == 12, f"  ... with a critical control claiming to be a capture: 12 ({r})")
c.close()
c, r = bound(DC)
c.send(message(2, extended(PASSWORD_MODIFY, pw_modify("OTHER-ONLY", None, "Dc-Naming-External.1"))))
r = c.receive()
result(r is not None and r.code == 32, f"a windows principal naming an external user (no Windows account) gives 32 ({r})")
c.close()

# ---- a flood of failed binds slows that principal, not others ----
def timed_bind(who, source):
    t0 = time.monotonic()
    c, r = bound(who, source)
    c.close()
    return (time.monotonic() - t0) * 1000, (r.code if r else None)


base_other, _ = timed_bind(DC, "127.0.0.3")
# Five free failures, then 0.5 s, 1 s, 2 s, ... (bind_throttle, per bind DN
# and per peer address).
codes, times = [], []
for i in range(9):
    ms, code = timed_bind(("cn=ldap-agent", "wrong-secret"), "127.0.0.2")
    codes.append(code)
    times.append(ms)
other_ms, other_code = timed_bind(DC, "127.0.0.3")
result(all(code == 49 for code in codes), f"9 failed binds of ldap-agent all get 49: {codes}")
result(times[-1] > 1500 + times[0], f"  ... and are slowed: first {times[0]:.0f} ms, ninth {times[-1]:.0f} ms")
result(other_code == 0 and other_ms < max(1000, 3 * base_other),
       f"  ... another principal from another address is not: {other_ms:.0f} ms (before the flood {base_other:.0f} ms)")
ms, code = timed_bind(AGENT, "127.0.0.4")
result(code == 0 and ms > 1500, f"  ... the flooded principal itself, right secret, from elsewhere: {code} after {ms:.0f} ms")

# ---- thousands of idle connections from one address ----
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE + 256), hard))
idle, refused = [], 0
t0 = time.monotonic()
for i in range(IDLE):
    try:
        s = socket.create_connection((HOST, LDAPS), timeout=5, source_address=("127.0.0.5", 0))
        idle.append(s)
    except OSError:
        refused += 1
time.sleep(1)
open_now = 0
for s in idle:
    s.setblocking(False)
    try:
        open_now += 0 if s.recv(1) == b"" else 1
    except BlockingIOError:
        open_now += 1
    except OSError:
        pass
fds = len(os.listdir(f"/proc/{PID}/fd"))
threads = len(os.listdir(f"/proc/{PID}/task"))
print(f"{IDLE} idle connections from 127.0.0.5 in {time.monotonic() - t0:.1f} s: {open_now} held open by the gateway, "
      f"the rest closed; pwsyncd has {fds} fds and {threads} threads")
result(open_now <= 256, f"the gateway holds at most max-connections-per-address (256) of them ({open_now})")
ok, ms = still_serving()
result(ok, f"with {IDLE} idle connections open, a client from another address is served ({ms} ms)")
ok, ms = still_serving("127.0.0.5")
result(not ok, "  ... while the idle connections' own address gets no more")
for s in idle:
    s.close()
time.sleep(1)
ok, ms = still_serving("127.0.0.5")
result(ok, f"  ... until they are closed ({ms} ms)")
sys.exit(1 if failed else 0)
