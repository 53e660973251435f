"""Live onsets of timetagged notes from silence (issue 9 goal: within ±0.5 ms, jackd rig),
measured from outside, as a listener would hear them:

  * a real daemon (`aedaemon run --audio portaudio --port 0`) on the jackd dummy server;
  * a capture stream we own in this process (a PyAudio input stream on the JACK host API,
    its client named `aeonsets-<pid>`), fed by the daemon's first output port (connected
    through libjack; PortAudio's own auto-connection from system:capture is removed);
  * a second, passive libjack client (ctypes, never activated) that reads JACK's frame
    clock in the capture callback: the cycle's first frame (`jack_last_frame_time`), the
    time JACK's DLL gives that frame (`jack_frames_to_time`, on JACK's clock =
    CLOCK_MONOTONIC_RAW) and `jack_get_time` bracketed by two `time.monotonic()` reads.

Clock mapping. JACK runs a client that reads another client's output after it in the same
cycle, so capture sample m of the callback that starts at capture index n_k in cycle k is
graph frame F_k + (m - n_k) (checked: F_k - n_k is constant, else a cycle was lost). A
frame is heard `system:playback`'s playback latency later (the dummy driver declares 512
frames: one period of "hardware" plus one for the asynchronous mode). Frames become JACK
time through the DLL (locally fitted line over ±0.5 s of cycles), JACK time becomes
time.monotonic() through the bracketed offset (JACK's clock is MONOTONIC_RAW: the two differ
by NTP's slew, so the offset is taken locally, not once), and monotonic time becomes
time.time() through the median of back-to-back reads (both clocks are slewed alike). The
uncertainty reported is the scatter of those local fits (DLL residuals, offset scatter).
For comparison it also reports the jitter of the capture callback's wall time after its
cycle's DLL time: what a mapping from callback times alone would suffer.

Each note: `/note_off` (and a pause of `--gap` s, the output silent again), then a bundle
timetagged `--lead` s ahead (`Client.bundle(at=...)`) with `/note 60 127`, and one with
`/note_off 60` `--dur` s later. Times are wall-clock (time.time()) instants at irregular
spacing, so onsets fall anywhere within a block and a hop. The onset is
`sound_analysis.onset()` on the captured signal; the error is heard onset - timetag.

With `--untimed` each `/note 60 127` is sent at once, without a timetag, as a player plays: the
"error" is then the control latency as heard (datagram sent → its onset), from outside.

    .ci/jackd && .venv/bin/python benchmarks/bench_onsets_live.py [--notes 20] [--untimed] [--json FILE]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import sound_analysis as sa  # noqa: E402

from aedaemon.client import Client  # noqa: E402

JACK_NO_START_SERVER = 0x01
JACK_PLAYBACK_LATENCY = 1
JACK_PORT_IS_INPUT = 0x1
JACK_PORT_IS_OUTPUT = 0x2


class _Range(ctypes.Structure):
    _fields_ = [("min", ctypes.c_uint32), ("max", ctypes.c_uint32)]


class JackClock:
    """A passive libjack client (opened, never activated): JACK's frame clock and the graph."""

    def __init__(self, name: str) -> None:
        lib = ctypes.CDLL("libjack.so.0")
        vp, cp, u32, u64 = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint64
        lib.jack_client_open.restype = vp
        lib.jack_client_open.argtypes = [cp, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.jack_client_close.argtypes = [vp]
        lib.jack_get_time.restype = u64
        lib.jack_last_frame_time.restype = u32
        lib.jack_last_frame_time.argtypes = [vp]
        lib.jack_frames_to_time.restype = u64
        lib.jack_frames_to_time.argtypes = [vp, u32]
        lib.jack_get_sample_rate.restype = u32
        lib.jack_get_sample_rate.argtypes = [vp]
        lib.jack_get_buffer_size.restype = u32
        lib.jack_get_buffer_size.argtypes = [vp]
        lib.jack_get_ports.restype = ctypes.POINTER(cp)
        lib.jack_get_ports.argtypes = [vp, cp, cp, ctypes.c_ulong]
        lib.jack_port_get_all_connections.restype = ctypes.POINTER(cp)
        lib.jack_port_get_all_connections.argtypes = [vp, vp]
        lib.jack_port_by_name.restype = vp
        lib.jack_port_by_name.argtypes = [vp, cp]
        lib.jack_port_get_latency_range.argtypes = [vp, ctypes.c_int, ctypes.POINTER(_Range)]
        lib.jack_connect.argtypes = [vp, cp, cp]
        lib.jack_disconnect.argtypes = [vp, cp, cp]
        lib.jack_free.argtypes = [vp]
        self.lib = lib
        status = ctypes.c_int()
        self.client = lib.jack_client_open(name.encode(), JACK_NO_START_SERVER, ctypes.byref(status))
        if not self.client:
            raise RuntimeError(f"cannot open a JACK client (status 0x{status.value:x}); is jackd running (.ci/jackd)?")
        self.sample_rate = int(lib.jack_get_sample_rate(self.client))
        self.buffer_size = int(lib.jack_get_buffer_size(self.client))
        # bound methods used in the capture callback (no attribute lookups there)
        self.get_time = lib.jack_get_time
        self.c = self.client

    def _names(self, arr) -> list[str]:
        out: list[str] = []
        if not arr:
            return out
        i = 0
        while arr[i]:
            out.append(arr[i].decode())
            i += 1
        self.lib.jack_free(ctypes.cast(arr, ctypes.c_void_p))
        return out

    def ports(self, pattern: Optional[str] = None, flags: int = 0) -> list[str]:
        return self._names(self.lib.jack_get_ports(self.client, pattern.encode() if pattern else None, None, flags))

    def connections(self, port: str) -> list[str]:
        p = self.lib.jack_port_by_name(self.client, port.encode())
        return self._names(self.lib.jack_port_get_all_connections(self.client, p)) if p else []

    def playback_latency(self, port: str) -> tuple[int, int]:
        p = self.lib.jack_port_by_name(self.client, port.encode())
        if not p:
            raise RuntimeError(f"no JACK port {port}")
        r = _Range()
        self.lib.jack_port_get_latency_range(p, JACK_PLAYBACK_LATENCY, ctypes.byref(r))
        return int(r.min), int(r.max)

    def connect(self, src: str, dst: str) -> None:
        rc = self.lib.jack_connect(self.client, src.encode(), dst.encode())
        if rc not in (0, 17):  # 17: EEXIST
            raise RuntimeError(f"jack_connect {src} -> {dst} failed ({rc})")

    def disconnect(self, src: str, dst: str) -> None:
        self.lib.jack_disconnect(self.client, src.encode(), dst.encode())

    def clients(self) -> set[str]:
        return {p.split(":", 1)[0] for p in self.ports()}

    def close(self) -> None:
        if self.client:
            self.lib.jack_client_close(self.client)
            self.client = None


class Capture:
    """A PyAudio input stream on JACK (mono), with JACK's clock read at every callback."""

    def __init__(self, clock: JackClock, seconds: float) -> None:
        os.environ.setdefault("JACK_NO_START_SERVER", "1")
        import pyaudio

        self.clock = clock
        self.sr = clock.sample_rate
        self.block = clock.buffer_size
        try:  # name our PortAudio JACK client (before PortAudio initialises in this process)
            ctypes.CDLL("libportaudio.so.2").PaJack_SetClientName(f"aeonsets-{os.getpid()}".encode())
        except (OSError, AttributeError):
            pass
        self._pyaudio = pyaudio
        self.pa = pyaudio.PyAudio()
        dev = None
        for i in range(self.pa.get_device_count()):
            d = self.pa.get_device_info_by_index(i)
            api = self.pa.get_host_api_info_by_index(d["hostApi"])["name"]
            if "JACK" in api and d.get("maxInputChannels", 0) > 0:
                dev = i
                break
        if dev is None:
            self.pa.terminate()
            raise RuntimeError("no JACK input device in PortAudio")
        cap = int(seconds * self.sr) + 16 * self.block
        self.audio = np.zeros(cap, dtype=np.float32)
        ncb = cap // self.block + 16
        # per callback: capture index, cycle frame, DLL time of that frame (us), mono before,
        # jack_get_time (us), mono after, frames
        self.cb = np.zeros((ncb, 7), dtype=np.float64)
        self.k = 0
        self.n = 0
        self.overflow = 0
        self.status_flags = 0
        lib, c = clock.lib, clock.c
        last, f2t, gt, mono = lib.jack_last_frame_time, lib.jack_frames_to_time, lib.jack_get_time, time.monotonic
        cont = pyaudio.paContinue

        def callback(in_data, frame_count, time_info, status):
            try:
                t0 = mono()
                jt = gt()
                t1 = mono()
                f = last(c)
                tf = f2t(c, f)
                self.status_flags |= status
                k, n = self.k, self.n
                if k < len(self.cb) and n + frame_count <= len(self.audio):
                    self.audio[n : n + frame_count] = np.frombuffer(in_data, dtype=np.float32)
                    self.cb[k] = (n, f, tf, t0, jt, t1, frame_count)
                    self.k = k + 1
                    self.n = n + frame_count
                else:
                    self.overflow += 1
            except BaseException:  # noqa: BLE001
                self.overflow += 1
            return None, cont

        self.stream = self.pa.open(format=pyaudio.paFloat32, channels=1, rate=self.sr, input=True,
                                   input_device_index=dev, frames_per_buffer=self.block,
                                   stream_callback=callback, start=False)
        self.stream.start_stream()
        name = ctypes.c_char_p()
        try:
            ctypes.CDLL("libportaudio.so.2").PaJack_GetClientName(ctypes.byref(name))
            self.client_name = name.value.decode()
        except (OSError, AttributeError):
            self.client_name = f"aeonsets-{os.getpid()}"
        mine = [p for p in clock.ports(f"^{self.client_name}:", JACK_PORT_IS_INPUT)]
        if not mine:
            raise RuntimeError(f"capture client {self.client_name} has no input port")
        self.port = mine[0]
        for src in clock.connections(self.port):  # PortAudio connected system:capture_*
            clock.disconnect(src, self.port)

    def close(self) -> None:
        try:
            self.stream.stop_stream()
            self.stream.close()
        finally:
            self.pa.terminate()

    def table(self) -> np.ndarray:
        return self.cb[: self.k].copy()


def unix_minus_mono(reads: int = 51) -> float:
    """time.time() - time.monotonic(), the median of back-to-back reads."""
    v = []
    for _ in range(reads):
        a = time.monotonic()
        u = time.time()
        b = time.monotonic()
        v.append(u - 0.5 * (a + b))
    return statistics.median(v)


@dataclass
class Mapping:
    """Frame -> time.monotonic() from the capture callbacks (locally fitted)."""

    cb: np.ndarray  # rows: n, frame, dll_us, mono0, jack_us, mono1, frames
    sr: int

    def __post_init__(self) -> None:
        cb = self.cb
        self.n = cb[:, 0]
        # unwrap the 32-bit frame counter
        f = cb[:, 1].astype(np.int64)
        f = f + np.concatenate([[0], np.cumsum(np.diff(f) < -(1 << 31))]) * (1 << 32)
        self.frame = f.astype(np.float64)
        self.dll = cb[:, 2] * 1e-6
        self.offset = 0.5 * (cb[:, 3] + cb[:, 5]) - cb[:, 4] * 1e-6  # monotonic - jack clock
        self.bracket = cb[:, 5] - cb[:, 3]
        self.cb_delay = cb[:, 3] - (self.dll + self.offset)  # callback's wall time after its cycle start
        self.frame_minus_n = self.frame - self.n

    def lost_cycles(self) -> int:
        d = np.diff(self.frame_minus_n)
        return int(np.count_nonzero(d != 0))

    def local(self, t_mono: float, half: float = 0.5):
        """The fit of the cycles within ±half s of t: (frame -> jack s line, offset, residuals)."""
        tm = self.dll + self.offset
        sel = np.nonzero(np.abs(tm - t_mono) <= half)[0]
        if len(sel) < 20:
            raise ValueError(f"only {len(sel)} capture cycles within {half} s of the note")
        f0 = self.frame[sel[0]]
        x = self.frame[sel] - f0
        a, b = np.polyfit(x, self.dll[sel], 1)  # dll = a*x + b
        resid = self.dll[sel] - (a * x + b)
        good = self.bracket[sel] < np.percentile(self.bracket[sel], 75) + 5e-6
        off = float(np.median(self.offset[sel][good]))
        off_scatter = self.offset[sel][good] - off
        return sel, f0, a, b, off, resid, off_scatter

    def frame_at(self, t_mono: float) -> tuple[float, dict]:
        """The (fractional) graph frame JACK processes at monotonic time t."""
        sel, f0, a, b, off, resid, off_scatter = self.local(t_mono)
        frame = f0 + (t_mono - off - b) / a
        return frame, {"dll_resid_us": resid * 1e6, "offset_scatter_us": off_scatter * 1e6,
                       "rate_ppm": (1.0 / (a * self.sr) - 1.0) * 1e6}

    def index_of_frame(self, frame: float) -> float:
        """The capture index holding graph frame `frame` (from the callback that covers it)."""
        k = int(np.clip(np.searchsorted(self.frame, frame, side="right") - 1, 0, len(self.frame) - 1))
        return frame - self.frame_minus_n[k]


@dataclass
class NoteResult:
    requested_unix: float
    heard_error_ms: Optional[float]
    graph_error_ms: Optional[float]
    silence_peak: float
    steady_rms: float
    index: Optional[int] = None
    first_nonzero_error_ms: Optional[float] = None  # heard, from the first sample after exact silence
    xrun: bool = False  # a cycle was lost (capture) or the daemon counted an underflow around it
    # our capture callback's delay after its cycle start in the cycle the bundle arrived in: the
    # daemon's callback (ahead of ours in the graph) stamps its clock no later than that
    arrival_cb_delay_us: Optional[float] = None


@dataclass
class Result:
    sample_rate: int
    block_jack: int
    playback_latency_frames: int
    daemon_block: int
    hop: int
    untimed: bool = False  # --untimed: plain /note sent at once; the "error" is the control latency
    notes: list[NoteResult] = field(default_factory=list)
    lost_cycles: int = 0
    capture_overflow: int = 0
    capture_status: int = 0
    underflows: int = 0
    late_bundles: int = 0
    dll_resid_us_rms: float = 0.0
    dll_resid_us_max: float = 0.0
    offset_scatter_us_rms: float = 0.0
    offset_scatter_us_max: float = 0.0
    mono_raw_rate_ppm: float = 0.0
    cb_delay_us: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    graph_errors: dict = field(default_factory=dict)
    first_nonzero_errors: dict = field(default_factory=dict)

    def heard(self, clean: bool = True) -> list[float]:
        """Heard onset errors (ms); clean: leave out the notes an xrun moved (counted apart)."""
        return [n.heard_error_ms for n in self.notes if n.heard_error_ms is not None and not (clean and n.xrun)]

    def xrun_notes(self) -> int:
        return sum(n.xrun for n in self.notes)


def _stats(v) -> dict:
    v = np.asarray(v, dtype=np.float64)
    if not len(v):
        return {}
    med = float(np.median(v))
    return {"n": int(len(v)), "median": med, "min": float(v.min()), "max": float(v.max()),
            "spread": float(v.max() - v.min()), "max_dev_from_median": float(np.max(np.abs(v - med))),
            "within_half_ms_of_median": float(np.mean(np.abs(v - med) <= 0.5)),
            "std": float(v.std())}


def find_daemon_ports(clock: JackClock, before: set[str], exclude: set[str], timeout: float = 10.0) -> list[str]:
    """The output ports of the JACK client that appeared since `before` (the daemon's)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        new = sorted(clock.clients() - before - exclude)
        outs = [p for cl in new for p in clock.ports(f"^{cl}:", JACK_PORT_IS_OUTPUT)]
        if len(new) == 1 and outs:
            return outs
        if len(new) > 1:
            raise RuntimeError(f"several new JACK clients appeared, cannot tell the daemon's: {new}")
        time.sleep(0.05)
    raise RuntimeError("the daemon's JACK client did not appear")


def start_daemon(model_dir: Path, work: Path, extra: list[str]) -> tuple[subprocess.Popen, int]:
    exe = Path(sys.executable).parent / "aedaemon"
    head = [str(exe), "run"] if exe.exists() else [sys.executable, "-m", "aedaemon.daemon"]
    cmd = [*head, "--model", model_dir.name, "--models-dir", str(model_dir.parent), "--audio", "portaudio",
           "--port", "0", "--fresh", "--state-dir", str(work / "state"), "--recordings-dir", str(work / "rec"),
           "--log-level", "warning", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AEDAEMON_")}
    err = open(work / "daemon.stderr", "wb")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=work, env=env)
    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(30.0)
    line = box[0] if box else ""
    if not line.startswith("aedaemon ready"):
        proc.kill()
        proc.wait(5)
        raise RuntimeError(f"daemon did not become ready: {line!r}\n{(work / 'daemon.stderr').read_text()}")
    return proc, int(line.split("port=")[1].split()[0])


def measure(model_dir: Path, notes: int = 20, lead: float = 0.2, dur: float = 0.25, gap: float = 0.35,
            extra: Optional[list[str]] = None, seed: int = 9, untimed: bool = False) -> Result:
    subprocess.run([str(REPO / ".ci" / "jackd")], check=True, timeout=60)
    work = Path(tempfile.mkdtemp(prefix="aedaemon-onsets-"))
    rng = np.random.default_rng(seed)
    clock = JackClock(f"aeclock-{os.getpid()}")
    seconds = 4.0 + notes * (lead + dur + gap + 0.1) + 6.0
    cap = None
    proc = None
    try:
        cap = Capture(clock, seconds)
        before = clock.clients()
        proc, port = start_daemon(model_dir, work, list(extra or []))
        outs = find_daemon_ports(clock, before, {cap.client_name, clock_name(clock)})
        clock.connect(outs[0], cap.port)
        playback = [p for p in clock.connections(outs[0]) if p != cap.port]
        lat_port = playback[0] if playback else "system:playback_1"
        lp = clock.playback_latency(lat_port)
        sr = clock.sample_rate
        requested: list[float] = []
        u2m: list[float] = []
        daemon_xrun: list[bool] = []
        sent: list[float] = []
        with Client(port=port, timeout=5.0) as c:
            st = c.status()
            if int(st["sample_rate"]) != sr:
                raise RuntimeError(f"daemon at {st['sample_rate']} Hz, JACK at {sr} Hz")
            c.panic()
            c.sync()
            time.sleep(1.0)  # silence, and a second of capture cycles before the first note
            for i in range(notes):
                c.note_off(60)
                time.sleep(gap)
                u2m.append(unix_minus_mono(11))
                under0 = int(c.status()["underflows"])
                if untimed:  # as a player does: the note now; its onset as heard is the latency
                    time.sleep(float(rng.uniform(0.0, 0.05)))  # anywhere within a block and a hop
                    sent.append(time.monotonic())
                    at = time.time()
                    c.note(60, 127)
                    with c.bundle(at=at + dur) as b:
                        b.note_off(60)
                else:
                    # irregular wall-clock instants: anywhere within a block and a hop
                    at = time.time() + lead + float(rng.uniform(0.0, 0.05))
                    sent.append(time.monotonic())
                    with c.bundle(at=at) as b:
                        b.note(60, 127)
                    with c.bundle(at=at + dur) as b:
                        b.note_off(60)
                requested.append(at)
                time.sleep(max(0.0, at + dur - time.time()) + 0.05)
                daemon_xrun.append(int(c.status()["underflows"]) != under0)
            c.note_off(60)
            time.sleep(1.0)  # capture cycles after the last note
            st1 = c.status()
        table = cap.table()
        res = Result(sample_rate=sr, block_jack=clock.buffer_size, playback_latency_frames=lp[1],
                     daemon_block=int(st["block"]), hop=int(st["hop"]), untimed=untimed)
        res.underflows = int(st1["underflows"])
        res.late_bundles = int(st1["late_bundles"])
    finally:
        if cap is not None:
            cap.close()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        clock.close()
    res.capture_overflow = cap.overflow
    res.capture_status = cap.status_flags
    analyse(res, Mapping(table, sr), cap.audio[: cap.n], requested, statistics.median(u2m), 0.0 if untimed else lead,
            dur, daemon_xrun, sent)
    return res


def clock_name(clock: JackClock) -> str:
    return f"aeclock-{os.getpid()}"


def analyse(res: Result, m: Mapping, x: np.ndarray, requested: list[float], unix_minus_mono_s: float,
            lead: float, dur: float, daemon_xrun: Optional[list[bool]] = None,
            sent: Optional[list[float]] = None) -> None:
    sr = res.sample_rate
    res.lost_cycles = m.lost_cycles()
    jumps = np.nonzero(np.diff(m.frame_minus_n) != 0)[0] + 1
    t_jumps = (m.dll + m.offset)[jumps] if len(jumps) else np.zeros(0)
    resid: list[np.ndarray] = []
    offs: list[np.ndarray] = []
    rates: list[float] = []
    for at in requested:
        t_mono = at - unix_minus_mono_s
        f_req, info = m.frame_at(t_mono)
        resid.append(info["dll_resid_us"])
        offs.append(info["offset_scatter_us"])
        rates.append(info["rate_ppm"])
        i_req = m.index_of_frame(f_req)  # capture index of the graph frame due at the timetag
        a = int(round(i_req - 0.1 * sr))
        b = int(round(i_req + (dur - 0.02) * sr))
        if a < 0 or b > len(x):
            res.notes.append(NoteResult(at, None, None, float("nan"), 0.0))
            continue
        seg = x[a:b]
        steady = sa.rms(x[int(i_req + 0.08 * sr) : int(i_req + 0.18 * sr)])
        found = sa.onset(seg, sr, steady=steady) if steady > 0 else None
        if found is None:
            res.notes.append(NoteResult(at, None, None, float(np.max(np.abs(seg))), steady))
            continue
        idx = a + found
        graph_ms = (idx - i_req) * 1000.0 / sr
        heard_ms = graph_ms + res.playback_latency_frames * 1000.0 / sr
        # cross-check: the daemon outputs exact zeros when silent, so the first non-zero sample
        # after at least 10 ms of zeros is the onset too (onset() may skip a few -60 dB samples)
        nz = np.nonzero(x[a : idx + 1] != 0.0)[0]
        first = None
        if len(nz):
            gaps = np.nonzero(np.diff(np.concatenate([[-sr], nz])) > 0.01 * sr)[0]
            if len(gaps):
                first = a + int(nz[gaps[-1]])
        fz = None if first is None else (first - i_req + res.playback_latency_frames) * 1000.0 / sr
        lost = bool(np.any((t_jumps > t_mono - lead - 0.02) & (t_jumps < t_mono + 0.05)))
        xr = lost or bool(daemon_xrun and daemon_xrun[len(res.notes)])
        wit = None
        if sent:
            k = int(np.searchsorted(m.dll + m.offset, sent[len(res.notes)])) - 1
            wit = float(m.cb_delay[k] * 1e6) if 0 <= k < len(m.cb_delay) else None
        res.notes.append(NoteResult(at, heard_ms, graph_ms, float(np.max(np.abs(x[a:idx]))) if idx > a else 0.0,
                                    steady, idx, fz, xr, wit))
    r = np.concatenate(resid) if resid else np.zeros(1)
    o = np.concatenate(offs) if offs else np.zeros(1)
    res.dll_resid_us_rms = float(np.sqrt(np.mean(r**2)))
    res.dll_resid_us_max = float(np.max(np.abs(r)))
    res.offset_scatter_us_rms = float(np.sqrt(np.mean(o**2)))
    res.offset_scatter_us_max = float(np.max(np.abs(o)))
    res.mono_raw_rate_ppm = float(np.median(rates)) if rates else 0.0
    d = m.cb_delay * 1e6
    res.cb_delay_us = {"min": float(d.min()), "median": float(np.median(d)), "p99": float(np.percentile(d, 99)),
                       "max": float(d.max()), "std": float(d.std())}
    res.errors = _stats(res.heard())
    ok = [n for n in res.notes if not n.xrun]
    res.graph_errors = _stats([n.graph_error_ms for n in ok if n.graph_error_ms is not None])
    res.first_nonzero_errors = _stats([n.first_nonzero_error_ms for n in ok if n.first_nonzero_error_ms is not None])


def report(res: Result) -> str:
    sr = res.sample_rate
    e, g, fz = res.errors, res.graph_errors, res.first_nonzero_errors
    uncomp = (res.daemon_block + res.playback_latency_frames) * 1000.0 / sr
    lines = [
        f"jackd {sr} Hz / {res.block_jack}; system:playback latency {res.playback_latency_frames} frames "
        f"({res.playback_latency_frames * 1000.0 / sr:.2f} ms); daemon block {res.daemon_block}, hop {res.hop}",
        f"clock mapping: JACK DLL residual rms {res.dll_resid_us_rms:.1f} us (max {res.dll_resid_us_max:.1f}); "
        f"monotonic-JACK offset scatter rms {res.offset_scatter_us_rms:.1f} us (max {res.offset_scatter_us_max:.1f}); "
        f"frame rate vs monotonic {res.mono_raw_rate_ppm:+.1f} ppm; lost cycles {res.lost_cycles}",
        f"capture callback after its cycle's DLL time: min {res.cb_delay_us['min']:.0f} median "
        f"{res.cb_delay_us['median']:.0f} p99 {res.cb_delay_us['p99']:.0f} max {res.cb_delay_us['max']:.0f} us "
        f"(std {res.cb_delay_us['std']:.0f}): the error a callback-time mapping would carry",
        f"notes: {len(res.notes)} sent, {len(res.heard(clean=False))} onsets found, {res.xrun_notes()} moved by an "
        f"xrun (left out below: {[round(float(n.heard_error_ms), 2) for n in res.notes if n.xrun and n.heard_error_ms]} ms); "
        f"daemon underflows {res.underflows}, "
        f"late bundles {res.late_bundles}; max |x| before an onset {max((n.silence_peak for n in res.notes), default=0):.2g}",
    ]
    if e and res.untimed:
        lines += [
            f"control latency as heard, untimed /note 60 127 from silence (datagram sent -> its onset at "
            f"system:playback + the rig's declared playback latency): median {e['median']:.2f} ms, p95 "
            f"{float(np.percentile(res.heard(), 95)):.2f}, min {e['min']:.2f}, max {e['max']:.2f} ms",
            f"the same at the JACK graph (the daemon's port buffer, before the dummy driver's "
            f"{res.playback_latency_frames * 1000.0 / sr:.1f} ms): median {g['median']:.2f} ms, "
            f"p95 {float(np.percentile([n.graph_error_ms for n in res.notes if n.graph_error_ms is not None and not n.xrun], 95)):.2f}, "
            f"min {g['min']:.2f}, max {g['max']:.2f} ms",
        ]
    elif e:
        lines += [
            f"onset error as heard (timetag -> sample at system:playback + its latency): median {e['median']:+.3f} ms, "
            f"min {e['min']:+.3f}, max {e['max']:+.3f}, spread {e['spread']:.3f} ms, max |e - median| "
            f"{e['max_dev_from_median']:.3f} ms, {100 * e['within_half_ms_of_median']:.0f} % within ±0.5 ms of it",
            f"per note (heard error ms / our callback delay us in the bundle's arrival cycle): "
            f"{[(round(float(n.heard_error_ms), 2), round(n.arrival_cb_delay_us or 0)) for n in res.notes if n.heard_error_ms]}",
            f"onset error at the JACK graph (the daemon's port buffer): median {g['median']:+.3f} ms",
            f"cross-check, first non-zero sample after silence: median {fz.get('median', float('nan')):+.3f} ms, "
            f"min {fz.get('min', float('nan')):+.3f}, max {fz.get('max', float('nan')):+.3f} (n={fz.get('n', 0)})",
            f"uncompensated output latency (daemon block + playback latency = {res.daemon_block}+"
            f"{res.playback_latency_frames} frames) {uncomp:.3f} ms; median error - that = {e['median'] - uncomp:+.3f} ms",
            f"goal ±0.5 ms: spread {'met' if e['max_dev_from_median'] <= 0.5 else 'NOT met'} around the median; "
            f"absolute {'met' if abs(e['min']) <= 0.5 and abs(e['max']) <= 0.5 else 'NOT met'}",
        ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--notes", type=int, default=20)
    ap.add_argument("--lead", type=float, default=0.2, help="seconds ahead each bundle is sent")
    ap.add_argument("--model", default=str(REPO / "models" / "default"))
    ap.add_argument("--json", default=None, help="write the figures and every note here")
    ap.add_argument("--untimed", action="store_true",
                    help="send each /note at once (no timetag): measures the control latency as heard")
    args, extra = ap.parse_known_args()
    res = measure(Path(args.model).resolve(), notes=args.notes, lead=args.lead, extra=extra, untimed=args.untimed)
    print(report(res))
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(res), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
