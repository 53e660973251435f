"""OSC 1.0 codec and the daemon's UDP + TCP server (one port number, one network thread).

Codec: messages, bundles, nested bundles; types i h f d s S b T F N I c t m r (parsed), with
every parse failure raised as :class:`OscParseError`. Nothing here trusts a length field.

Server: a single selector thread owns the UDP socket, the TCP listener and every TCP
connection, so no handler ever blocks another socket for long and no lock is needed on the
sockets. Per packet: allowlist → size bound → per-client token bucket → parse → the message
handler (given the peer, the address, the arguments and the bundle's timetag). Every drop is
counted; an exception in a handler is logged and answered with /fail, never fatal.

TCP framing (per connection, from its first byte): 0xC0 → OSC 1.1 SLIP; '/' or '#' → SLIP
without the leading END; anything else → OSC 1.0 int32 big-endian size prefix (scsynth, liblo).
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import math
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

log = logging.getLogger("aedaemon.osc")

# ---------------------------------------------------------------------------------- codec

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
IMMEDIATELY = 1
MAX_BUNDLE_DEPTH = 8


class OscParseError(ValueError):
    """Bytes that are not a well-formed OSC packet."""


def ntp_from_unix(t: float) -> int:
    secs = math.floor(t)
    frac = int((t - secs) * (1 << 32))
    return ((int(secs) + NTP_EPOCH_OFFSET) << 32) | (frac & 0xFFFFFFFF)


def unix_from_ntp(tt: int) -> float:
    return (tt >> 32) - NTP_EPOCH_OFFSET + (tt & 0xFFFFFFFF) / 4294967296.0


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise OscParseError("unterminated string")
    nxt = _pad4(end + 1)
    if nxt > len(data):
        raise OscParseError("string padding past end of packet")
    try:
        return data[pos:end].decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise OscParseError("string is not UTF-8") from None


# fixed-size arguments: struct format, size, name for errors ('c' is a char, 'r' an RGBA colour,
# 'm' a MIDI message: all 32 bits); argument-less tags carry their value in the tag itself
_FIXED = {
    "i": (">i", 4, "int32"), "f": (">f", 4, "float32"), "h": (">q", 8, "int64"), "d": (">d", 8, "float64"),
    "t": (">Q", 8, "timetag"), "c": (">I", 4, "'c'"), "r": (">I", 4, "'r'"), "m": (">I", 4, "'m'"),
}  # fmt: skip
_CONSTANTS = {"T": True, "F": False, "N": None, "I": math.inf}


def parse_message(data: bytes) -> tuple[str, list]:
    if not data.startswith(b"/"):
        raise OscParseError("message does not start with '/'")
    if len(data) % 4:
        raise OscParseError("message size is not a multiple of 4")
    address, pos = _read_string(data, 0)
    if pos >= len(data):
        return address, []  # OSC 1.0 tolerates a missing type tag string
    if data[pos : pos + 1] != b",":
        raise OscParseError("type tag string does not start with ','")
    tags, pos = _read_string(data, pos)
    args: list[Any] = []
    n = len(data)
    stack: list[list] = []
    for tag in tags[1:]:
        fixed = _FIXED.get(tag)
        if fixed is not None:
            fmt, size, what = fixed
            if pos + size > n:
                raise OscParseError(f"truncated {what}")
            value = struct.unpack_from(fmt, data, pos)[0]
            pos += size
            if tag == "c":
                value = chr(value) if value < 0x110000 else value
            args.append(value)
        elif tag in _CONSTANTS:
            args.append(_CONSTANTS[tag])
        elif tag in ("s", "S"):
            s, pos = _read_string(data, pos)
            args.append(s)
        elif tag == "b":
            if pos + 4 > n:
                raise OscParseError("truncated blob size")
            size = struct.unpack_from(">i", data, pos)[0]
            pos += 4
            if size < 0 or pos + size > n:
                raise OscParseError("blob size past end of packet")
            args.append(bytes(data[pos : pos + size]))
            pos += _pad4(size)
        elif tag == "[":
            stack.append(args)
            args = []
        elif tag == "]":
            if not stack:
                raise OscParseError("unbalanced ']' in type tags")
            inner = args
            args = stack.pop()
            args.append(inner)
        else:
            raise OscParseError(f"unknown type tag '{tag}'")
    if stack:
        raise OscParseError("unbalanced '[' in type tags")
    if pos > n:
        raise OscParseError("arguments past end of packet")
    return address, args


@dataclass
class Parsed:
    """One message of a packet: its address, arguments and effective timetag (None = now)."""

    address: str
    args: list
    timetag: Optional[int] = None


def parse_packet(data: bytes) -> list[Parsed]:
    """Flatten a message or (nested) bundle into messages with their effective timetag."""
    out: list[Parsed] = []
    _parse_into(bytes(data), None, 0, out)
    return out


def _parse_into(data: bytes, outer: Optional[int], depth: int, out: list[Parsed]) -> None:
    if data.startswith(b"#bundle\0"):
        if depth >= MAX_BUNDLE_DEPTH:
            raise OscParseError("bundles nested too deep")
        if len(data) < 16:
            raise OscParseError("truncated bundle header")
        tt = struct.unpack_from(">Q", data, 8)[0]
        tag: Optional[int] = None if tt <= IMMEDIATELY else tt
        if tag is None or (outer is not None and tag < outer):
            tag = outer  # an inner 'now' (or an earlier time) inherits the enclosing time
        pos = 16
        n = len(data)
        while pos < n:
            if pos + 4 > n:
                raise OscParseError("truncated bundle element size")
            size = struct.unpack_from(">i", data, pos)[0]
            pos += 4
            if size <= 0 or size % 4 or pos + size > n:
                raise OscParseError("bad bundle element size")
            _parse_into(data[pos : pos + size], tag, depth + 1, out)
            pos += size
    elif data.startswith(b"/"):
        address, args = parse_message(data)
        out.append(Parsed(address, args, outer))
    else:
        raise OscParseError("not an OSC message or bundle")


def _encode_string(s: str) -> bytes:
    b = s.encode("utf-8") + b"\0"
    return b + b"\0" * (_pad4(len(b)) - len(b))


def _encode_args(args: Iterable[Any], tags: list, payload: list) -> None:
    for a in args:
        if a is True:
            tags.append("T")
        elif a is False:
            tags.append("F")
        elif a is None:
            tags.append("N")
        elif isinstance(a, int):
            if -(1 << 31) <= a < (1 << 31):
                tags.append("i")
                payload.append(struct.pack(">i", a))
            else:
                tags.append("h")
                payload.append(struct.pack(">q", a))
        elif isinstance(a, float):
            tags.append("f")
            payload.append(struct.pack(">f", a))
        elif isinstance(a, str):
            tags.append("s")
            payload.append(_encode_string(a))
        elif isinstance(a, (bytes, bytearray, memoryview)):
            b = bytes(a)
            tags.append("b")
            payload.append(struct.pack(">i", len(b)) + b + b"\0" * (_pad4(len(b)) - len(b)))
        elif isinstance(a, (list, tuple)):
            tags.append("[")
            _encode_args(a, tags, payload)
            tags.append("]")
        else:
            try:  # numpy scalars
                import numpy as np

                if isinstance(a, np.integer):
                    tags.append("i")
                    payload.append(struct.pack(">i", int(a)))
                    continue
                if isinstance(a, np.floating):
                    tags.append("f")
                    payload.append(struct.pack(">f", float(a)))
                    continue
            except ImportError:  # pragma: no cover
                pass
            raise TypeError(f"cannot encode {type(a).__name__} as an OSC argument")


def encode_message(address: str, args: Iterable[Any] = ()) -> bytes:
    """Encode with types from the Python values: bool T/F, int i (h beyond int32), float f,
    str s, bytes b, None N, list/tuple an OSC array [...]."""
    tags = [","]
    payload: list = []
    _encode_args(args, tags, payload)
    return _encode_string(address) + _encode_string("".join(tags)) + b"".join(payload)


def encode_bundle(timetag: int, elements: Iterable[bytes]) -> bytes:
    parts = [b"#bundle\0", struct.pack(">Q", timetag)]
    for e in elements:
        parts.append(struct.pack(">i", len(e)))
        parts.append(e)
    return b"".join(parts)


SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def slip_encode(packet: bytes) -> bytes:
    body = packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


def slip_decode(frame: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(frame)
    while i < n:
        c = frame[i]
        if c == SLIP_ESC:
            if i + 1 >= n:
                raise OscParseError("SLIP escape at end of frame")
            d = frame[i + 1]
            if d == SLIP_ESC_END:
                out.append(SLIP_END)
            elif d == SLIP_ESC_ESC:
                out.append(SLIP_ESC)
            else:
                raise OscParseError("bad SLIP escape")
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def size_prefix(packet: bytes) -> bytes:
    return struct.pack(">i", len(packet)) + packet


# --------------------------------------------------------------------------------- server


class TokenBucket:
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, n: float, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= n:
            self.tokens -= n
            return True
        return False


class Peer:
    """Where a message came from and where its replies go (hashable: the subscriber key)."""

    __slots__ = ("kind", "addr", "_server", "_conn", "key")

    def __init__(self, kind: str, addr: Any, server: "OscServer", conn: Optional["_TcpConn"] = None) -> None:
        self.kind = kind
        self.addr = addr
        self._server = server
        self._conn = conn
        self.key = (kind, addr) if conn is None else (kind, addr, conn.ident)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Peer) and other.key == self.key

    def __repr__(self) -> str:
        host, port = self.addr[0], self.addr[1]
        return f"{self.kind}:{host}:{port}"

    @property
    def alive(self) -> bool:
        return self._conn is None or not self._conn.closed

    def send(self, address: str, args: Iterable[Any] = ()) -> None:
        """Thread-safe: encode and send (UDP at once, TCP via the network thread)."""
        try:
            data = encode_message(address, list(args))
        except (TypeError, struct.error, UnicodeEncodeError) as exc:
            log.error("cannot encode reply %s %r: %s", address, args, exc)
            return
        self.send_raw(data)

    def at_port(self, port: int) -> "Peer":
        """The same UDP host at another port (where a client that sends from one port listens)."""
        return Peer(self.kind, (self.addr[0], int(port), *self.addr[2:]), self._server)

    def send_raw(self, data: bytes) -> None:
        if self._conn is None:
            self._server._send_udp(data, self.addr)
        else:
            self._server._send_tcp(self._conn, data)


class _TcpConn:
    _next = 0

    def __init__(self, sock: socket.socket, addr: Any, bucket: TokenBucket) -> None:
        _TcpConn._next += 1
        self.ident = _TcpConn._next
        self.sock = sock
        self.addr = addr
        self.bucket = bucket
        self.inbuf = bytearray()
        self.framing: Optional[str] = None  # 'size' or 'slip'
        self.discarding = False
        self.outq: collections.deque[bytes] = collections.deque()
        self.outbuf = bytearray()
        self.closed = False
        self.peer: Optional[Peer] = None


@dataclass
class OscStats:
    packets: int = 0
    messages: int = 0
    malformed: int = 0
    denied: int = 0
    oversized: int = 0
    rate_limited: int = 0
    tcp_refused: int = 0
    handler_errors: int = 0
    send_errors: int = 0
    tcp_connections: int = 0
    udp_peers: dict = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return self.malformed + self.denied + self.oversized + self.rate_limited + self.tcp_refused


Handler = Callable[[Peer, Parsed], None]

_TCP_OUT_LIMIT = 4 * 1024 * 1024  # a subscriber that stops reading is disconnected past this


class OscServer:
    """UDP + TCP OSC on one port; `handler(peer, parsed)` is called on the network thread."""

    def __init__(
        self,
        handler: Handler,
        *,
        listen: str = "127.0.0.1",
        port: int = 9000,
        allow: Iterable[str] = (),
        max_packet: int = 65507,
        max_tcp_clients: int = 16,
        client_rate: float = 10000.0,
    ) -> None:
        self.handler = handler
        self.listen = "127.0.0.1" if listen == "localhost" else listen
        self.max_packet = max_packet
        self.max_tcp_clients = max_tcp_clients
        self.client_rate = client_rate
        self.burst = max(64.0, client_rate / 4.0)
        self.stats = OscStats()
        nets = [ipaddress.ip_network(n, strict=False) for n in allow]
        self._allow = nets
        self._allow_cache: dict[str, bool] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._conns: dict[socket.socket, _TcpConn] = {}
        self._stop = False
        self._thread: Optional[threading.Thread] = None
        family = socket.AF_INET6 if ":" in self.listen else socket.AF_INET
        self.udp = socket.socket(family, socket.SOCK_DGRAM)
        self.tcp = socket.socket(family, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        except OSError:
            pass
        # bind TCP first when port is 0, then UDP on the same number
        self.tcp.bind((self.listen, port))
        self.port = self.tcp.getsockname()[1]
        try:
            self.udp.bind((self.listen, self.port))
        except OSError:
            self.tcp.close()
            self.udp.close()
            raise
        self.tcp.listen(16)
        self.udp.setblocking(False)
        self.tcp.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.udp, selectors.EVENT_READ, "udp")
        self._sel.register(self.tcp, selectors.EVENT_READ, "listen")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._pending_tcp: collections.deque[_TcpConn] = collections.deque()

    # -- lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="osc", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        for conn in list(self._conns.values()):
            self._flush(conn)
            self._close(conn)
        for s in (self.udp, self.tcp, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    # -- introspection
    def clients(self) -> int:
        """Open TCP connections plus UDP peers heard from in the last 30 s."""
        now = time.monotonic()
        peers = self.stats.udp_peers
        if len(peers) > 256:
            for k in [k for k, t in peers.items() if now - t > 30.0]:
                del peers[k]
        return len(self._conns) + sum(1 for t in list(peers.values()) if now - t <= 30.0)

    # -- sending (thread-safe)
    def _send_udp(self, data: bytes, addr: Any) -> None:
        try:
            self.udp.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.stats.send_errors += 1
        except OSError as exc:
            self.stats.send_errors += 1
            log.debug("udp send to %s failed: %s", addr, exc)

    def _send_tcp(self, conn: _TcpConn, data: bytes) -> None:
        if conn.closed:
            return
        framed = slip_encode(data) if conn.framing == "slip" else size_prefix(data)
        conn.outq.append(framed)
        if threading.current_thread() is self._thread:
            self._flush(conn)
        else:
            self._pending_tcp.append(conn)
            self._wake()

    # -- the loop
    def _run(self) -> None:
        while not self._stop:
            try:
                events = self._sel.select(timeout=0.5)
            except (OSError, ValueError) as exc:  # a closed fd slipped in
                log.debug("select: %s", exc)
                events = []
            for key, mask in events:
                try:
                    what = key.data
                    if what == "udp":
                        self._read_udp()
                    elif what == "listen":
                        self._accept()
                    elif what == "wake":
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            pass
                    else:
                        conn: _TcpConn = what
                        if mask & selectors.EVENT_READ:
                            self._read_tcp(conn)
                        if mask & selectors.EVENT_WRITE and not conn.closed:
                            self._flush(conn)
                except Exception:  # noqa: BLE001 - the network thread must never die
                    log.exception("network thread error")
            while self._pending_tcp:
                conn = self._pending_tcp.popleft()
                try:
                    self._flush(conn)
                except Exception:  # noqa: BLE001
                    log.exception("tcp flush error")

    def _allowed(self, host: str) -> bool:
        ok = self._allow_cache.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host.split("%")[0])
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                ok = ip.is_loopback or any(ip in n for n in self._allow) if self._allow else True
            except ValueError:
                ok = False
            if len(self._allow_cache) > 4096:
                self._allow_cache.clear()
            self._allow_cache[host] = ok
        return ok

    def _bucket(self, key: str) -> TokenBucket:
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) > 4096:
                self._buckets.clear()
            b = self._buckets[key] = TokenBucket(self.client_rate, self.burst)
        return b

    def _read_udp(self) -> None:
        for _ in range(512):  # then let the other sockets have a turn
            try:
                data, addr = self.udp.recvfrom(self.max_packet + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on Linux
                log.debug("udp recv: %s", exc)
                continue
            self.stats.packets += 1
            host = addr[0]
            if not self._allowed(host):
                self.stats.denied += 1
                continue
            if len(data) > self.max_packet:
                self.stats.oversized += 1
                continue
            peer = Peer("udp", addr[:2], self)
            self._packet(peer, data, self._bucket(host))

    def _packet(self, peer: Peer, data: bytes, bucket: TokenBucket) -> None:
        now = time.monotonic()
        try:
            msgs = parse_packet(data)
        except (OscParseError, struct.error, ValueError, OverflowError) as exc:
            self.stats.malformed += 1
            log.debug("malformed packet from %r: %s", peer, exc)
            return
        if not bucket.take(max(1, len(msgs)), now):
            self.stats.rate_limited += 1
            return
        if peer.kind == "udp":
            peers = self.stats.udp_peers
            if len(peers) > 4096:  # bounded whatever the senders do
                for k in [k for k, t in peers.items() if now - t > 30.0] or list(peers)[:2048]:
                    del peers[k]
            peers[peer.addr] = now
        for m in msgs:
            self.stats.messages += 1
            try:
                self.handler(peer, m)
            except Exception as exc:  # noqa: BLE001 - never let a client kill the thread
                self.stats.handler_errors += 1
                log.exception("handler failed for %s", m.address)
                peer.send("/fail", [m.address, f"internal error: {type(exc).__name__}"])

    # -- TCP
    def _accept(self) -> None:
        for _ in range(64):
            try:
                sock, addr = self.tcp.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept: %s", exc)
                return
            if not self._allowed(addr[0]):
                self.stats.denied += 1
                sock.close()
                continue
            if len(self._conns) >= self.max_tcp_clients:
                self.stats.tcp_refused += 1
                log.warning("refusing TCP connection from %s: %d connections open", addr[0], len(self._conns))
                sock.close()
                continue
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = _TcpConn(sock, addr[:2], TokenBucket(self.client_rate, self.burst))
            conn.peer = Peer("tcp", addr[:2], self, conn)
            self._conns[sock] = conn
            self.stats.tcp_connections += 1
            self._sel.register(sock, selectors.EVENT_READ, conn)
            log.info("TCP client %s:%s connected", addr[0], addr[1])

    def _close(self, conn: _TcpConn) -> None:
        if conn.closed:
            return
        conn.closed = True
        self._conns.pop(conn.sock, None)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        if self.on_disconnect is not None and conn.peer is not None:
            try:
                self.on_disconnect(conn.peer)
            except Exception:  # noqa: BLE001
                log.exception("on_disconnect")
        log.info("TCP client %s:%s disconnected", conn.addr[0], conn.addr[1])

    on_disconnect: Optional[Callable[[Peer], None]] = None

    def _read_tcp(self, conn: _TcpConn) -> None:
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        if not chunk:
            self._close(conn)
            return
        buf = conn.inbuf
        buf += chunk
        if conn.framing is None:
            first = buf[0]
            conn.framing = "slip" if first in (SLIP_END, ord("/"), ord("#")) else "size"
        if conn.framing == "size":
            while len(buf) >= 4:
                size = struct.unpack_from(">i", buf, 0)[0]
                if size <= 0 or size > self.max_packet:
                    self.stats.oversized += 1
                    log.info("TCP %s: frame size %d out of bounds; closing", conn.addr[0], size)
                    self._close(conn)
                    return
                if len(buf) < 4 + size:
                    break
                pkt = bytes(buf[4 : 4 + size])
                del buf[: 4 + size]
                self.stats.packets += 1
                self._packet(conn.peer, pkt, conn.bucket)
                if conn.closed:
                    return
        else:
            while True:
                end = buf.find(b"\xc0")
                if end < 0:
                    if len(buf) > 2 * self.max_packet + 2:
                        self.stats.oversized += 1
                        conn.discarding = True
                        buf.clear()
                    break
                frame = bytes(buf[:end])
                del buf[: end + 1]
                if conn.discarding:
                    conn.discarding = False
                    continue
                if not frame:
                    continue
                self.stats.packets += 1
                try:
                    pkt = slip_decode(frame)
                except OscParseError:
                    self.stats.malformed += 1
                    continue
                if len(pkt) > self.max_packet:
                    self.stats.oversized += 1
                    continue
                self._packet(conn.peer, pkt, conn.bucket)
                if conn.closed:
                    return

    def _flush(self, conn: _TcpConn) -> None:
        if conn.closed:
            return
        while conn.outq:
            try:
                conn.outbuf += conn.outq.popleft()
            except IndexError:
                break
        if len(conn.outbuf) > _TCP_OUT_LIMIT:
            log.warning("TCP client %s is not reading its replies; closing", conn.addr[0])
            self._close(conn)
            return
        if conn.outbuf:
            try:
                n = conn.sock.send(conn.outbuf)
                del conn.outbuf[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._close(conn)
                return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        try:
            self._sel.modify(conn.sock, want, conn)
        except (KeyError, ValueError, OSError):
            pass
