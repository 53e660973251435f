"""Issue 9 goal, live: timetagged notes from silence, heard from outside (a real daemon on the
jackd dummy server, its output captured by a JACK input stream in this process, captured
samples mapped to wall-clock time through JACK's frame clock; benchmarks/bench_onsets_live.py
has the method and prints the figures).

What the measurement supports (jackd dummy 44.1 kHz / 256, system:playback latency 512):
  * the clock mapping is good to tens of microseconds (JACK's DLL about a local line, the
    monotonic/JACK offset scatter);
  * onsets are steady: within ±0.5 ms of the median (measured spread ~0.2 ms on a quiet
    machine; under load the odd note lands up to ~1.5 ms early, see the test);
  * notes are heard at their timetag: the daemon's audio clock (AudioOutput.sample_at)
    counts the block and the playback latency between handing a sample to PortAudio and
    hearing it (256 + 512 frames = 17.4 ms on this rig; before that fix, notes were heard
    +17.3 ms late), and follows the lower envelope of its callbacks' time stamps, so a
    callback woken late does not make the notes scheduled after it early.
Notes that an xrun moved (a lost JACK cycle, a daemon underflow) are counted apart, not
asserted on; at most a few are allowed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

SHIPPED = ROOT / "models" / "default"


NOTES = 20


# the rig's own accuracy: JACK's DLL about a locally fitted line, and the scatter of the
# monotonic-JACK clock offset. Above these the dummy driver's cycles were themselves uneven
# (a busy VM), so a run says nothing about the daemon and is measured again.
DLL_RESID_US_MAX = 100.0
OFFSET_SCATTER_US_RMS = 20.0
ATTEMPTS = 3


def _rig_is_accurate(res) -> bool:
    return res.dll_resid_us_max <= DLL_RESID_US_MAX and res.offset_scatter_us_rms <= OFFSET_SCATTER_US_RMS


@pytest.fixture(scope="module")
def live():
    import bench_onsets_live as bol

    for _ in range(ATTEMPTS):
        res = bol.measure(SHIPPED, notes=NOTES, lead=0.2)
        print("\n" + bol.report(res))
        if _rig_is_accurate(res):
            break
    return res


def test_every_note_is_captured_from_silence(live):
    assert len(live.notes) == NOTES
    found = [n for n in live.notes if n.heard_error_ms is not None]
    assert len(found) == NOTES, [n for n in live.notes if n.heard_error_ms is None]
    # from exact digital silence (>= 10 ms of zeros before the first non-zero sample), and
    # onset() lands within 0.25 ms after that first sample (the first samples of the 3 ms
    # raised-cosine attack are below its -60 dB floor)
    for n in found:
        assert n.first_nonzero_error_ms is not None, n
        assert 0.0 <= n.heard_error_ms - n.first_nonzero_error_ms <= 0.25, n
    assert live.xrun_notes() <= 3, f"{live.xrun_notes()} notes moved by xruns (machine too loaded?)"
    assert len(live.heard()) >= NOTES - 3


def test_the_clock_mapping_is_good_to_tens_of_microseconds(live):
    # JACK's DLL about a locally fitted line, and the scatter of the monotonic-JACK offset
    assert live.dll_resid_us_max <= DLL_RESID_US_MAX, (live.dll_resid_us_max, f"in all {ATTEMPTS} runs")
    assert live.offset_scatter_us_rms <= OFFSET_SCATTER_US_RMS, (live.offset_scatter_us_rms, f"in all {ATTEMPTS} runs")


def test_onsets_are_within_half_a_millisecond_of_their_median(live):
    """Quiet machine: all 20 within ±0.5 ms (spread ~0.2 ms). Under load a note can land up to
    ~1.5 ms early: the daemon stamps its clock with the callback's wall time, late when its
    callback waits (GIL, a busy core), which makes notes scheduled then early. So: at least 90 %
    within ±0.5 ms of the median, and none more than 2 ms off it."""
    e = live.errors
    assert e["n"] >= NOTES - 3
    assert e["within_half_ms_of_median"] >= 0.9, (e, live.heard())
    assert e["max_dev_from_median"] <= 2.0, (e, live.heard())


def test_onsets_are_within_half_a_millisecond_of_the_timetag(live):
    """The daemon's audio clock counts the block and PortAudio's output latency between handing
    a sample over and hearing it (17.4 ms here), so a note is heard at its timetag."""
    heard = live.heard()
    assert abs(live.errors["median"]) <= 0.5, (live.errors, heard)
    assert sum(abs(v) <= 0.5 for v in heard) >= 0.9 * len(heard), heard
