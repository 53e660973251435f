#!/usr/bin/env python3
"""Play a melody on a running aedaemon with timetagged bundles.

Every note is sent ahead of time as a bundle stamped with the moment it should sound; the
daemon applies it at that audio frame, so the rhythm is as steady as the audio clock no matter
how the network or this script jitter.

    aedaemon run --model models/default &          # or: make run
    python clients/python/melody.py --port 9000 --bpm 110
"""

from __future__ import annotations

import argparse
import sys
import time

from aedaemon.client import Client, Refused

# (MIDI note or None for a rest, beats) — the opening of "Frère Jacques"
TUNE = [(60, 1), (62, 1), (64, 1), (60, 1)] * 2 + [(64, 1), (65, 1), (67, 2)] * 2 + [
    (67, 0.5), (69, 0.5), (67, 0.5), (65, 0.5), (64, 1), (60, 1)
] * 2 + [(60, 1), (55, 1), (60, 2)] * 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--bpm", type=float, default=110.0)
    ap.add_argument("--lookahead", type=float, default=0.25, help="seconds each bundle is sent ahead")
    a = ap.parse_args()
    try:
        play(a.host, a.port, 60.0 / a.bpm, a.lookahead)
    except TimeoutError as exc:
        sys.exit(f"melody.py: {exc} (is the daemon running?)")
    except Refused as exc:  # e.g. a note the daemon refuses: reported by the final sync()
        sys.exit(f"melody.py: refused by the daemon: {exc}")


def play(host: str, port: int, beat: float, lookahead: float) -> None:
    """Send TUNE as timetagged bundles (beat: seconds), each `lookahead` seconds before it is due."""
    with Client(host, port) as c:
        print("playing on", c.status()["model"])
        c.glide(0.02)
        start = time.time() + 0.5
        t = start
        for i, (note, beats) in enumerate(TUNE):
            # send each bundle `lookahead` seconds before it is due
            while time.time() < t - lookahead:
                time.sleep(0.01)
            with c.bundle(at=t) as b:
                if note is not None:
                    b.note(note, 100)
                    b.latent(i % 8, 0.3 + 0.1 * (i % 5))  # a little timbre movement per note
            with c.bundle(at=t + beats * beat * 0.9) as b:  # release slightly before the next note
                if note is not None:
                    b.note_off(note)
            t += beats * beat
        time.sleep(max(0.0, t - time.time()) + 0.2)
        c.sync()  # raises Refused if the daemon refused any message sent
        print("done; late bundles so far:", c.status()["late_bundles"])


if __name__ == "__main__":
    main()
