"""Raw LDAPv3 for tests: BER encoding of requests, a TLS (or plain) client
that sends any bytes and reads responses. Used by protocol_abuse.py and by
tests/fuzz/make_corpus.py (the seed corpus)."""
import socket
import ssl


def length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + length(len(body)) + body


def integer(n, tag=0x02):
    return tlv(tag, n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big", signed=True))


def octets(s, tag=0x04):
    return tlv(tag, s.encode() if isinstance(s, str) else s)


def message(msg_id, op, controls=b""):
    return tlv(0x30, integer(msg_id) + op + controls)


def control(oid, critical=None, value=None):
    body = octets(oid)
    if critical is not None:
        body += tlv(0x01, b"\xff" if critical else b"\x00")
    if value is not None:
        body += octets(value)
    return tlv(0x30, body)


def pw_modify(user=None, old=None, new=None):
    body = b""
    for tag, v in ((0x80, user), (0x81, old), (0x82, new)):
        if v is not None:
            body += octets(v, tag)
    return tlv(0x30, body)


def extended(oid, value=None):
    body = octets(oid, 0x80)
    if value is not None:
        body += octets(value, 0x81)
    return tlv(0x77, body)


def bind(msg_id, dn, password):
    return message(msg_id, tlv(0x60, integer(3) + octets(dn) + octets(password, 0x80)))


PASSWORD_MODIFY = "1.3.6.1.4.1.4203.1.11.1"
START_TLS = "1.3.6.1.4.1.1466.20037"
NOTICE_OF_DISCONNECTION = "1.3.6.1.4.1.1466.20036"


def read_tlv(data, pos):
    """(tag, contents, next position) of the element at pos."""
    tag = data[pos]
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    return tag, data[pos:pos + n], pos + n


class Response:
    def __init__(self, raw):
        _, msg, _ = read_tlv(raw, 0)
        _, mid, pos = read_tlv(msg, 0)
        self.message_id = int.from_bytes(mid, "big", signed=True)
        self.op, body, _ = read_tlv(msg, pos)
        _, code, p = read_tlv(body, 0)
        self.code = int.from_bytes(code, "big")
        _, _, p = read_tlv(body, p)  # matchedDN
        _, text, p = read_tlv(body, p)
        self.text = text.decode(errors="replace")
        self.name = ""
        while p < len(body):
            tag, value, p = read_tlv(body, p)
            if tag == 0x8A:
                self.name = value.decode()

    def __repr__(self):
        return f"Response(id={self.message_id}, op={self.op:#x}, code={self.code}, text={self.text!r}, name={self.name!r})"


class Client:
    """One connection to host:port, TLS from the first byte when tls=True;
    source picks the local address (127.0.0.x) to stand for another peer."""

    def __init__(self, host, port, tls, ca, source=None, timeout=10):
        self.ca = ca
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls:
            self.start_tls()

    def start_tls(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.check_hostname = False
        self.sock = ctx.wrap_socket(self.sock)

    def send(self, data):
        self.sock.sendall(data)

    def receive(self):
        """The next response, or None when the server closed the connection."""
        head = self._exactly(2)
        if head is None:
            return None
        extra = b""
        if head[1] & 0x80:
            extra = self._exactly(head[1] & 0x7F)
            n = int.from_bytes(extra, "big")
        else:
            n = head[1]
        body = self._exactly(n)
        return None if body is None else Response(head + extra + body)

    def _exactly(self, n):
        out = b""
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except (ConnectionError, ssl.SSLError, OSError):
                return None
            if not chunk:
                return None
            out += chunk
        return out

    def closed(self):
        """True when the server has closed (reads EOF, no more responses)."""
        while True:
            r = self.receive()
            if r is None:
                return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
