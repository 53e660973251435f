"""A long mixed flood against a real daemon (issue 10 "done when"): resources stay bounded, no
hop goes silent, the state stays consistent.

`aedaemon run` as a subprocess on the jackd dummy server, shipped model; a models folder with it
and two synthetic models (8 and 4 latent units, so swaps race changes that no longer fit). For
`--minutes` (default 10; --quick: 1) a sender process mixes, at about `--rate` messages/s:
latent and chroma changes, timetagged bundles due 10-200 ms ahead and 60-250 s ahead (the
schedule's limits refuse the excess), /get and /status, preset saves and loads, and a model swap
every few seconds. Every 10 s it prints the daemon's RSS (with its device process), threads,
file descriptors and the /status counters; at the end it checks the state (the latent fits the
model, still playing, the meter above -60 dB) and that no hop failed (`failed_hops` 0).

    .ci/jackd && .venv/bin/python benchmarks/bench_flood.py [--minutes 10] [--rate 2000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(REPO / "benchmarks"))

from aedaemon.client import Client  # noqa: E402
from aedaemon.oscwire import encode_bundle, encode_message, ntp_from_unix  # noqa: E402
from aedaemon.synthetic import make_synthetic_bundle  # noqa: E402
from bench_daemon import family  # noqa: E402  (the daemon and its device process)

def resources(pid: int) -> dict:
    rss = threads = fds = 0
    for p in family(pid):
        try:
            st = dict(line.split(":", 1) for line in Path(f"/proc/{p}/status").read_text().splitlines())
            rss += int(st["VmRSS"].split()[0]) // 1024
            threads += int(st["Threads"])
            fds += len(os.listdir(f"/proc/{p}/fd"))
        except (OSError, KeyError):
            pass
    return {"rss_mb": rss, "threads": threads, "fds": fds, "processes": len(family(pid))}


def flood(port: int, rate: float, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dest = ("127.0.0.1", port)
    t0 = time.monotonic()
    n = 0
    next_swap = t0 + 3.0
    models = ["default", "synth8", "small4"]
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        due = int((now - t0) * rate)
        while n < due:
            n += 1
            r = rng.random()
            if r < 0.45:
                pkt = encode_message(f"/latent/{rng.randrange(8)}", [rng.uniform(0.0, 1.0)])
            elif r < 0.55:
                pkt = encode_message("/chroma", [rng.randrange(12)])
            elif r < 0.70:  # near future: 10-200 ms ahead, 8 values (misfits a 4-unit model)
                at = time.time() + rng.uniform(0.01, 0.2)
                pkt = encode_bundle(ntp_from_unix(at), [encode_message("/latent", [rng.uniform(0, 1) for _ in range(8)])])
            elif r < 0.80:  # far future: a minute or four ahead (the schedule's limits apply)
                at = time.time() + rng.uniform(60.0, 250.0)
                pkt = encode_bundle(ntp_from_unix(at), [encode_message("/transpose", [rng.uniform(-5, 5)])])
            elif r < 0.88:
                pkt = encode_message("/get", ["/latent"])
            elif r < 0.93:
                pkt = encode_message("/status", [])
            elif r < 0.965:
                pkt = encode_message("/preset/save", [f"flood{rng.randrange(40)}"])
            else:
                pkt = encode_message("/preset/load", [f"flood{rng.randrange(40)}"])
            try:
                u.sendto(pkt, dest)
            except OSError:
                pass
        if now >= next_swap:
            next_swap = now + rng.uniform(2.0, 6.0)
            u.sendto(encode_message("/model/load", [rng.choice(models)]), dest)
        time.sleep(0.002)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=2000.0)
    ap.add_argument("--quick", action="store_true", help="one minute")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    subprocess.run([str(REPO / ".ci" / "jackd")], check=True)
    work = Path(tempfile.mkdtemp(prefix="aedaemon-flood-"))
    models = work / "models"
    models.mkdir()
    os.symlink(REPO / "models" / "default", models / "default")
    make_synthetic_bundle(models / "synth8", name="synth8")
    make_synthetic_bundle(models / "small4", name="small4", latent_size=4, seed=3)
    cmd = [sys.executable, "-m", "aedaemon.daemon", "--model", "default", "--models-dir", str(models),
           "--state-dir", str(work / "state"), "--port", "0", "--fresh", "--log-level", "warning"]
    err = open(work / "stderr", "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=work)
    samples: list[dict] = []
    try:
        line = proc.stdout.readline()
        if not line.startswith("aedaemon ready"):
            print("daemon did not start:", (work / "stderr").read_text()[-2000:])
            return 1
        port = int(line.split("port=")[1].split()[0])
        with Client(port=port, timeout=5.0) as c:
            c.play()
            c.sync()
            start = resources(proc.pid)
            print(f"flood: {args.rate:.0f} msg/s for {minutes:g} min, mixed; daemon pid {proc.pid}")
            print(f"{'t s':>6}{'RSS MB':>8}{'threads':>9}{'fds':>6}{'procs':>7}{'failed':>8}{'underfl':>9}"
                  f"{'late':>7}{'dropped':>9}  model")
            sender = mp.get_context("spawn").Process(target=flood, args=(port, args.rate, 60.0 * minutes, 1))
            sender.start()
            t0 = time.monotonic()
            while sender.is_alive():
                sender.join(10.0)
                st = c.status()
                res = resources(proc.pid)
                row = {"t": round(time.monotonic() - t0, 1), **res, **{k: st[k] for k in (
                    "failed_hops", "underflows", "late_bundles", "dropped_packets", "model", "audio")}}
                samples.append(row)
                print(f"{row['t']:>6.0f}{row['rss_mb']:>8}{row['threads']:>9}{row['fds']:>6}{row['processes']:>7}"
                      f"{row['failed_hops']:>8}{row['underflows']:>9}{row['late_bundles']:>7}"
                      f"{row['dropped_packets']:>9}  {row['model']}")
            time.sleep(1.0)
            c.model_load("default")
            time.sleep(0.5)
            st = c.status()
            latent = c.get("/latent")
            rms_db, _ = c.meter()
        alive = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    tail = samples[len(samples) // 2 :] or samples
    rss_growth = max(r["rss_mb"] for r in tail) - min(r["rss_mb"] for r in tail)
    verdict = {
        "alive": alive, "failed_hops": st["failed_hops"], "playing": st["playing"], "latent_units": len(latent),
        "meter_rms_db": rms_db, "rss_start_mb": start["rss_mb"], "rss_max_mb": max(r["rss_mb"] for r in samples),
        "rss_spread_second_half_mb": rss_growth, "threads_max": max(r["threads"] for r in samples),
        "fds_max": max(r["fds"] for r in samples),
    }
    ok = alive and st["failed_hops"] == 0 and st["playing"] == 1 and len(latent) == 8 and rms_db > -60.0
    print(f"\nend: alive {alive}, failed hops {st['failed_hops']}, playing {st['playing']}, latent units "
          f"{len(latent)} (model default), meter {rms_db:.1f} dBFS; RSS {start['rss_mb']} -> max "
          f"{verdict['rss_max_mb']} MB (second half within {rss_growth} MB), threads max {verdict['threads_max']}, "
          f"fds max {verdict['fds_max']}: {'consistent and bounded' if ok else 'NOT OK'}")
    if args.json:
        args.json.write_text(json.dumps({"samples": samples, "verdict": verdict}, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
