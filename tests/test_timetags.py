"""Every address that changes the sound or the session honours its timetag on the audio clock
(issue 9, item 5): offline in scores (sample positions in the rendered output), and live
(the real daemon on the jackd dummy server, timetagged bundles over UDP)."""

from __future__ import annotations

import json
import time
import wave

import numpy as np
import pytest

from aedaemon.client import Client
from aedaemon.engine import Engine
from aedaemon.errors import ParameterError, ScoreError
from aedaemon.model import load_bundle
from aedaemon.protocol import OfflineServices, dispatch
from aedaemon.render import apply_settings, parse_score, schedule_score

SR = 44100
HOP = 1024


# ---- offline: scores ------------------------------------------------------------------------


def render_score(bundle, events: list[dict], seconds: float = 1.5) -> np.ndarray:
    engine = Engine(bundle, hop=HOP)
    apply_settings(engine, [("/latent", [0.9, 0.1, 1.5, 0.3, 1.2, 0.7, 0.2, 1.8]), ("/play", [1])])
    schedule_score(engine, parse_score(events))
    return engine.render(int(seconds * SR))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def first_difference(a: np.ndarray, b: np.ndarray) -> int:
    diff = np.flatnonzero(np.abs(a - b) > 1e-7)
    return int(diff[0]) if len(diff) else len(a)


def test_score_panic_cuts_at_its_time_and_keeps_what_follows(bundle):
    out = render_score(bundle, [{"time": 0.5, "address": "/panic"}, {"time": 1.0, "address": "/play"}])
    at = int(0.5 * SR)
    boundary = -(-at // HOP) * HOP  # the first frame boundary at or after its sample
    assert rms(out[at - 2 * HOP : at - HOP]) > 0.01  # sounding until just before 0.5 s
    assert not out[boundary : int(1.0 * SR)].any()  # then a hard cut: exact zeros
    assert rms(out[int(1.1 * SR) : int(1.4 * SR)]) > 0.01  # the /play scheduled after it still plays


def test_score_panic_at_zero_point_five_is_not_silence_from_the_start(bundle):
    out = render_score(bundle, [{"time": 0.5, "address": "/panic"}], seconds=1.0)
    hops = out[: len(out) // HOP * HOP].reshape(-1, HOP)
    loud = [rms(h) > 1e-4 for h in hops]
    last_loud = max(i for i, v in enumerate(loud) if v)
    assert all(loud[2:last_loud])  # after the 30 ms fade-in, sound every hop...
    assert (last_loud + 1) * HOP == -(-int(0.5 * SR) // HOP) * HOP  # ...up to the boundary at 0.5 s


@pytest.mark.parametrize("address, args", [("/reset", []), ("/zero", []), ("/stop", []), ("/panic", []),
                                           ("/latent/2", [0.0]), ("/mute/*", [1])])
def test_score_event_changes_nothing_before_its_time(bundle, address, args):
    base = render_score(bundle, [], seconds=1.2)
    out = render_score(bundle, [{"time": 0.7, "address": address, "args": args}], seconds=1.2)
    at = int(0.7 * SR)
    k = first_difference(base, out)
    assert at - HOP <= k <= at + HOP, f"{address} changed the output at sample {k}, its time is {at}"
    assert rms(out[at + 2 * HOP :] - base[at + 2 * HOP :]) > 1e-3  # and it did change it then


def test_live_panic_drops_scheduled_events_a_timed_one_keeps_them(bundle):
    def run(panic_at):
        engine = Engine(bundle, hop=HOP)
        services = OfflineServices()
        dispatch("/play", [1], engine=engine, services=services, at=int(0.5 * SR))
        dispatch("/panic", [], engine=engine, services=services, at=panic_at)
        return engine.render(SR)

    assert not run(None).any()  # the emergency button: the scheduled /play is gone
    assert rms(run(int(0.2 * SR))[int(0.6 * SR) :]) > 0.01  # a panic at 0.2 s: /play at 0.5 s still plays


@pytest.mark.parametrize("address, args, reason", [
    ("/preset/load", ["bright"], "presets live in the daemon's state folder"),
    ("/preset/save", ["bright"], "presets live in the daemon's state folder"),
    ("/record/start", ["take"], "the rendered file is the recording"),
    ("/record/stop", [], "the rendered file is the recording"),
    ("/model/load", ["small"], "a render plays one model"),
])
def test_score_session_addresses_are_refused_with_the_reason(bundle, address, args, reason):
    engine = Engine(bundle, hop=HOP)
    with pytest.raises(ScoreError, match=reason) as exc:
        schedule_score(engine, parse_score([{"time": 1.0, "address": address, "args": args}]))
    assert f"{address} at 1 s" in str(exc.value)


class Sender:
    """A source with a reply path, as an OSC peer is."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list]] = []

    def send(self, address, args) -> None:
        self.sent.append((address, list(args)))


def test_a_scheduled_change_that_no_longer_fits_the_model_is_skipped_and_reported(bundle, models_dir, caplog):
    """/latent with 8 values and /latent/6 timed after a swap to a 4-unit model: skipped with a
    /fail to the sender and a log line, the engine keeps sounding, later events still apply."""
    engine = Engine(bundle, hop=HOP)
    services, src = OfflineServices(), Sender()
    send = lambda address, *args, at: dispatch(address, list(args), engine=engine, services=services,
                                               source=src, at=int(at * SR))
    dispatch("/play", [1], engine=engine, services=services)
    send("/latent", *[0.5] * 8, at=0.4)
    send("/latent/6", 1.0, at=0.4)
    send("/reset", at=0.5)  # the defaults of the model playing then
    send("/latent/1", 0.25, at=0.6)  # fits both models
    engine.post_at(int(0.2 * SR), lambda e: e.swap_model(load_bundle(models_dir / "small")))
    out = engine.render(43 * HOP)
    assert [a for a, _ in src.sent] == ["/fail", "/fail"]
    assert src.sent[0][1][0] == "/latent" and "'small' with 4 units" in src.sent[0][1][1]
    assert src.sent[1][1][0] == "/latent/6" and "4 units" in src.sent[1][1][1]
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 2
    assert len(engine.targets.latent) == 4 and engine.targets.latent[1] == 0.25
    hops = out.reshape(-1, HOP)
    assert all(rms(h) > 1e-3 for h in hops[3:])  # never silenced


def test_untimed_refusal_after_a_swap_is_immediate(bundle, models_dir):
    engine = Engine(bundle, hop=HOP)
    engine.render(HOP)
    engine.swap_model(load_bundle(models_dir / "small"))
    engine.render(HOP)
    with pytest.raises(ParameterError, match="out of range 0..3"):
        dispatch("/latent/6", [1.0], engine=engine, services=OfflineServices())


# ---- live: the daemon on jackd ----------------------------------------------------------------


def poll_until(pred, timeout: float = 3.0, every: float = 0.005) -> float:
    """The time.time() at which pred() first held."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return time.time()
        time.sleep(every)
    raise AssertionError("condition never held")


def done(c: Client, address: str, timeout: float = 2.0) -> list:
    return c.wait_for(lambda m: m.address == "/done" and m.args[0] == address, timeout, address).args


LEAD = 0.6  # seconds ahead: well beyond the output latency


def test_live_preset_load_applies_at_its_time(c, daemon):
    c.glide(0.0)
    c.chroma(7)
    c.sync()
    assert c.preset_save("tt_seven") == "tt_seven"
    c.chroma(2)
    c.sync()
    at = time.time() + LEAD
    with c.bundle(at=at) as b:
        b.message("/preset/load", "tt_seven")
    assert done(c, "/preset/load") == ["/preset/load", "tt_seven"]  # replied on arrival
    assert time.time() < at - 0.3 and c.get("/chroma") == [2]  # not applied at once
    seen = poll_until(lambda: c.get("/chroma") == [7])
    assert at - 0.1 <= seen <= at + 0.2


def test_live_preset_load_refusal_is_immediate(c):
    with c.bundle(at=time.time() + 5.0) as b:
        b.message("/preset/load", "no_such_preset")
    m = c.wait_for(lambda m: m.address == "/fail" and m.args[0] == "/preset/load", 1.0)
    assert "no preset named" in m.args[1]


def test_live_preset_save_captures_the_sound_at_its_time(c, daemon):
    c.chroma(3)
    c.sync()
    at = time.time() + LEAD
    with c.bundle(at=at) as b:
        b.message("/preset/save", "tt_saved")
    assert done(c, "/preset/save") == ["/preset/save", "tt_saved"]
    c.chroma(5)  # before its time: saved
    c.sync()
    time.sleep(max(0.0, at - time.time()) + 0.3)
    c.chroma(9)  # after: not saved
    c.sync()
    saved = json.loads((daemon.state_dir / "presets" / "tt_saved.json").read_text())
    assert saved["state"]["chroma"][5] == 1.0


def test_live_panic_applies_at_its_time(c):
    c.play()
    c.sync()
    poll_until(lambda: c.get("/play") == [1])
    at = time.time() + LEAD
    with c.bundle(at=at) as b:
        b.panic()
    with c.bundle(at=at + 0.4) as b:  # scheduled after the panic: kept
        b.play()
    time.sleep(0.1)
    assert c.get("/play") == [1] and c.meter()[0] > -60  # still sounding
    seen = poll_until(lambda: c.get("/play") == [0])
    assert at - 0.1 <= seen <= at + 0.2
    again = poll_until(lambda: c.get("/play") == [1])
    assert at + 0.3 <= again <= at + 0.6
    c.stop()
    c.sync()


def test_live_record_section_from_start_to_stop(c, daemon):
    c.play()
    c.sync()
    t1 = time.time() + LEAD
    t2 = t1 + 0.5
    with c.bundle(at=t1) as b:
        b.message("/record/start", "tt_section")
    name = done(c, "/record/start")[1]
    with c.bundle(at=t2) as b:
        b.message("/record/stop")
    assert done(c, "/record/stop")[1] == name == "tt_section.wav"
    path = daemon.recordings_dir / name
    assert path.exists()  # created on arrival, refusals (a bad folder) are immediate
    time.sleep(max(0.0, t2 - time.time()) + 0.4)
    with wave.open(str(path)) as w:
        frames = w.getnframes()
        data = np.frombuffer(w.readframes(frames), dtype=np.uint8)
    assert abs(frames - 0.5 * SR) <= 0.01 * SR, frames  # from t1 to t2, to the clock's jitter
    assert data.any()
    assert c.record_start("tt_after") == "tt_after.wav"  # the scheduled stop ended the take
    c.record_stop()
    c.stop()
    c.sync()


def test_live_model_load_swaps_at_its_time_and_late_misfits_are_reported(c, daemon):
    try:
        at = time.time() + LEAD
        with c.bundle(at=at) as b:
            b.message("/model/load", "small")
        with c.bundle(at=at + 0.3) as b:  # checked against 'synthetic' on arrival, misfits 'small' then
            b.latent([0.5] * 8)
        assert done(c, "/model/load") == ["/model/load", "small"]
        assert c.status()["model"] == "synthetic"
        seen = poll_until(lambda: c.status()["model"] == "small")
        assert at - 0.1 <= seen <= at + 0.2
        m = c.wait_for(lambda m: m.address == "/fail" and m.args[0] == "/latent", 2.0)
        assert "'small' with 4 units" in m.args[1]
        assert len(c.get("/latent")) == 4 and daemon.alive()
        assert "skipped" in daemon.stderr()
    finally:
        c.model_load("synthetic")
        poll_until(lambda: c.status()["model"] == "synthetic")
