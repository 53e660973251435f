"""The Python client surfaces refusals against the real daemon: sync() raises what was refused
before it, strict mode raises at once (blocking and asyncio), and a strict latent setter
reports a value the daemon clamped to the model's control range (synthetic model: 0..2)."""

from __future__ import annotations

import asyncio

import pytest

from aedaemon.client import AsyncClient, Clamped, Client, OscFailure, Refused
from aedaemon.errors import AedaemonError
from daemon_harness import Daemon


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, models_dir):
    d = Daemon(tmp_path_factory.mktemp("client_refusals"), models_dir, "--fresh", audio="null")
    yield d
    assert d.terminate() == 0


@pytest.fixture()
def strict(daemon):
    with Client(port=daemon.port, timeout=3.0, strict=True) as client:
        yield client


def test_sync_raises_every_refusal_sent_before_it_and_consumes_them(c):
    c.gain(0.5)
    c.sync()
    assert c.gain(5) is None  # a setter does not wait for its verdict
    c.latent(9, 0.5)  # the synthetic model has units 0..7
    with pytest.raises(Refused) as exc:
        c.sync()
    assert [a for a, _ in exc.value.failures] == ["/gain", "/latent/9"]
    assert (exc.value.address, exc.value.reason) == exc.value.failures[0]
    assert "gain 5 is out of range 0..2" in exc.value.reason
    assert str(exc.value).startswith("2 messages refused: /gain: gain 5 is out of range")
    assert isinstance(exc.value, AedaemonError) and OscFailure is Refused  # old `except OscFailure` still works
    assert c.sync() >= 1  # consumed: reported once
    assert not [m for m in c.drain() if m.address == "/fail"]
    assert c.get("/gain") == [0.5]  # a refusal changes nothing


def test_strict_setter_raises_at_once_and_changes_nothing(strict):
    strict.gain(0.75)
    with pytest.raises(Refused) as exc:
        strict.gain(5)
    assert exc.value.address == "/gain" and "out of range 0..2" in exc.value.reason
    assert exc.value.failures == (("/gain", exc.value.reason),)
    assert strict.get("/gain") == [0.75]
    with pytest.raises(Refused, match="unknown address"):
        strict.message("/nope", 1)  # any address, e.g. a pattern such as /mute/*


def test_strict_bundle_raises_for_the_refused_message(strict):
    with pytest.raises(Refused) as exc:
        with strict.bundle() as b:
            b.glide(0.125).transpose(99)
    assert exc.value.address == "/transpose" and "range" in exc.value.reason
    assert strict.get("/glide") == [0.125]  # each message of a bundle is validated on its own


def test_strict_latent_reports_a_clamped_value(strict):
    strict.latent(3, 1.25)  # inside the control range: no complaint
    with pytest.raises(Clamped) as exc:
        strict.latent(3, 99)
    assert isinstance(exc.value, ValueError)
    assert (exc.value.address, exc.value.requested, exc.value.applied) == ("/latent/3", [99.0], [2.0])
    assert "/latent/3 99 -> 2" in str(exc.value)
    assert strict.get("/latent/3") == [2.0]  # clamped, as the protocol documents
    values = [0.5, -1.0, 0.5, 0.5, 5.0, 0.5, 0.5, 0.1]
    with pytest.raises(Clamped, match=r"/latent/1 -1 -> 0, /latent/4 5 -> 2$"):
        strict.latent(values)
    strict.latent([0.5] * 7 + [0.1])  # 0.1 is not a float32: still stored as sent


def test_non_strict_latent_is_clamped_silently(c):
    assert c.latent(3, 99) is None
    assert c.sync() >= 1  # clamping is not a refusal
    assert c.get("/latent/3") == [2.0]


def test_strict_client_without_a_daemon_times_out():
    with Client(port=1, timeout=0.2, strict=True) as c, pytest.raises(TimeoutError, match="/sync"):
        c.gain(0.5)


def test_asyncio_sync_and_strict_mode(daemon):
    async def main() -> None:
        async with AsyncClient(port=daemon.port, timeout=3.0) as c:
            await c.gain(5)  # already done: the refusal waits for sync()
            with pytest.raises(Refused, match="gain 5"):
                await c.sync()
            await c.sync()
        async with AsyncClient(port=daemon.port, timeout=3.0, strict=True) as s:
            await s.gain(0.25)
            with pytest.raises(Refused, match="gain 5"):
                await s.gain(5)
            with pytest.raises(Clamped, match="/latent/0 -3 -> 0"):
                await s.latent(0, -3)
            with pytest.raises(Refused, match="glide"):
                async with s.bundle() as b:
                    b.glide(-1)
            assert await s.get("/gain") == [0.25]

    asyncio.run(main())


def test_asyncio_request_in_flight_keeps_its_own_failure(daemon):
    """sync() reports setters' refusals only: a /fail that a concurrent request waits for is its."""

    async def main() -> list:
        async with AsyncClient(port=daemon.port, timeout=3.0) as c:
            return await asyncio.gather(c.preset_load("no_such_preset"), c.sync(77), return_exceptions=True)

    failed, synced = asyncio.run(main())
    assert isinstance(failed, Refused) and failed.address == "/preset/load"
    assert synced == 77


def test_sync_leaves_the_failure_a_request_in_flight_waits_for():
    """Deterministically, what the asyncio race above can only sometimes show: sync() takes the
    /fail replies before its /synced except the one a request in flight is waiting for."""
    from aedaemon.client import _answer, _Inbox
    from aedaemon.oscwire import Parsed

    inbox = _Inbox()
    inbox.add([Parsed("/fail", ["/preset/load", "no preset 'x'"]), Parsed("/meter", [-90.0, -90.0]),
               Parsed("/fail", ["/gain", "gain 5 is out of range 0..2"]), Parsed("/synced", [7]),
               Parsed("/fail", ["/glide", "sent after the sync"])])
    with inbox.awaiting("/preset/load"):
        synced, failures = _answer("/sync", [7])(inbox)
    assert synced.args == [7] and [m.args[0] for m in failures] == ["/gain"]
    assert [(m.address, m.args[:1]) for m in inbox.drain()] == [
        ("/fail", ["/preset/load"]), ("/meter", [-90.0]), ("/fail", ["/glide"])]
