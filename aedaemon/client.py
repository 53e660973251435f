"""Python client for aedaemon: a method for every address of PROTOCOL.md.

Blocking::

    from aedaemon.client import Client
    with Client(port=9000) as c:                 # UDP; Client(port=9000, tcp=True) for TCP
        c.play()
        c.latent(0, 0.8)                         # /latent/0 0.8   (c.latent([...]) sets all)
        print(c.status())                        # dict: playing, model, sample_rate, ...
        with c.bundle(at=time.time() + 0.5) as b:    # one timetagged bundle, applied together
            b.note(60, 100); b.latent(1, 0.2)
        c.notify(True, callback=lambda address, args: print(address, args))

asyncio::

    async with AsyncClient(port=9000) as c:
        await c.play(); print(await c.status())

Requests (/status, /get, /preset/save, …) wait for their reply and raise `OscFailure` on
/fail, `TimeoutError` when nothing comes back within `timeout` seconds. Setters send and
return at once (in the async client they return an awaitable that is already done).
"""

from __future__ import annotations

import asyncio
import collections
import socket
import struct
import threading
import time
from typing import Any, Callable, Iterable, Optional, Sequence

from .oscwire import (
    IMMEDIATELY,
    OscParseError,
    Parsed,
    encode_bundle,
    encode_message,
    ntp_from_unix,
    parse_packet,
    size_prefix,
)

STATUS_FIELDS = (
    "playing", "model", "sample_rate", "block", "hop", "cpu_load", "underflows",
    "late_bundles", "dropped_packets", "clients", "uptime", "midi_messages",
)  # fmt: skip

Callback = Callable[[str, list], None]


class OscFailure(Exception):
    """The daemon refused a request with /fail <address> <reason>."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"{address}: {reason}")
        self.address = address
        self.reason = reason


def _expect(address: str, args: Sequence) -> Callable[[Parsed], bool]:
    """Which incoming message answers this request."""
    if address == "/status":
        return lambda m: m.address == "/status.reply"
    if address == "/version":
        return lambda m: m.address == "/version.reply"
    if address == "/get":
        return lambda m: m.address == args[0]
    if address in ("/preset/list", "/model/list", "/meter"):
        return lambda m: m.address == address
    if address == "/sync":
        return lambda m: m.address == "/synced" and m.args[:1] == [args[0]]
    return lambda m: m.address == "/done" and m.args[:1] == [address]


def _is_fail(address: str) -> Callable[[Parsed], bool]:
    return lambda m: m.address == "/fail" and m.args[:1] == [address]


class _Sent:
    """What async setters return: already sent; awaiting it is a no-op."""

    __slots__ = ()

    def __await__(self):
        if False:  # pragma: no cover - makes this a generator
            yield
        return None


class _Addresses:
    """One method per address. Subclasses provide _send(address, args) and
    _request(address, args, post) (post: turns the reply's arguments into the result)."""

    def _send(self, address: str, args: Sequence = ()) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _request(self, address: str, args: Sequence = (), post: Callable[[list], Any] = lambda a: a) -> Any:  # pragma: no cover
        raise NotImplementedError

    # -- sound parameters
    def latent(self, index_or_values: int | Iterable[float], value: Optional[float] = None):
        """latent(i, v) → /latent/i v;  latent([v0, v1, ...]) → /latent v0 v1 ..."""
        if value is None:
            return self._send("/latent", [float(v) for v in index_or_values])  # type: ignore[union-attr]
        return self._send(f"/latent/{int(index_or_values)}", [float(value)])  # type: ignore[arg-type]

    def scale(self, index: int, value: float):
        return self._send(f"/scale/{int(index)}", [float(value)])

    def mute(self, index: int, on: bool = True):
        return self._send(f"/mute/{int(index)}", [1 if on else 0])

    def chroma(self, value: int | str | Sequence[float]):
        """0..11, a name ('C#', 'Db', ...) or 12 weights."""
        if isinstance(value, (int, str)):
            return self._send("/chroma", [value])
        return self._send("/chroma", [float(v) for v in value])

    def transpose(self, semitones: float):
        return self._send("/transpose", [float(semitones)])

    def freq_shift(self, bins: int):
        return self._send("/freq_shift", [int(bins)])

    def gain(self, value: float):
        return self._send("/gain", [float(value)])

    def glide(self, seconds: float):
        return self._send("/glide", [float(seconds)])

    def tilt(self, db_per_octave: float):
        return self._send("/tilt", [float(db_per_octave)])

    def note(self, note: int, velocity: Optional[int] = None):
        return self._send("/note", [int(note)] if velocity is None else [int(note), int(velocity)])

    def note_off(self, note: int):
        return self._send("/note_off", [int(note)])

    # -- transport and actions
    def play(self, on: bool = True):
        return self._send("/play", [] if on else [0])

    def stop(self):
        return self._send("/stop")

    def panic(self):
        return self._send("/panic")

    def reset(self):
        return self._send("/reset")

    def zero(self):
        return self._send("/zero")

    def preset_save(self, name: str):
        return self._request("/preset/save", [name], lambda a: a[1])

    def preset_load(self, name: str, morph: Optional[float] = None):
        return self._request("/preset/load", [name] if morph is None else [name, float(morph)], lambda a: a[1])

    def preset_list(self):
        return self._request("/preset/list", [], list)

    def preset_delete(self, name: str):
        return self._request("/preset/delete", [name], lambda a: a[1])

    def model_list(self):
        return self._request("/model/list", [], list)

    def model_load(self, name: str):
        return self._request("/model/load", [name], lambda a: a[1])

    def record_start(self, name: Optional[str] = None):
        return self._request("/record/start", [] if name is None else [name], lambda a: a[1] if len(a) > 1 else None)

    def record_stop(self):
        """Returns the recorded file's name (in the daemon's recordings directory)."""
        return self._request("/record/stop", [], lambda a: a[1])

    # -- queries and session
    def get(self, address: str):
        """Current value(s) of a state address, e.g. get('/chroma') → [4]."""
        return self._request("/get", [address], list)

    def status(self):
        return self._request("/status", [], lambda a: dict(zip(STATUS_FIELDS, a)))

    def version(self):
        return self._request("/version", [], lambda a: (a[0], a[1]))

    def sync(self, token: Optional[int] = None):
        """Returns once everything sent before has been applied."""
        self._sync_token = (getattr(self, "_sync_token", 0) + 1) & 0x7FFFFFFF
        return self._request("/sync", [self._sync_token if token is None else int(token)], lambda a: a[0])

    def meter(self):
        return self._request("/meter", [], lambda a: (a[0], a[1]))

    def midi_learn(self, address: str):
        return self._request("/midi/learn", [address], lambda a: a[1])

    def quit(self):
        return self._request("/quit", [], lambda a: None)


class Client(_Addresses):
    """Blocking client over UDP (default) or TCP (OSC 1.0 size-prefixed frames)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *, tcp: bool = False, timeout: float = 2.0,
                 callback: Optional[Callback] = None) -> None:
        self.host = host
        self.port = port
        self.tcp = tcp
        self.timeout = timeout
        self.callback = callback
        self._cond = threading.Condition()
        self._inbox: collections.deque[Parsed] = collections.deque(maxlen=4096)
        self._closed = False
        if tcp:
            self.sock = socket.create_connection((host, port), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(0.2)
        else:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            self.sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0) if host in ("127.0.0.1", "::1", "localhost") else ("", 0))
            self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._receive, name="aedaemon-client", daemon=True)
        self._thread.start()

    # -- plumbing
    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(timeout=1.0)

    def send_raw(self, packet: bytes) -> None:
        if self.tcp:
            self.sock.sendall(size_prefix(packet))
        else:
            self.sock.sendto(packet, (self.host, self.port))

    def _send(self, address: str, args: Sequence = ()) -> None:
        self.send_raw(encode_message(address, list(args)))

    def _request(self, address: str, args: Sequence = (), post: Callable[[list], Any] = lambda a: a) -> Any:
        match, fail = _expect(address, args), _is_fail(address)
        self._send(address, args)
        m = self.wait_for(lambda m: match(m) or fail(m), self.timeout, what=address)
        if m.address == "/fail" and fail(m):
            raise OscFailure(address, str(m.args[1]) if len(m.args) > 1 else "")
        return post(m.args)

    def wait_for(self, pred: Callable[[Parsed], bool], timeout: Optional[float] = None, what: str = "reply") -> Parsed:
        """The first received message (oldest first) for which pred is true; removed from the inbox."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while True:
                for i, m in enumerate(self._inbox):
                    if pred(m):
                        del self._inbox[i]
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no reply to {what} from {self.host}:{self.port}")
                self._cond.wait(left)

    def drain(self) -> list[Parsed]:
        with self._cond:
            out = list(self._inbox)
            self._inbox.clear()
            return out

    def _deliver(self, data: bytes) -> None:
        try:
            msgs = parse_packet(data)
        except (OscParseError, struct.error, ValueError):
            return
        with self._cond:
            self._inbox.extend(msgs)
            self._cond.notify_all()
        cb = self.callback
        if cb is not None:
            for m in msgs:
                try:
                    cb(m.address, m.args)
                except Exception:  # noqa: BLE001 - a user callback must not kill the receiver
                    pass

    def _receive(self) -> None:
        buf = bytearray()
        while not self._closed:
            try:
                if self.tcp:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                    while len(buf) >= 4:
                        n = struct.unpack_from(">i", buf)[0]
                        if n <= 0 or len(buf) < 4 + n:
                            break
                        pkt = bytes(buf[4 : 4 + n])
                        del buf[: 4 + n]
                        self._deliver(pkt)
                else:
                    data, _ = self.sock.recvfrom(65536)
                    self._deliver(data)
            except socket.timeout:
                continue
            except OSError:
                if self._closed:
                    return
                time.sleep(0.01)

    # -- subscription
    def notify(self, on: bool = True, callback: Optional[Callback] = None):
        """Subscribe to state changes and /meter; callback(address, args) runs on the receive thread."""
        if callback is not None:
            self.callback = callback
        return self._request("/notify", [1 if on else 0], lambda a: None)

    # -- timetagged sequencing
    def bundle(self, at: Optional[float] = None) -> "Bundle":
        """Collect messages into one bundle, sent on leaving the `with` block (or .send()).
        at: a time.time() instant (None = now)."""
        return Bundle(self.send_raw, at)


class Bundle(_Addresses):
    def __init__(self, sender: Callable[[bytes], Any], at: Optional[float]) -> None:
        self._sender = sender
        self.at = at
        self.messages: list[bytes] = []

    def _send(self, address: str, args: Sequence = ()) -> "Bundle":
        self.messages.append(encode_message(address, list(args)))
        return self

    def _request(self, address: str, args: Sequence = (), post=None):
        raise TypeError(f"{address} waits for a reply: send it outside a bundle")

    def message(self, address: str, *args: Any) -> "Bundle":
        return self._send(address, args)

    def encode(self) -> bytes:
        tt = IMMEDIATELY if self.at is None else ntp_from_unix(self.at)
        return encode_bundle(tt, self.messages)

    def send(self) -> Any:
        return self._sender(self.encode())

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.send()


class _AsyncProto(asyncio.DatagramProtocol):
    def __init__(self, owner: "AsyncClient") -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner._deliver(data)

    def error_received(self, exc) -> None:  # e.g. ICMP port unreachable: the daemon is down
        pass


class AsyncClient(_Addresses):
    """asyncio client over UDP: `async with AsyncClient(port=9000) as c: await c.status()`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *, timeout: float = 2.0,
                 callback: Optional[Callback] = None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.callback = callback
        self.transport: Optional[asyncio.DatagramTransport] = None
        self._waiters: list[tuple[Callable[[Parsed], bool], asyncio.Future]] = []
        self._inbox: collections.deque[Parsed] = collections.deque(maxlen=4096)

    async def connect(self) -> "AsyncClient":
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _AsyncProto(self), remote_addr=(self.host, self.port)
        )
        return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def send_raw(self, packet: bytes) -> None:
        assert self.transport is not None, "call connect() (or use `async with`) first"
        self.transport.sendto(packet)

    def _send(self, address: str, args: Sequence = ()) -> _Sent:
        self.send_raw(encode_message(address, list(args)))
        return _Sent()

    def _deliver(self, data: bytes) -> None:
        try:
            msgs = parse_packet(data)
        except (OscParseError, struct.error, ValueError):
            return
        for m in msgs:
            taken = False
            for i, (pred, fut) in enumerate(self._waiters):
                if not fut.done() and pred(m):
                    fut.set_result(m)
                    del self._waiters[i]
                    taken = True
                    break
            if not taken:
                self._inbox.append(m)
            if self.callback is not None:
                try:
                    self.callback(m.address, m.args)
                except Exception:  # noqa: BLE001
                    pass

    async def wait_for(self, pred: Callable[[Parsed], bool], timeout: Optional[float] = None, what: str = "reply") -> Parsed:
        for i, m in enumerate(self._inbox):
            if pred(m):
                del self._inbox[i]
                return m
        fut = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, self.timeout if timeout is None else timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no reply to {what} from {self.host}:{self.port}") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def _request(self, address: str, args: Sequence = (), post: Callable[[list], Any] = lambda a: a):
        match, fail = _expect(address, args), _is_fail(address)

        async def go():
            self._send(address, args)
            m = await self.wait_for(lambda m: match(m) or fail(m), what=address)
            if fail(m):
                raise OscFailure(address, str(m.args[1]) if len(m.args) > 1 else "")
            return post(m.args)

        return go()

    def notify(self, on: bool = True, callback: Optional[Callback] = None):
        if callback is not None:
            self.callback = callback
        return self._request("/notify", [1 if on else 0], lambda a: None)

    def bundle(self, at: Optional[float] = None) -> Bundle:
        return Bundle(self.send_raw, at)
