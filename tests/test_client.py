"""The Python client against the real daemon: blocking, asyncio, TCP, bundles, callbacks."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aedaemon.client import AsyncClient, Client, OscFailure, Refused
from aedaemon.oscwire import parse_packet
from daemon_harness import Daemon

MELODY = Path(__file__).resolve().parent.parent / "clients" / "python" / "melody.py"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, models_dir):
    d = Daemon(tmp_path_factory.mktemp("client"), models_dir, "--fresh", audio="null")
    yield d
    assert d.terminate() == 0


def test_blocking_requests_and_failures(daemon):
    with Client(port=daemon.port) as c:
        assert c.version()[0] == "aedaemon"
        with pytest.raises(OscFailure) as exc:
            c.preset_load("does_not_exist")
        assert exc.value.address == "/preset/load" and "no preset" in exc.value.reason
        with pytest.raises(TimeoutError):
            Client(port=1, timeout=0.2).status()


def test_every_address_has_a_method():
    from aedaemon.protocol import ADDRESSES

    names = {e.pattern.strip("/").split("/{i}")[0].replace("/", "_") for e in ADDRESSES}
    names = {"latent" if n == "latent" else n for n in names}
    missing = [n for n in names if not hasattr(Client, n)]
    assert missing == []


def test_bundle_encoding_and_refusing_requests(daemon):
    with Client(port=daemon.port) as c:
        b = c.bundle(at=time.time() + 10)
        b.latent(0, 0.5).gain(0.5)
        (m1, m2) = parse_packet(b.encode())
        assert m1.address == "/latent/0" and m2.address == "/gain" and m1.timetag == m2.timetag
        with pytest.raises(TypeError):
            b.status()


def test_subscription_callback(daemon):
    seen = []
    with Client(port=daemon.port) as sub, Client(port=daemon.port) as c:
        sub.notify(True, callback=lambda a, args: seen.append(a))
        c.glide(0.1)
        c.sync()
        time.sleep(0.2)
        sub.notify(False)
        c.glide(0.0)
    assert "/glide" in seen and "/meter" in seen


def test_asyncio_client(daemon):
    async def main():
        got = []
        async with AsyncClient(port=daemon.port) as c:
            st = await c.status()
            assert st["model"] == "synthetic"
            await c.gain(0.4)  # setters return an awaitable that is already done
            c.transpose(2.0)  # ... or need not be awaited
            await c.sync()
            assert await c.get("/gain") == pytest.approx([0.4])
            assert await c.get("/transpose") == pytest.approx([2.0])
            with pytest.raises(OscFailure):
                await c.model_load("nope")
            await c.notify(True, callback=lambda a, args: got.append(a))
            with c.bundle(at=time.time() + 0.2) as b:
                b.gain(1.0).transpose(0.0)
            await asyncio.sleep(0.5)
            await c.notify(False)
            assert await c.get("/gain") == pytest.approx([1.0])
            assert "/gain" in got
            assert await c.preset_list() == []

    asyncio.run(main())


def test_melody_example_plays_with_no_late_bundles(daemon):
    r = subprocess.run([sys.executable, str(MELODY), "--port", str(daemon.port), "--bpm", "900"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "late bundles so far: 0" in r.stdout


def test_melody_example_says_when_no_daemon_answers():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    r = subprocess.run([sys.executable, str(MELODY), "--port", str(port)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == f"melody.py: no reply to /status from 127.0.0.1:{port} (is the daemon running?)"


def test_full_subscriber_list_evicts_the_longest_silent_udp_subscriber(tmp_path, models_dir):
    """UDP has no disconnect: when max_subscribers is reached, the UDP subscriber with the oldest
    sign of life gives way to the newcomer, once it has been silent for subscriber_timeout (no
    renewal, nothing heard); while every subscriber is alive a newcomer is refused."""
    cfg = tmp_path / "aedaemon.toml"
    cfg.write_text("max_subscribers = 2\nsubscriber_timeout = 0.5\n")
    got: dict = {"a": [], "b": [], "c": []}
    with Daemon(tmp_path / "d", models_dir, "--fresh", audio="null", config=cfg) as d:
        with (
            Client(port=d.port) as a, Client(port=d.port) as b, Client(port=d.port) as c,
            Client(port=d.port) as ctl,
        ):
            a.notify(True, callback=lambda addr, args: got["a"].append(addr))
            time.sleep(0.7)
            b.notify(True, callback=lambda addr, args: got["b"].append(addr))
            b.status()  # b was heard from later than a
            c.notify(True, callback=lambda addr, args: got["c"].append(addr))  # full: a (silent) gives way
            with pytest.raises(Refused, match="too many subscribers"):
                ctl.notify(True)  # b and c are alive: refused
            ctl.glide(0.25)
            ctl.sync()
            time.sleep(0.3)
            assert "/glide" in got["b"] and "/glide" in got["c"]
            assert "/glide" not in got["a"]
            assert "gives way" in d.stderr()
