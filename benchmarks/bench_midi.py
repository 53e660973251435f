"""MIDI bridge latency (issue 5 goal): MIDI message → state change, median ≤ 5 ms beyond the MIDI
transport's own period.

A virtual nanoKONTROL2 (python-rtmidi, JACK MIDI on the running jackd) sends fader CCs; the
in-daemon bridge (DaemonMidi → protocol.dispatch → Engine targets) applies them while the
renderer runs on the null clock, as in the daemon. Three clocks per message, all
time.perf_counter in this process:

  sent        just before MidiOut.send_message
  transport   a plain rtmidi MidiIn connected to the same port receives it (JACK MIDI alone:
              the message waits for the next process cycle, up to one period)
  state       the engine's targets changed (timestamped in services.broadcast, which the
              protocol calls right after the target write, on the same thread)

Reported: median and p95 of sent→state, of sent→transport, and of the bridge's own share
(state − transport for the same message), with the JACK period beside them.

    .ci/jackd && .venv/bin/python benchmarks/bench_midi.py [--quick] [--n 1000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import rtmidi  # noqa: E402

from aedaemon.audio import open_output  # noqa: E402
from aedaemon.engine import Engine  # noqa: E402
from aedaemon.midi import DaemonMidi  # noqa: E402
from aedaemon.model import load_bundle  # noqa: E402
from aedaemon.synthetic import make_synthetic_bundle  # noqa: E402


def jack_period() -> tuple[int, int]:
    def num(cmd: str) -> int:
        out = subprocess.run([cmd], capture_output=True, text=True, timeout=5).stdout
        return int("".join(ch for ch in out.split(":")[-1] if ch.isdigit()) or 0)

    return num("jack_bufsize"), num("jack_samplerate")


class Services:
    def __init__(self) -> None:
        self.stamps: dict[float, float] = {}
        self.recorder = None

    def broadcast(self, replies) -> None:
        t = time.perf_counter()
        for r in replies:
            if r.address == "/latent/0":
                self.stamps.setdefault(round(r.args[0], 6), t)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="messages (default 600; --quick: 150)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", help="model folder (default: a synthetic 8-unit bundle)")
    args, _unknown = ap.parse_known_args()
    n = 150 if args.quick and args.n == 600 else args.n
    subprocess.run([str(REPO / ".ci" / "jackd")], check=True)
    period, rate = jack_period()
    with tempfile.TemporaryDirectory() as tmp:
        if args.model:
            bundle = load_bundle(args.model)
        else:
            make_synthetic_bundle(Path(tmp) / "synthetic", name="synthetic")
            bundle = load_bundle(Path(tmp) / "synthetic")
        engine = Engine(bundle)
        audio = open_output("null", engine, block=256)
        audio.start()
        svc = Services()
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="nanoKONTROL2")
        out.open_virtual_port("nanoKONTROL2 SLIDER/KNOB")
        probe = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name="bench-probe")
        transport: dict[int, float] = {}
        probe.set_callback(lambda ev, _d=None: transport.setdefault(ev[0][2], time.perf_counter()))
        ports = probe.get_ports()
        probe.open_port(next(i for i, p in enumerate(ports) if "nanoKONTROL2 SLIDER" in p))
        midi = DaemonMidi({"port": "nanoKONTROL2*"}, lambda: engine, svc, Path(tmp) / "state")
        midi.start()
        end = time.monotonic() + 3
        while not midi.bridge.connected and time.monotonic() < end:
            time.sleep(0.01)
        lo, hi = bundle.meta.latent_range
        total, trans, own = [], [], []
        value = 0
        for _ in range(n):
            value = (value + random.randint(1, 126)) % 128
            transport.pop(value, None)
            key = round(lo + (hi - lo) * value / 127, 6)
            svc.stamps.pop(key, None)
            # a random phase against the JACK cycle, as a performer's hand would have
            time.sleep(random.uniform(0.004, 0.012))
            t0 = time.perf_counter()
            out.send_message([0xB0, 0, value])
            deadline = t0 + 0.5
            while key not in svc.stamps or value not in transport:
                if time.perf_counter() > deadline:
                    break
                time.sleep(0.0002)
            if key in svc.stamps and value in transport:
                total.append((svc.stamps[key] - t0) * 1e3)
                trans.append((transport[value] - t0) * 1e3)
                own.append((svc.stamps[key] - transport[value]) * 1e3)
        midi.stop()
        audio.close()
        probe.close_port()
        out.close_port()
    period_ms = 1e3 * period / rate if rate else float("nan")
    print(f"JACK: period {period} frames at {rate} Hz = {period_ms:.2f} ms (MIDI is delivered once per period)")
    print(f"messages: {len(total)} of {n} measured (renderer running on the null clock, hop {engine.hop})")
    print(f"{'':28}{'median':>9}{'p95':>9}{'max':>9}   ms")
    for label, xs in (("MIDI send -> state change", total), ("JACK MIDI transport alone", trans),
                      ("bridge (state - transport)", own)):
        print(f"{label:28}{statistics.median(xs):9.3f}{pct(xs, 0.95):9.3f}{max(xs):9.3f}")
    beyond = statistics.median(total) - period_ms
    ok = statistics.median(own) <= 5.0 and beyond <= 5.0
    print(f"goal: median <= 5 ms beyond the transport's period: median {statistics.median(total):.3f} ms - "
          f"period {period_ms:.2f} ms = {beyond:+.3f} ms; bridge's own median {statistics.median(own):.3f} ms "
          f"-> {'MET' if ok else 'NOT MET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
