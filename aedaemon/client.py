"""Python client for aedaemon: a method for every address of docs/protocol.md.

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

Requests (/status, /get, /preset/save, …) wait for their reply and raise `Refused` on /fail,
`TimeoutError` when nothing comes back within `timeout` seconds. Setters send and return at
once (in the async client they return an awaitable that is already done): the daemon's /fail
for a refused setter (``c.gain(5)``: gain 5 is out of range 0..2) waits until the next
`sync()`, which raises `Refused` listing every refusal of the messages sent before it.

Strict mode, ``Client(..., strict=True)`` (or ``AsyncClient``): every setter and bundle waits
for the daemon's verdict (a /sync round trip: about one audio block) and raises `Refused` at
once; a latent setter also reads the stored value back and raises `Clamped` when the daemon
clamped it to the model's control range. Meant for scripts, tests and setting up a sound, not
for streaming a fader at 100 messages a second. `send_raw` never waits.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import itertools
import math
import socket
import struct
import threading
import time
from typing import Any, Awaitable, Callable, ContextManager, Iterable, Iterator, Optional, Sequence

from .errors import AedaemonError
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
    "late_bundles", "dropped_packets", "clients", "uptime", "midi_messages", "audio", "failed_hops",
)  # fmt: skip

Callback = Callable[[str, list], None]

# protocol.REPLY_LIMIT and REPLY_SLACK: a /preset/list or /model/list reply longer than
# 8192 - 128 bytes is a part of a split list, which an empty reply of the same address closes
_REPLY_LIMIT, _REPLY_SLACK = 8192, 128


def _is_part(address: str, names: list) -> bool:
    try:
        return len(encode_message(address, list(names))) > _REPLY_LIMIT - _REPLY_SLACK
    except (TypeError, struct.error):
        return False


def _identity(args: list) -> Any:
    return args


def _fail_args(m: Parsed) -> tuple[str, str]:
    """(address, reason) of a /fail reply."""
    return (str(m.args[0]) if m.args else "", str(m.args[1]) if len(m.args) > 1 else "")


class Refused(AedaemonError):
    """The daemon refused one or more messages with /fail ADDRESS REASON; a refused message
    changes nothing.

    `address` and `reason` are the first refusal's; `failures` lists every (address, reason)
    pair, more than one when sync() reports several setters.
    """

    def __init__(self, address: str, reason: str, failures: Sequence[tuple[str, str]] = ()) -> None:
        self.address = address
        self.reason = reason
        self.failures: tuple[tuple[str, str], ...] = tuple(failures) or ((address, reason),)
        listed = "; ".join(f"{a}: {r}" for a, r in self.failures)
        super().__init__(listed if len(self.failures) == 1 else f"{len(self.failures)} messages refused: {listed}")

    @classmethod
    def from_replies(cls, replies: Sequence[Parsed]) -> "Refused":
        failures = [_fail_args(m) for m in replies]
        return cls(*failures[0], failures)


OscFailure = Refused  # the name before Refused (the same class): `except OscFailure` still works


class Clamped(AedaemonError, ValueError):
    """Strict mode: a latent value lay outside the model's control range and the daemon clamped it.

    Unlike a refusal the change happened, at the clamped value. `requested` and `applied` are
    the values sent and stored for every unit of the message sent to `address`.
    """

    def __init__(self, address: str, requested: Sequence[float], applied: Sequence[float]) -> None:
        self.address = address
        self.requested = list(requested)
        self.applied = list(applied)
        moved = ", ".join(
            f"{_unit_address(address, k)} {want:g} -> {got:g}"
            for k, (want, got) in enumerate(zip(requested, applied)) if not _stored_as_sent(want, got)
        )
        super().__init__(f"outside the model's control range, clamped by the daemon: {moved}")


def _unit_address(address: str, k: int) -> str:
    """The address of unit k of a latent message (/latent sets every unit, /latent/i one)."""
    return f"/latent/{k}" if address == "/latent" else address


def _stored_as_sent(sent: float, stored: float) -> bool:
    """Whether the daemon stored `sent` (it travels as float32) rather than a clamped value."""
    as_float32 = struct.unpack(">f", struct.pack(">f", sent))[0]
    return math.isclose(as_float32, float(stored), rel_tol=1e-6, abs_tol=1e-9)


def _check_clamped(address: str, sent: Sequence[float], stored: Sequence[float]) -> None:
    if not all(_stored_as_sent(v, s) for v, s in zip(sent, stored)):
        raise Clamped(address, sent, stored)


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


Answer = tuple[Parsed, list[Parsed]]  # a request's reply (or its /fail), and the refusals sync() reports


class _Inbox:
    """Messages received and not yet claimed, oldest first (bounded: the oldest drop off).

    Not thread-safe by itself: the blocking client holds `lock` (its Condition) around every
    call but `awaiting`, which takes it.
    """

    def __init__(self, lock: ContextManager = contextlib.nullcontext(), maxlen: int = 4096) -> None:
        self._lock = lock
        self._messages: collections.deque[Parsed] = collections.deque(maxlen=maxlen)
        self._awaited: collections.Counter[str] = collections.Counter()  # requests in flight

    def add(self, messages: Iterable[Parsed]) -> None:
        self._messages.extend(messages)

    def drain(self) -> list[Parsed]:
        out = list(self._messages)
        self._messages.clear()
        return out

    @contextlib.contextmanager
    def awaiting(self, address: str) -> Iterator[None]:
        """While a request to `address` is in flight, a /fail for it is its own, not sync()'s."""
        with self._lock:
            self._awaited[address] += 1
        try:
            yield
        finally:
            with self._lock:
                self._awaited[address] -= 1

    def take(self, pred: Callable[[Parsed], bool], *, with_failures: bool = False) -> Optional[Answer]:
        """Remove and return the first message for which pred holds (None if there is none yet).

        with_failures: also remove and return the /fail replies that arrived before it and that
        no request in flight waits for.
        """
        for i, m in enumerate(self._messages):
            if pred(m):
                kept: list[Parsed] = []
                failures: list[Parsed] = []
                for earlier in itertools.islice(self._messages, i):
                    (failures if with_failures and self._unclaimed_failure(earlier) else kept).append(earlier)
                kept.extend(itertools.islice(self._messages, i + 1, None))
                self._messages = collections.deque(kept, maxlen=self._messages.maxlen)
                return m, failures
        return None

    def _unclaimed_failure(self, m: Parsed) -> bool:
        return m.address == "/fail" and self._awaited[_fail_args(m)[0]] <= 0


def _answer(address: str, args: Sequence) -> Callable[[_Inbox], Optional[Answer]]:
    """Finds a request's answer in the inbox: its reply or its /fail; for /sync also every /fail
    that arrived before /synced, i.e. the refusals of messages sent before the sync."""
    match, fail = _expect(address, args), _is_fail(address)
    return lambda inbox: inbox.take(lambda m: match(m) or fail(m), with_failures=address == "/sync")


def _outcome(answer: Answer, post: Callable[[list], Any]) -> Any:
    """The request's result, or Refused listing the refusals it collected and its own /fail."""
    reply, failures = answer
    if reply.address == "/fail":
        failures = [*failures, reply]
    if failures:
        raise Refused.from_replies(failures)
    return post(reply.args)


class _Sent:
    """What async setters return: already sent; awaiting it is a no-op."""

    __slots__ = ()

    def __await__(self):
        if False:  # pragma: no cover - makes this a generator
            yield
        return None


class _Addresses:
    """One method per address. Subclasses provide _send(address, args) and
    _request(address, args, post) (post: turns the reply's arguments into the result), and may
    override _send_latent to check what the daemon made of a latent value."""

    def _send(self, address: str, args: Sequence = ()) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _request(self, address: str, args: Sequence = (), post: Callable[[list], Any] = _identity) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _send_latent(self, address: str, values: list[float]) -> Any:
        return self._send(address, values)

    def message(self, address: str, *args: Any):
        """Any address with its arguments, e.g. a pattern: message("/mute/*", 1)."""
        return self._send(address, args)

    # -- sound parameters
    def latent(self, index_or_values: int | Iterable[float], value: Optional[float] = None):
        """latent(i, v) → /latent/i v;  latent([v0, v1, ...]) → /latent v0 v1 ...

        The daemon clamps latent values to the model's control range instead of refusing them
        (a fader pushed past its end stays at the end), and the protocol does not report that
        range, so the client sends what it is given. In strict mode it then reads the stored
        value back (/get) and raises `Clamped` if the daemon stored another one; the change
        has happened, at the clamped value. (Not inside a bundle, which may apply later; and
        another controller moving that unit at the same instant would look like a clamp.)
        """
        if value is None:
            return self._send_latent("/latent", [float(v) for v in index_or_values])  # type: ignore[union-attr]
        return self._send_latent(f"/latent/{int(index_or_values)}", [float(value)])  # type: ignore[arg-type]

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

    def tune(self, a4_hz: float):
        """The A4 reference every played pitch is relative to (400..480 Hz, default 440)."""
        return self._send("/tune", [float(a4_hz)])

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
        """Returns (the token) once everything sent before has been applied.

        Raises `Refused` listing every /fail that arrived before /synced, i.e. the refusals of
        messages sent before this sync (setters do not wait for their verdict). Those /fail
        replies are consumed: a later sync() or drain() does not report them again. A /fail
        that a request in flight (e.g. on another asyncio task) is waiting for is left to it.
        """
        self._sync_token = (getattr(self, "_sync_token", 0) + 1) & 0x7FFFFFFF
        return self._request("/sync", [self._sync_token if token is None else int(token)], lambda a: a[0])

    def meter(self):
        return self._request("/meter", [], lambda a: (a[0], a[1]))

    def midi_learn(self, address: str):
        return self._request("/midi/learn", [address], lambda a: a[1])

    def quit(self):
        return self._request("/quit", [], lambda a: None)


class _Connection(_Addresses):
    """What both clients share: where the daemon is, the inbox of unclaimed messages, the user
    callback, strict mode, and that setters and bundles go out through `_post`."""

    def __init__(self, host: str, port: int, timeout: float, callback: Optional[Callback], strict: bool,
                 lock: ContextManager) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.callback = callback
        self.strict = strict
        self._lock = lock
        self._inbox = _Inbox(lock)

    def send_raw(self, packet: bytes) -> None:  # pragma: no cover
        raise NotImplementedError

    def _post(self, packet: bytes) -> Any:  # pragma: no cover
        """Send a setter's or a bundle's packet; in strict mode wait for the daemon's verdict."""
        raise NotImplementedError

    def _store(self, messages: list[Parsed]) -> None:  # pragma: no cover
        """Put received messages in the inbox and wake whoever waits for a reply."""
        raise NotImplementedError

    def _send(self, address: str, args: Sequence = ()) -> Any:
        return self._post(encode_message(address, list(args)))

    def _deliver(self, data: bytes) -> None:
        """A packet from the daemon: its messages go to the inbox, then to the callback."""
        try:
            msgs = parse_packet(data)
        except (OscParseError, struct.error, ValueError):
            return
        self._store(msgs)
        callback = self.callback
        if callback is not None:
            for m in msgs:
                try:
                    callback(m.address, m.args)
                except Exception:  # noqa: BLE001 - a user callback must not kill the receiver
                    pass

    def drain(self) -> list[Parsed]:
        """Every message received and not claimed by a request (echoes, /meter, /fail replies
        no sync() has reported yet), oldest first; the inbox is then empty."""
        with self._lock:
            return self._inbox.drain()

    def _no_reply(self, what: str) -> TimeoutError:
        return TimeoutError(f"no reply to {what} from {self.host}:{self.port}")

    # -- subscription
    def notify(self, on: bool = True, callback: Optional[Callback] = None):
        """Subscribe to state changes and /meter; callback(address, args) runs on the receive
        thread (on the event loop for AsyncClient)."""
        if callback is not None:
            self.callback = callback
        return self._request("/notify", [1 if on else 0], lambda a: None)

    # -- timetagged sequencing
    def bundle(self, at: Optional[float] = None) -> "Bundle":
        """Collect messages into one bundle, sent on leaving the `with` block (or .send()).
        at: a time.time() instant (None = now). In strict mode sending waits for the verdict on
        its messages (checked on arrival, not at `at`); with AsyncClient use `async with`."""
        return Bundle(self._post, at)


class Client(_Connection):
    """Blocking client over UDP (default) or TCP (OSC 1.0 size-prefixed frames).

    strict: every setter and bundle waits for the daemon's verdict and raises `Refused` (or
    `Clamped` for a latent value outside the control range); see the module docstring.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *, tcp: bool = False, timeout: float = 2.0,
                 callback: Optional[Callback] = None, strict: bool = False) -> None:
        self._cond = threading.Condition()
        super().__init__(host, port, timeout, callback, strict, self._cond)
        self.tcp = tcp
        self._closed = False
        self.sock = self._open_socket()
        self._thread = threading.Thread(target=self._receive, name="aedaemon-client", daemon=True)
        self._thread.start()

    def _open_socket(self) -> socket.socket:
        if self.tcp:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            local = self.host in ("127.0.0.1", "::1", "localhost")
            sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0) if local else ("", 0))
        sock.settimeout(0.2)  # the receive thread checks for close() this often
        return sock

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
        """Send a packet as it is (never waits, even in strict mode)."""
        if self.tcp:
            self.sock.sendall(size_prefix(packet))
        else:
            self.sock.sendto(packet, (self.host, self.port))

    def _post(self, packet: bytes) -> None:
        self.send_raw(packet)
        if self.strict:
            self.sync()

    def _send_latent(self, address: str, values: list[float]) -> None:
        self._send(address, values)
        if self.strict:
            _check_clamped(address, values, self.get(address))

    def _request(self, address: str, args: Sequence = (), post: Callable[[list], Any] = _identity) -> Any:
        with self._inbox.awaiting(address):
            self.send_raw(encode_message(address, list(args)))
            answer = self._wait(_answer(address, args), self.timeout, address)
        return _outcome(answer, post)

    def _request_list(self, address: str) -> list:
        """A listing, put together again when the daemon split it (docs/protocol.md)."""
        with self._inbox.awaiting(address):
            self.send_raw(encode_message(address, []))
            names = _outcome(self._wait(_answer(address, ()), self.timeout, address), list)
            if _is_part(address, names):  # split: the parts follow, then an empty reply
                while part := list(self.wait_for(lambda m: m.address == address, what=address).args):
                    names += part
        return names

    def preset_list(self) -> list:
        return self._request_list("/preset/list")

    def model_list(self) -> list:
        return self._request_list("/model/list")

    def _wait(self, take: Callable[[_Inbox], Optional[Answer]], timeout: Optional[float], what: str) -> Answer:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        with self._cond:
            while (got := take(self._inbox)) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._no_reply(what)
                self._cond.wait(left)
            return got

    def wait_for(self, pred: Callable[[Parsed], bool], timeout: Optional[float] = None, what: str = "reply") -> Parsed:
        """The first received message (oldest first) for which pred is true; removed from the inbox."""
        return self._wait(lambda inbox: inbox.take(pred), timeout, what)[0]

    def _store(self, messages: list[Parsed]) -> None:
        with self._cond:
            self._inbox.add(messages)
            self._cond.notify_all()

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

    def encode(self) -> bytes:
        tt = IMMEDIATELY if self.at is None else ntp_from_unix(self.at)
        return encode_bundle(tt, self.messages)

    def send(self) -> Any:
        """Send the bundle; with a strict AsyncClient, returns the verdict to await."""
        return self._sender(self.encode())

    def __enter__(self) -> "Bundle":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.send()

    async def __aenter__(self) -> "Bundle":
        return self

    async def __aexit__(self, exc_type, *exc) -> None:
        """`async with c.bundle() as b:` sends and, for a strict AsyncClient, awaits the verdict."""
        if exc_type is None:
            sent = self.send()
            if inspect.isawaitable(sent):
                await sent


class _AsyncProto(asyncio.DatagramProtocol):
    def __init__(self, owner: "AsyncClient") -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        self.owner._deliver(data)

    def error_received(self, exc) -> None:  # e.g. ICMP port unreachable: the daemon is down
        pass


class AsyncClient(_Connection):
    """asyncio client over UDP: `async with AsyncClient(port=9000) as c: await c.status()`.

    strict: setters return a coroutine that waits for the daemon's verdict and raises `Refused`
    (or `Clamped`): await every setter then (the message is sent at once either way).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9000, *, timeout: float = 2.0,
                 callback: Optional[Callback] = None, strict: bool = False) -> None:
        super().__init__(host, port, timeout, callback, strict, contextlib.nullcontext())
        self.transport: Optional[asyncio.DatagramTransport] = None
        self._arrived = asyncio.Event()  # replaced (after being set) whenever messages arrive

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
        """Send a packet as it is (never waits, even in strict mode)."""
        assert self.transport is not None, "call connect() (or use `async with`) first"
        self.transport.sendto(packet)

    def _post(self, packet: bytes) -> Awaitable:
        self.send_raw(packet)
        return self.sync() if self.strict else _Sent()

    def _send_latent(self, address: str, values: list[float]) -> Awaitable:
        sent = self._send(address, values)
        if not self.strict:
            return sent

        async def verify() -> None:
            await sent
            _check_clamped(address, values, await self.get(address))

        return verify()

    def _request(self, address: str, args: Sequence = (), post: Callable[[list], Any] = _identity):
        async def go() -> Any:
            with self._inbox.awaiting(address):
                self.send_raw(encode_message(address, list(args)))
                answer = await self._wait(_answer(address, args), None, address)
            return _outcome(answer, post)

        return go()

    def _request_list(self, address: str):
        async def go() -> list:
            with self._inbox.awaiting(address):
                self.send_raw(encode_message(address, []))
                names = _outcome(await self._wait(_answer(address, ()), None, address), list)
                if _is_part(address, names):  # split: the parts follow, then an empty reply
                    while part := list((await self.wait_for(lambda m: m.address == address, what=address)).args):
                        names += part
            return names

        return go()

    def preset_list(self):
        return self._request_list("/preset/list")

    def model_list(self):
        return self._request_list("/model/list")

    async def _wait(self, take: Callable[[_Inbox], Optional[Answer]], timeout: Optional[float], what: str) -> Answer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.timeout if timeout is None else timeout)
        while (got := take(self._inbox)) is None:
            left = deadline - loop.time()
            if left <= 0:
                raise self._no_reply(what)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return got

    async def wait_for(self, pred: Callable[[Parsed], bool], timeout: Optional[float] = None, what: str = "reply") -> Parsed:
        """The first received message (oldest first) for which pred is true; removed from the inbox."""
        return (await self._wait(lambda inbox: inbox.take(pred), timeout, what))[0]

    def _store(self, messages: list[Parsed]) -> None:
        self._inbox.add(messages)
        arrived, self._arrived = self._arrived, asyncio.Event()
        arrived.set()
