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
import errno
import ipaddress
import logging
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

from .logutil import RateLimitedLog
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

# Linux socket options the socket module may not name
_SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)  # ancillary counter of datagrams the kernel dropped
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # ICMP errors of unconnected sends, with the address
_IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
_MSG_ERRQUEUE = getattr(socket, "MSG_ERRQUEUE", 0x2000)
_UNREACHABLE = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN)


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
        self.opened = time.monotonic()
        self.partial_since: Optional[float] = None  # when the incomplete packet in inbuf began
        self.had_packet = False  # a complete packet has arrived


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
    tcp_timeouts: int = 0
    kernel_drops: int = 0  # datagrams the kernel dropped (receive buffer full): SO_RXQ_OVFL
    own: int = 0  # datagrams from the daemon's own address (never answered)
    own_sends: int = 0  # replies addressed to the daemon's own address (never sent)
    unreachable: int = 0  # ICMP errors for datagrams we sent
    udp_peers: dict = field(default_factory=dict)

    @property
    def dropped(self) -> int:
        return (self.malformed + self.denied + self.oversized + self.rate_limited + self.tcp_refused
                + self.kernel_drops + self.own)


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
        tcp_timeout: float = 10.0,
    ) -> None:
        self.handler = handler
        self.listen = "127.0.0.1" if listen == "localhost" else listen
        self.max_packet = max_packet
        self.max_tcp_clients = max_tcp_clients
        self.tcp_timeout = tcp_timeout
        self._local_hosts: dict[str, bool] = {}
        self._refused_log = RateLimitedLog(log)
        self._timeout_log = RateLimitedLog(log)
        self._next_sweep = 0.0
        self._errq_pending = False
        self.packet_seq = 0
        # called (on the network thread) with the (host, port) an ICMP error named: a dead subscriber
        self.on_unreachable: Optional[Callable[[Any], None]] = None
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
        for level, opt in ((socket.SOL_SOCKET, _SO_RXQ_OVFL),
                           ((socket.IPPROTO_IPV6, _IPV6_RECVERR) if family == socket.AF_INET6
                            else (socket.IPPROTO_IP, _IP_RECVERR))):
            try:
                self.udp.setsockopt(level, opt, 1)
            except OSError:  # not Linux: no kernel drop count, no dead-subscriber detection
                pass
        self._anc_size = socket.CMSG_SPACE(4)
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

    # -- the daemon's own addresses: never answered, never sent to (no loop with itself)
    def is_local_host(self, host: str) -> bool:
        """True when `host` is an address of this machine (loopback, or an interface's address)."""
        v = self._local_hosts.get(host)
        if v is None:
            try:
                ip = ipaddress.ip_address(host.split("%")[0])
            except ValueError:
                v = False
            else:
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                if ip.is_loopback or ip.is_unspecified:
                    v = True
                else:  # an address this machine can bind is one of its own
                    fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
                    try:
                        with socket.socket(fam, socket.SOCK_DGRAM) as probe:
                            probe.bind((str(ip), 0))
                        v = True
                    except OSError:
                        v = False
            if len(self._local_hosts) > 4096:
                self._local_hosts.clear()
            self._local_hosts[host] = v
        return v

    def is_own(self, addr: Any) -> bool:
        """The daemon's own UDP address: its port on one of this machine's addresses."""
        try:
            return int(addr[1]) == self.port and self.is_local_host(addr[0])
        except (TypeError, ValueError, IndexError):
            return False

    # -- sending (thread-safe)
    def _send_udp(self, data: bytes, addr: Any) -> None:
        if addr[1] == self.port and self.is_own(addr):
            self.stats.own_sends += 1  # a reply to ourselves would come back as a request
            return
        try:
            self.udp.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.stats.send_errors += 1
        except OSError as exc:
            self.stats.send_errors += 1
            if exc.errno in _UNREACHABLE:  # an ICMP error was pending: read it on the network thread
                self._errq_pending = True
                if threading.current_thread() is not self._thread:
                    self._wake()
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
                        if mask & selectors.EVENT_WRITE:  # registered for reading only: EPOLLERR,
                            self._read_errqueue()  # an ICMP error queued (IP_RECVERR)
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
            if self._errq_pending:
                self._errq_pending = False
                self._read_errqueue()
            now = time.monotonic()
            if now >= self._next_sweep:
                self._next_sweep = now + 0.25
                self._sweep_tcp(now)

    def _sweep_tcp(self, now: float) -> None:
        """Close TCP connections that hold a slot without sending: nothing complete within
        tcp_timeout of connecting, or a packet begun and not complete within tcp_timeout
        (slowloris). A connection that has sent a packet may then stay idle for ever (a
        subscriber that only listens)."""
        limit = self.tcp_timeout
        for conn in list(self._conns.values()):
            if conn.partial_since is not None and now - conn.partial_since > limit:
                why = f"a packet begun {now - conn.partial_since:.0f} s ago is still incomplete"
            elif not conn.had_packet and now - conn.opened > limit:
                why = f"no packet within {limit:g} s of connecting"
            else:
                continue
            self.stats.tcp_timeouts += 1
            self._timeout_log(logging.WARNING, "TCP client %s:%s: %s; closing", conn.addr[0], conn.addr[1], why)
            self._close(conn, quiet=True)
    def _allowed(self, host: str) -> bool:
        ok = self._allow_cache.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host.split("%")[0])
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                # loopback always; anything else only when listed (an empty list allows nothing
                # else: a bind that is not loopback never becomes open to all)
                ok = ip.is_loopback or any(ip in n for n in self._allow)
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
                data, anc, _flags, addr = self.udp.recvmsg(self.max_packet + 1, self._anc_size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error for a datagram we sent (IP_RECVERR)
                log.debug("udp recv: %s", exc)
                self._read_errqueue()
                continue
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == _SO_RXQ_OVFL and len(cdata) >= 4:
                    # the socket's drop count so far (receive buffer full)
                    self.stats.kernel_drops = max(self.stats.kernel_drops, struct.unpack("=I", cdata[:4])[0])
            self.stats.packets += 1
            host = addr[0]
            if not self._allowed(host):
                self.stats.denied += 1
                continue
            if addr[1] == self.port and self.is_own(addr):
                self.stats.own += 1  # our own reply come back (a spoofed or looped source)
                continue
            if len(data) > self.max_packet:
                self.stats.oversized += 1
                continue
            peer = Peer("udp", addr[:2], self)
            self._packet(peer, data, self._bucket(host))

    def _read_errqueue(self) -> None:
        """ICMP errors (port or host unreachable) for datagrams we sent: each names the address it
        was sent to (IP_RECVERR), which `on_unreachable` hears about (a subscriber that is gone)."""
        for _ in range(256):
            try:
                _data, anc, _flags, addr = self.udp.recvmsg(64, 512, _MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            err = 0
            for level, kind, cdata in anc:
                if (level, kind) in ((socket.IPPROTO_IP, _IP_RECVERR), (socket.IPPROTO_IPV6, _IPV6_RECVERR)) \
                        and len(cdata) >= 4:
                    err = struct.unpack_from("=I", cdata)[0]
            if err in _UNREACHABLE and addr:
                self.stats.unreachable += 1
                if self.on_unreachable is not None:
                    try:
                        self.on_unreachable(tuple(addr[:2]))
                    except Exception:  # noqa: BLE001
                        log.exception("on_unreachable")

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
        self.packet_seq += 1  # the handler can tell one packet's messages from the next's
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
                self._refused_log(logging.WARNING, "refusing TCP connection from %s: %d connections open "
                                  "(max_tcp_clients)", addr[0], len(self._conns))
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

    def _close(self, conn: _TcpConn, quiet: bool = False) -> None:
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
        if not quiet:
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
        try:
            self._frames(conn, buf)
        finally:
            if not buf and not conn.discarding:
                conn.partial_since = None
            elif conn.partial_since is None:
                conn.partial_since = time.monotonic()

    def _frames(self, conn: _TcpConn, buf: bytearray) -> None:
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
                conn.had_packet = True
                conn.partial_since = None  # the next packet's clock starts with its first byte
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
                conn.partial_since = None
                if conn.discarding:
                    conn.discarding = False
                    continue
                if not frame:
                    continue
                conn.had_packet = True
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
