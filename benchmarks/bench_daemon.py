"""Daemon benchmarks (issue 4 goals) on the jackd dummy clock:

  ready     time from process start to READY (the `aedaemon ready` line) and to the first /status reply
  static    CPU % of one core while a static tone plays (no messages)             goal <= 3 %
  automate  CPU % while 8 latent units are automated at 100 messages/s each       goal <= 15 %
  rss       resident memory (VmHWM peak)                                          goal <= 200 MB
  flood     output underflows while a client floods 5,000 messages/s and another
            process keeps the other core busy (60 s; --quick: 10 s)               goal 0
  latency   datagram arrival -> the output sample reflecting it (in-process run with a probe
            posted behind each change; the change's frame is mapped to the time the
            callback hands it to PortAudio, plus the stream's output latency)    goal <= block + hop

    .ci/jackd && .venv/bin/python benchmarks/bench_daemon.py [--quick] [--model DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aedaemon.client import Client  # noqa: E402
from aedaemon.oscwire import encode_message  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def family(pid: int) -> list[int]:
    """The daemon and its children (the audio device process, aedaemon/devicechild.py): its
    CPU and memory count as the daemon's."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return [pid, *kids]


def cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def jack_shm_mb(pid: int) -> float:
    """RSS of mappings of JACK's server shared memory (/dev/shm/jack-*): jackd's memory, mapped
    into every client and counted in each client's RSS (the daemon's JACK client is its device
    process)."""
    total = 0
    for p in family(pid):
        in_jack = False
        for line in Path(f"/proc/{p}/smaps").read_text().splitlines():
            parts = line.split()
            if parts and "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
                in_jack = len(parts) >= 6 and parts[5].startswith("/dev/shm/jack")
            elif in_jack and parts[:1] == ["Rss:"]:
                total += int(parts[1])
    return total / 1024


def rss_mb(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of the daemon and its device process together, MB."""
    rss = hwm = 0.0
    for p in family(pid):
        d = {}
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            d[k] = v.strip()
        rss += int(d["VmRSS"].split()[0]) / 1024
        hwm += int(d["VmHWM"].split()[0]) / 1024
    return rss, hwm


def sender(port: int, rate: float, seconds: float, units: int = 8) -> None:
    """Send /latent/i messages at `rate` per second (spread evenly) for `seconds`."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    msgs = [encode_message(f"/latent/{i % units}", [0.2 + 0.6 * ((i * 37) % 101) / 101]) for i in range(4040)]
    t0 = time.monotonic()
    n = 0
    batch = max(1, int(rate / 200))
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        due = int((now - t0) * rate)
        while n < due:
            for _ in range(batch):
                u.sendto(msgs[n % len(msgs)], ("127.0.0.1", port))
                n += 1
        time.sleep(batch / rate / 2)


def busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    x = 0
    while time.monotonic() < end:
        x += 1


def measure_cpu(pid: int, seconds: float) -> float:
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100.0 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def subprocess_benchmarks(model: str, models_dir: str, quick: bool, out: dict, extra: list[str]) -> None:
    work = Path(tempfile.mkdtemp(prefix="aedaemon-bench-"))
    cmd = [sys.executable, "-m", "aedaemon.daemon", "--model", model, "--models-dir", models_dir,
           "--state-dir", str(work / "state"), "--port", "0", "--fresh", "--log-level", "warning", *extra]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(work / "stderr", "wb"), text=True, cwd=work)
    try:
        line = proc.stdout.readline()
        t_ready = time.monotonic() - t0
        if not line.startswith("aedaemon ready"):
            raise SystemExit(f"daemon failed: {(work / 'stderr').read_text()}")
        port = int(line.split("port=")[1].split()[0])
        with Client(port=port) as c:
            c.status()
            t_answer = time.monotonic() - t0
            out["ready_s"] = t_ready
            out["first_status_s"] = t_answer
            c.play()
            c.sync()
            time.sleep(1.0)
            out["cpu_static_pct"] = measure_cpu(proc.pid, 5 if quick else 10)
            p = mp.Process(target=sender, args=(port, 800.0, 6 if quick else 11))
            p.start()
            time.sleep(0.5)
            out["cpu_automate_pct"] = measure_cpu(proc.pid, 5 if quick else 10)
            p.join()
            st0 = c.status()
            flood_s = 10.0 if quick else 60.0
            hog = mp.Process(target=busy, args=(flood_s + 1,))
            hog.start()
            flooder = mp.Process(target=sender, args=(port, 5000.0, flood_s))
            flooder.start()
            cpu_flood = measure_cpu(proc.pid, flood_s - 0.5)
            flooder.join()
            hog.join()
            time.sleep(0.3)
            st1 = c.status()
            out["flood_seconds"] = flood_s
            out["flood_underflows"] = st1["underflows"] - st0["underflows"]
            out["flood_dropped"] = st1["dropped_packets"] - st0["dropped_packets"]
            out["cpu_flood_pct"] = cpu_flood
            out["late_bundles"] = st1["late_bundles"]
            out["rss_mb"], out["rss_peak_mb"] = rss_mb(proc.pid)
            out["jack_shm_mb"] = jack_shm_mb(proc.pid)
            out["total_underflows"] = st1["underflows"]
    finally:
        proc.terminate()
        proc.wait(5)
    log = (work / "stderr").read_text()
    out["underflow_log"] = [ln for ln in log.splitlines() if "underflow" in ln][-3:]


def latency_benchmark(model: str, models_dir: str, quick: bool, out: dict, block: int, hop: int | None,
                      ahead: int | None) -> None:
    from aedaemon.config import load_config
    from aedaemon.daemon import Daemon

    work = Path(tempfile.mkdtemp(prefix="aedaemon-lat-"))
    cli = {"model": model, "models_dir": models_dir, "state_dir": str(work), "port": 0, "block": block,
           "hop": hop, "render_ahead": ahead, "log_level": "warning"}
    cfg, _ = load_config(None, cli=cli, env={})
    d = Daemon(cfg, None, None)
    d.start(fresh=True)
    samples: list[float] = []
    handoff: list[float] = []
    orig = d.on_message
    sr = d.engine.sample_rate

    def on_message(peer, m):
        t_arr = time.monotonic()
        orig(peer, m)
        if m.address.startswith("/latent/"):
            def probe(e, t_arr=t_arr):
                s = e.sample_time  # the frame boundary the change is applied at
                r, t_cb = d.audio._stamp
                # samples [r, r + block) go out at the next callback, one block per callback
                blocks = max(0, s - r) // d.audio.block + 1
                t_hand = t_cb + blocks * d.audio.block / sr
                handoff.append(t_hand - t_arr)
            d.engine.post(probe)

    d.server.handler = on_message
    try:
        d.engine.update(playing=True)
        time.sleep(0.5)
        seconds = 5 if quick else 15
        # spawned, not forked: a fork of this process (the daemon runs in it) would make the
        # renderer's next writes copy-on-write page faults — underruns of the benchmark's own making
        p = mp.get_context("spawn").Process(target=sender, args=(d.server.port, 20.0, seconds, 8))
        p.start()
        p.join()
        time.sleep(0.3)
        out_lat = float(getattr(d.audio, "output_latency", 0.0))  # PortAudio's figure for the device
        samples = [h + out_lat for h in handoff]
    finally:
        d.stop_event.set()
        d.shutdown()
    ms = sorted(1000 * x for x in samples)
    budget = 1000 * (block + d.engine.hop) / sr
    out["latency"] = {
        "block": block, "hop": d.engine.hop, "ahead": d.audio.ahead, "n": len(ms),
        "underflows": d.audio.total_underflows, "output_latency_ms": 1000 * out_lat,
        "min_ms": ms[0], "median_ms": statistics.median(ms), "p95_ms": ms[int(0.95 * (len(ms) - 1))],
        "max_ms": ms[-1], "budget_ms": budget, "within_budget_pct": 100.0 * sum(x <= budget for x in ms) / len(ms),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="shorter runs (flood 10 s instead of 60 s)")
    ap.add_argument("--model", default=None, help="model folder (default: models/default, else a synthetic model)")
    ap.add_argument("--render-ahead", type=int, default=None, help="daemon --render-ahead for the subprocess runs")
    args, _ = ap.parse_known_args()
    subprocess.run([str(REPO / ".ci" / "jackd")], check=True)
    if args.model:
        model_dir = Path(args.model).resolve()
    elif (REPO / "models" / "default" / "model.json").is_file():
        model_dir = REPO / "models" / "default"
    else:
        from aedaemon.synthetic import make_synthetic_bundle

        model_dir = Path(tempfile.mkdtemp(prefix="aedaemon-model-")) / "synthetic"
        make_synthetic_bundle(model_dir, name="synthetic")
    model, models_dir = model_dir.name, str(model_dir.parent)
    print(f"model: {model_dir}  (cores: {os.cpu_count()}, load average: {os.getloadavg()})")
    res: dict = {}
    extra = [] if args.render_ahead is None else ["--render-ahead", str(args.render_ahead)]
    subprocess_benchmarks(model, models_dir, args.quick, res, extra)
    print(f"ready (READY line)       {res['ready_s']:.2f} s    first /status reply {res['first_status_s']:.2f} s   goal <= 3 s")
    print(f"CPU static tone          {res['cpu_static_pct']:.1f} % of one core                        goal <= 3 %")
    print(f"CPU 8 units x 100 msg/s  {res['cpu_automate_pct']:.1f} %                                    goal <= 15 %")
    print(f"RSS                      {res['rss_mb']:.0f} MB (peak {res['rss_peak_mb']:.0f} MB), of which JACK's "
          f"shared server memory {res['jack_shm_mb']:.0f} MB -> own {res['rss_mb'] - res['jack_shm_mb']:.0f} MB   goal <= 200 MB")
    print(f"flood 5000 msg/s {res['flood_seconds']:.0f} s + busy core: underflows {res['flood_underflows']}, "
          f"dropped {res['flood_dropped']}, daemon CPU {res['cpu_flood_pct']:.0f} %          goal 0 underflows")
    for ln in res["underflow_log"]:
        print("   ", ln)
    for block, hop, ahead in ((256, None, None), (256, None, 0), (256, None, 512), (256, None, 1024), (256, 256, None)):
        latency_benchmark(model, models_dir, args.quick, res, block, hop, ahead)
        lat = res["latency"]
        print(f"control latency block {lat['block']} hop {lat['hop']} ahead {lat['ahead']} "
              f"(n={lat['n']}, underflows {lat['underflows']}, incl. output latency "
              f"{lat['output_latency_ms']:.1f} ms): min {lat['min_ms']:.1f} median {lat['median_ms']:.1f} "
              f"p95 {lat['p95_ms']:.1f} max {lat['max_ms']:.1f} ms; budget block+hop {lat['budget_ms']:.1f} ms, "
              f"{lat['within_budget_pct']:.0f} % within")
    return 0


if __name__ == "__main__":
    sys.exit(main())
