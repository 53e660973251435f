"""Hostile input: random bytes, truncated packets, wrong type tags, NaN, huge blobs, floods.
The daemon must keep answering /status and keep sounding."""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest

from aedaemon.client import Client
from aedaemon.oscwire import OscParseError, encode_bundle, encode_message, parse_packet, size_prefix, slip_encode
from daemon_harness import Daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, models_dir):
    d = Daemon(tmp_path_factory.mktemp("fuzz"), models_dir, "--fresh")
    yield d
    assert d.alive(), d.stderr()
    assert d.terminate() == 0


def _samples(rng: random.Random) -> list[bytes]:
    good = [
        encode_message("/latent/0", [0.7]),
        encode_message("/chroma", ["C#"]),
        encode_bundle(1, [encode_message("/gain", [0.9]), encode_bundle(1, [encode_message("/mute/1", [0])])]),
        encode_message("/latent", [0.1] * 8),
    ]
    out = []
    for _ in range(400):
        out.append(bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200))))
    for g in good:
        for cut in range(1, len(g)):
            out.append(g[:cut])  # every truncation
        for _ in range(50):  # bit flips
            b = bytearray(g)
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
            out.append(bytes(b))
    out += [
        b"/gain\0\0\0,q\0\0\0\0\0\0",  # unknown type tag
        b"/gain\0\0\0,f\0\0",  # missing float
        b"/gain\0\0\0,ff\0\0\0\0\0\0\0\0\0\0",
        b"/gain\0\0\0,b\0\0\x7f\xff\xff\xff",  # blob size past the end
        b"/gain\0\0\0,[[[\0" + b"\0" * 8,  # unbalanced arrays
        b"#bundle\0" + b"\0" * 8 + struct.pack(">i", 0x7FFFFFF0) + b"/x\0\0",  # element size lies
        b"#bundle\0\0\0\0\0",
        b"\xff" * 64,
        b"",
        b"/" + b"a" * 3000,  # unterminated address
    ]
    nest = encode_message("/gain", [0.5])
    for _ in range(20):  # too deeply nested
        nest = encode_bundle(1, [nest])
    out.append(nest)
    return out


def test_parser_never_raises_anything_but_parse_errors():
    rng = random.Random(1)
    for pkt in _samples(rng):
        try:
            parse_packet(pkt)
        except OscParseError:
            pass


def test_garbage_over_udp_and_tcp_leaves_daemon_answering(daemon):
    rng = random.Random(2)
    pkts = _samples(rng)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for pkt in pkts:
        u.sendto(pkt, ("127.0.0.1", daemon.port))
    # TCP: garbage in both framings; the daemon may close the connection, never crash
    for framing in ("size", "slip"):
        for chunk in range(5):
            try:
                with socket.create_connection(("127.0.0.1", daemon.port), timeout=2) as s:
                    for pkt in pkts[chunk * 100:(chunk + 1) * 100]:
                        s.sendall(size_prefix(pkt) if framing == "size" else slip_encode(pkt))
                    s.sendall(bytes(rng.getrandbits(8) for _ in range(5000)))
            except OSError:
                pass
    with Client(port=daemon.port) as c:
        st = c.status()
        assert st["dropped_packets"] > 300
        c.gain(1.0)
        c.play()
        c.sync()
        time.sleep(0.3)
        assert c.meter()[0] > -60.0
    assert daemon.alive()


def test_nan_inf_wrong_types_are_refused(daemon):
    with Client(port=daemon.port) as c:
        before = c.get("/latent")
        for args in ([float("nan")], [float("inf")], [float("-inf")], ["x"], [b"\x00" * 10], [None], [[1, 2]]):
            c._send("/latent/0", args)
            m = c.wait_for(lambda m: m.address == "/fail")
            assert m.args[0] == "/latent/0"
        c._send("/latent", [float("nan")] * 8)
        assert c.wait_for(lambda m: m.address == "/fail").args[0] == "/latent"
        assert c.get("/latent") == before


def test_huge_blobs(daemon):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    with Client(port=daemon.port) as c:
        dropped = c.status()["dropped_packets"]
        # over max_packet (65507 is also the UDP limit): TCP frame bigger than max_packet closes the connection
        with socket.create_connection(("127.0.0.1", daemon.port), timeout=2) as s:
            s.sendall(struct.pack(">i", 10_000_000))
            s.settimeout(2)
            assert s.recv(10) == b""  # closed by the daemon
        # a blob that fits is parsed and refused as a wrong type
        c._send("/gain", [b"\x01" * 60000])
        m = c.wait_for(lambda m: m.address == "/fail")
        assert "blob" in m.args[1]
        assert c.status()["dropped_packets"] == dropped + 1


def test_flood_keeps_sounding(daemon):
    """5,000 messages/s for 2 s (latent automation), then the daemon answers and sounds."""
    with Client(port=daemon.port) as c:
        c.reset()
        c.gain(1.0)
        c.play()
        c.sync()
        before = c.status()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        msgs = [encode_message(f"/latent/{i % 8}", [0.2 + 0.6 * ((i * 37) % 100) / 100]) for i in range(1000)]
        t0 = time.monotonic()
        sent = 0
        while time.monotonic() - t0 < 2.0:
            for m in msgs[:50]:
                u.sendto(m, ("127.0.0.1", daemon.port))
            sent += 50
            target = t0 + sent / 5000.0
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        st = c.status()
        assert st["playing"] == 1
        time.sleep(0.2)
        assert c.meter()[0] > -60.0
        # report; the hard 0-underflow goal is measured by benchmarks/bench_daemon.py
        print(f"flood: sent {sent}, underflows {st['underflows'] - before['underflows']}, cpu_load {st['cpu_load']}")
    assert daemon.alive()
    # the renderer kept up (device-reported JACK xruns are the dummy clock's own; see
    # docs/daemon.md). It renders just in time, 3 ms ahead; on a machine other work also loads
    # (seen: a qemu userland on the other core) an underrun widens that margin (logged) — at
    # most twice in this 2 s flood, i.e. it settles; the 0-underflow goal is bench_daemon's
    import re

    log = daemon.stderr()
    assert log.count("ring underrun:") <= 2, log[-2000:]
    assert all(int(n) <= 2 for n in re.findall(r"(\d+) ring underruns", log)), log[-2000:]
