"""The daemon's OSC server: UDP and TCP on one port number, one network thread.

A single selector thread owns the UDP socket, the TCP listener and every TCP connection, so no
handler ever blocks another socket for long and no lock is needed on the sockets. Per packet:
allowlist → size bound → per-client token bucket → parse (aedaemon.oscwire) → the message
handler (given the peer, the address, the arguments and the bundle's timetag). Every drop is
counted; an exception in a handler is logged and answered with /fail, never fatal.

TCP framing (per connection, from its first byte): 0xC0 → OSC 1.1 SLIP; '/' or '#' → SLIP
without the leading END; anything else → OSC 1.0 int32 big-endian size prefix (scsynth, liblo).
"""

from __future__ import annotations

import collections
import ipaddress
import logging
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from .oscwire import (
    SLIP_END,
    OscParseError,
    Parsed,
    encode_message,
    parse_packet,
    size_prefix,
    slip_decode,
    slip_encode,
)

log = logging.getLogger("aedaemon.osc")


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
