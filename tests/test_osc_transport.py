"""Transport: UDP, TCP (size-prefixed and SLIP), liblo's oscsend/oscdump as independent peers,
bundles (nested, timetagged on the audio clock, late)."""

from __future__ import annotations

import socket
import subprocess
import time
import wave

import numpy as np
import pytest

from aedaemon.client import Client
from aedaemon.oscwire import (
    encode_bundle,
    encode_message,
    parse_packet,
    size_prefix,
    slip_decode,
    slip_encode,
)


def _recv_tcp_size(sock: socket.socket) -> list:
    head = b""
    while len(head) < 4:
        head += sock.recv(4 - len(head))
    n = int.from_bytes(head, "big")
    body = b""
    while len(body) < n:
        body += sock.recv(n - len(body))
    return parse_packet(body)


def test_tcp_size_prefixed(daemon):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=3) as s:
        s.sendall(size_prefix(encode_message("/status")) + size_prefix(encode_message("/get", ["/gain"])))
        (m,) = _recv_tcp_size(s)
        assert m.address == "/status.reply"
        (m,) = _recv_tcp_size(s)
        assert m.address == "/gain"
        # a frame split across writes
        pkt = size_prefix(encode_message("/version"))
        s.sendall(pkt[:3])
        time.sleep(0.05)
        s.sendall(pkt[3:])
        (m,) = _recv_tcp_size(s)
        assert m.address == "/version.reply"


def test_tcp_slip(daemon):
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=3) as s:
        # a string with END and ESC bytes inside exercises the escaping both ways
        s.sendall(slip_encode(encode_message("/preset/load", ["x\xc0"])) + slip_encode(encode_message("/version")))
        buf = b""
        frames: list = []
        while len(frames) < 2:
            buf += s.recv(4096)
            parts = buf.split(b"\xc0")
            buf = parts[-1]
            frames += [p for p in parts[:-1] if p]
        msgs = [parse_packet(slip_decode(f))[0] for f in frames]
        assert msgs[0].address == "/fail" and msgs[0].args[0] == "/preset/load"
        assert msgs[1].address == "/version.reply"


def test_tcp_client_class(daemon):
    with Client(port=daemon.port, tcp=True) as t:
        assert t.status()["model"] == "synthetic"
        t.gain(0.9)
        assert t.sync() >= 1
        assert t.get("/gain") == pytest.approx([0.9])
        t.gain(1.0)


def test_oscsend_udp_and_tcp(daemon, c):
    subprocess.run(["oscsend", "localhost", str(daemon.port), "/transpose", "f", "5.5"], check=True, timeout=5)
    subprocess.run(["oscsend", f"osc.tcp://localhost:{daemon.port}", "/freq_shift", "i", "4"], check=True, timeout=5)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if c.get("/transpose") == pytest.approx([5.5]) and c.get("/freq_shift") == [4]:
            break
        time.sleep(0.05)
    assert c.get("/transpose") == pytest.approx([5.5])
    assert c.get("/freq_shift") == [4]
    c.transpose(0)
    c.freq_shift(0)


def test_oscdump_receives_echoes(daemon, c):
    # subscribe from a port, free it, and let liblo's oscdump listen there
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.sendto(encode_message("/notify", [1]), ("127.0.0.1", daemon.port))
    s.settimeout(3)
    # the reply, not whatever comes first: a /meter push or a state echo may precede it
    deadline = time.monotonic() + 3
    while not any(m.address == "/done" for m in parse_packet(s.recv(4096))):
        assert time.monotonic() < deadline, "no /done for /notify 1"
    s.close()
    dump = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        subprocess.run(["oscsend", "localhost", str(daemon.port), "/gain", "f", "0.25"], check=True, timeout=5)
        lines = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            line = dump.stdout.readline()
            lines.append(line)
            if any("/gain " in ln for ln in lines) and any("/meter " in ln for ln in lines):
                break
        assert any("/gain f 0.25" in line for line in lines), lines[-5:]
        assert any("/meter ff" in line for line in lines)
    finally:
        dump.terminate()
        dump.wait(3)
        with Client(port=daemon.port) as c2:
            c2.gain(1.0)
        # unsubscribe the dead port (a datagram from that port number)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", port))
        s.sendto(encode_message("/notify", [0]), ("127.0.0.1", daemon.port))
        s.close()


def test_nested_bundle_applies_all(c):
    inner = encode_bundle(1, [encode_message("/scale/1", [2.0]), encode_message("/mute/2", [1])])
    outer = encode_bundle(1, [encode_message("/gain", [0.5]), inner])
    c.send_raw(outer)
    c.sync()
    assert c.get("/gain") == pytest.approx([0.5])
    assert c.get("/scale/1") == pytest.approx([2.0])
    assert c.get("/mute/2") == [1]
    c.send_raw(encode_bundle(1, [encode_message("/gain", [1.0]), encode_message("/scale/1", [1.0]),
                                 encode_message("/mute/2", [0])]))
    c.sync()


def test_future_bundle_waits_for_its_time_and_late_one_is_counted(c):
    late_before = c.status()["late_bundles"]
    with c.bundle(at=time.time() + 0.6) as b:
        b.gain(0.3)
    c.sync()
    assert c.get("/gain") == pytest.approx([1.0])  # not yet
    time.sleep(0.8)
    assert c.get("/gain") == pytest.approx([0.3])
    # a bundle in the past is applied at once and counted
    with c.bundle(at=time.time() - 1.0) as b:
        b.gain(0.6)
    c.sync()
    assert c.get("/gain") == pytest.approx([0.6])
    assert c.status()["late_bundles"] == late_before + 1
    c.gain(1.0)


def test_echo_of_a_future_bundle_arrives_at_its_time(daemon, c):
    """The change is applied on the render thread at its frame: the echo is sent then, which is
    the bundle time minus the output latency (ring fill + block), give or take a frame."""
    arrivals: dict = {}
    with Client(port=daemon.port) as sub:
        sub.notify(True, callback=lambda a, args: arrivals.setdefault((a, round(args[0], 3)), time.time()) if a == "/tilt" else None)
        t0 = time.time() + 0.5
        for k in range(4):
            with c.bundle(at=t0 + 0.25 * k) as b:
                b.tilt(float(k + 1))
        time.sleep(1.6)
        sub.notify(False)
    c.tilt(0.0)
    times = [arrivals[("/tilt", float(k + 1))] for k in range(4)]
    frame = 1024 / 44100
    latency = (256 + 1024 + 256) / 44100
    for k, t in enumerate(times):
        expected = t0 + 0.25 * k
        assert expected - latency - frame - 0.01 <= t <= expected + frame + 0.03, (k, t - expected)
    gaps = np.diff(times)
    assert np.all(np.abs(gaps - 0.25) <= frame + 0.02), gaps


def test_bundled_changes_land_on_the_right_frames(daemon, c):
    """Record: /play at T and /gain 0 at T+0.5 (two bundles). In the WAV (hop-aligned) the
    sound starts and stops 0.5 s = 21.5 hops apart, within one frame."""
    hop = 1024
    c.stop()
    c.gain(1.0)
    c.glide(0.0)
    c.reset()
    c.sync()
    time.sleep(0.2)
    name = c.record_start("frames")
    t = time.time() + 0.4
    with c.bundle(at=t) as b:
        b.play()
    with c.bundle(at=t + 0.5) as b:
        b.gain(0.0)
    time.sleep(1.2)
    assert c.record_stop() == "frames.wav"
    c.stop()
    c.gain(1.0)
    with wave.open(str(daemon.recordings_dir / name)) as w:
        raw = w.readframes(w.getnframes())
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
    x = (b[:, 0].astype(np.int32) | (b[:, 1].astype(np.int32) << 8) | (b[:, 2].astype(np.int8).astype(np.int32) << 16))
    n_hops = len(x) // hop
    level = np.abs(x[: n_hops * hop]).reshape(n_hops, hop).max(axis=1)
    sounding = np.nonzero(level > 0)[0]
    assert len(sounding) > 0
    start, end = sounding[0], sounding[-1]
    # /gain 0 glides to 0 over one frame (the hop it is applied in), then silence
    assert abs((end - start) - 0.5 * 44100 / hop) <= 1.5, (start, end)
