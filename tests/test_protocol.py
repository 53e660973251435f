"""The address table through `dispatch`: coercion, refusals that change nothing, echoes, /get."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aedaemon.engine import Engine, one_hot
from aedaemon.errors import ParameterError
from aedaemon.protocol import ADDRESSES, OfflineServices, Reply, dispatch, resolve


class Recorder(OfflineServices):
    """Offline services that keep the echoes they are asked to broadcast."""

    def __init__(self) -> None:
        self.echoes: list[Reply] = []

    def broadcast(self, replies) -> None:
        self.echoes.extend(replies)


@pytest.fixture()
def engine(bundle) -> Engine:
    return Engine(bundle)


def send(engine, address, *args, services=None, at=None):
    return dispatch(address, list(args), engine=engine, services=services or Recorder(), at=at)


def test_pure_data_floats_are_accepted_for_ints(engine):
    send(engine, "/chroma", 4.0)
    send(engine, "/mute/2", 1.0)
    send(engine, "/freq_shift", -3.0)
    send(engine, "/play", True)
    t = engine.targets
    assert t.chroma == one_hot(4) and t.mute[2] and t.freq_shift == -3 and t.playing


@pytest.mark.parametrize(
    "address, args, reason",
    [
        ("/nope", [], "unknown address"),
        ("/latent/8", [0.5], "unit 8 is out of range 0..7"),
        ("/latent/0", [math.nan], "finite"),
        ("/latent/0", [math.inf], "finite"),
        ("/latent/0", ["x"], "must be a number"),
        ("/latent/0", [], "expects 1 argument"),
        ("/latent", [0.1] * 3, "expects 8 values"),
        ("/chroma", [3.5], "whole number"),
        ("/chroma", ["H"], "unknown pitch class"),
        ("/chroma", [12], "out of range 0..11"),
        ("/chroma", [0.0] * 12, "must not all be 0"),
        ("/transpose", [25.0], "out of range -24..24"),
        ("/gain", [-0.1], "out of range 0..2"),
        ("/scale/1", [5.0], "out of range 0..4"),
        ("/mute/1", [2], "must be 0 or 1"),
        ("/note", [128], "out of range 0..127"),
        ("/note", [60, 200], "velocity 200"),
        ("/preset/save", ["../etc/passwd"], "not valid"),
        ("/preset/save", ["a/b"], "not valid"),
        ("/get", ["/nope"], "not a state address"),
        ("/glide", [b"\x00\x01"], "blob"),
    ],
)
def test_refusals_name_the_problem_and_change_nothing(engine, address, args, reason):
    before = engine.targets
    with pytest.raises(ParameterError, match=None) as err:
        send(engine, address, *args)
    assert reason in str(err.value)
    assert engine.targets == before


def test_latent_is_clamped_to_the_control_range_and_echoed(engine):
    rec = Recorder()
    send(engine, "/latent/3", 9.0, services=rec)
    assert engine.targets.latent[3] == 2.0
    assert rec.echoes == [Reply("/latent/3", (2.0,))]


def test_get_returns_the_current_value(engine):
    send(engine, "/chroma", "F#")
    send(engine, "/latent/1", 0.25)
    assert send(engine, "/get", "/chroma")[0] == [Reply("/chroma", (6,))]
    assert send(engine, "/get", "/latent/1")[0] == [Reply("/latent/1", (0.25,))]
    assert send(engine, "/get", "/latent")[0][0].args[1] == 0.25
    blend = [0.0] * 12
    blend[0] = blend[7] = 1.0
    send(engine, "/chroma", *blend)
    assert send(engine, "/get", "/chroma")[0][0].args == tuple(0.5 if k in (0, 7) else 0.0 for k in range(12))


def test_note_sets_chroma_and_played_pitch_and_plays_then_note_off_releases(engine):
    send(engine, "/note", 64, 127)
    t = engine.targets
    assert t.chroma == one_hot(4) and t.pitch == 64.0 and t.transpose == 0.0 and t.playing and t.note == 64
    send(engine, "/note", 40)  # E2: same class two octaves down; /transpose stays the offset
    assert engine.targets.pitch == 40.0 and engine.targets.transpose == 0.0
    send(engine, "/note_off", 64)  # not the sounding note: ignored
    assert engine.targets.playing
    send(engine, "/note_off", 40)
    assert not engine.targets.playing


def test_reset_and_zero(engine):
    send(engine, "/latent", *[1.0] * 8)
    send(engine, "/scale/0", 3.0)
    send(engine, "/mute/1", 1)
    send(engine, "/reset")
    t = engine.targets
    assert t.latent == (0.5,) * 8 and t.scale == (1.0,) * 8 and t.mute == (False,) * 8
    send(engine, "/zero")
    assert engine.targets.latent == (0.0,) * 8


def test_timetagged_message_is_echoed_when_applied_not_before(engine):
    rec = Recorder()
    engine.update(playing=True)
    send(engine, "/gain", 0.5, services=rec, at=3000)
    assert rec.echoes == [] and engine.targets.gain == 1.0
    engine.render(4 * 1024)
    assert rec.echoes == [Reply("/gain", (0.5,))] and engine.targets.gain == 0.5


def test_session_addresses_are_refused_offline(engine):
    with pytest.raises(ParameterError, match="offline"):
        send(engine, "/preset/save", "a")


def test_every_table_entry_resolves_and_is_documented():
    for entry in ADDRESSES:
        concrete = entry.pattern.replace("{i}", "0")
        assert resolve(concrete)[0] is entry
        assert entry.doc and entry.kind in ("state", "action", "query", "session")
    assert resolve("/latent/01") == (None, None)  # no leading zeros, no aliases
    assert resolve("/latent/-1") == (None, None)


def test_address_patterns_set_every_matching_sound_parameter(engine):
    svc = Recorder()
    send(engine, "/mute/*", 1, services=svc)
    assert all(engine.targets.mute)
    assert [r.address for r in svc.echoes] == [f"/mute/{i}" for i in range(8)]
    send(engine, "/scale/[!0-5]", 2.0)
    send(engine, "/latent/{1,3}", 0.25)
    t = engine.targets
    assert list(t.scale) == [1.0] * 6 + [2.0, 2.0]
    assert t.latent[1] == t.latent[3] == 0.25 and t.latent[0] != 0.25


@pytest.mark.parametrize(
    "pattern, reason",
    [
        ("/*", "several kinds"),  # would reach /gain, /glide, /chroma... at once
        ("/{gain,mute/0}", "several kinds"),
        ("/pre*/*", "matches no sound parameter"),  # actions and sessions are never matched
        ("/qu?t", "matches no sound parameter"),
        ("/mute/[", "without"),
        ("/mute/[z-a]", "bad character range"),
        ("/latent/}", "unbalanced"),
    ],
)
def test_address_patterns_refused_change_nothing(engine, pattern, reason):
    before = engine.targets
    with pytest.raises(ParameterError, match=reason):
        send(engine, pattern, 1)
    assert engine.targets == before


def test_a_pattern_with_a_bad_argument_changes_nothing(engine):
    before = engine.targets
    with pytest.raises(ParameterError):
        send(engine, "/scale/*", 9.0)  # out of 0..4: refused at the first match, before any change
    assert engine.targets == before


def test_fuzzed_address_patterns_are_refused_cleanly_or_applied(bundle):
    """Whatever the address, dispatch either applies it or raises ParameterError (-> /fail)."""
    engine = Engine(bundle)  # one engine for all inputs: state carries over, as in the daemon

    @settings(max_examples=400, deadline=None)
    @given(st.text(alphabet="/*?[]{}!,-_az019lmtugnse", min_size=1, max_size=24))
    def check(address):
        try:
            send(engine, "/" + address, 0.5)
        except ParameterError as exc:
            assert str(exc)

    check()

