"""The audio device process: a PortAudio stream whose callback only copies out of the shared ring.

The daemon runs this as a child process (`python -m aedaemon.devicechild FD JSON`): FD is a
memfd holding the ring (aedaemon/ringbuffer.py), JSON the stream's settings. Why a process:

* a device that vanishes (jackd killed, a USB card unplugged) can leave PortAudio hung inside
  Pa_StopStream / Pa_Terminate for good, and a process cannot initialise PortAudio again until
  it terminated; a child is simply killed and a new one started when the device is back;
* the callback needs a Python interpreter (PyAudio); in its own process it never waits for the
  daemon's GIL, whatever the network thread, a model load or the garbage collector is doing.

Protocol on stdin/stdout, one JSON object per line: the child opens the stream (not started)
and says {"ok": true, "device": {...}, "channels": n, "latency": s} or {"ok": false, "error":
"..."}; then "start" starts it; "stop" or end of input (the daemon is gone) ends the process.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import sys
import time
from typing import Any, Optional

import numpy as np

from .ringbuffer import (H_CALLBACKS, H_LATENCY_NS, H_RING_UNDERRUNS, H_RT, H_UNDERFLOWS, Ring,
                         buffer_bytes)

PA_OUTPUT_UNDERFLOW = 0x00000004  # paOutputUnderflow


@contextlib.contextmanager
def quiet_stderr():
    """PortAudio's ALSA probing prints pages of noise on fd 2; keep the journal readable."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def output_devices(pa) -> list[dict]:
    out = []
    for i in range(pa.get_device_count()):
        try:
            d = pa.get_device_info_by_index(i)
            api = pa.get_host_api_info_by_index(d["hostApi"])["name"]
        except Exception:  # noqa: BLE001
            continue
        if d.get("maxOutputChannels", 0) > 0:
            out.append({"index": i, "name": d["name"], "channels": d["maxOutputChannels"], "api": api,
                        "default_rate": d.get("defaultSampleRate")})
    return out


def describe_devices(devices: list[dict]) -> str:
    if not devices:
        return "no output devices at all (is a sound card or jackd present? use --audio null on headless hosts)"
    return "output devices: " + "; ".join(f"[{d['index']}] {d['name']} ({d['api']}, {d['channels']} ch)" for d in devices)


def choose_device(pa, device: Optional[int | str]) -> dict:
    devices = output_devices(pa)
    if not devices:
        raise LookupError(f"no audio output device: {describe_devices(devices)}")
    if device is None:
        try:
            idx = pa.get_default_output_device_info()["index"]
            for d in devices:
                if d["index"] == idx:
                    return d
        except (IOError, OSError):
            pass
        return devices[0]
    if isinstance(device, int):
        for d in devices:
            if d["index"] == device:
                return d
        raise LookupError(f"output device {device} does not exist; {describe_devices(devices)}")
    want = str(device).lower()
    exact = [d for d in devices if d["name"].lower() == want]
    part = exact or [d for d in devices if want in d["name"].lower()]
    if not part:
        raise LookupError(f"no output device matches '{device}'; {describe_devices(devices)}")
    return part[0]


def _set_realtime(priority: int) -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(max(1, min(99, priority))))
        return True
    except (OSError, AttributeError, ValueError):
        return False


def _pin_thread_state() -> None:
    """Keep this (PortAudio-owned) thread's Python thread state alive between callbacks.

    PyAudio enters Python with PyGILState_Ensure/Release on every callback; on a foreign thread
    that creates and destroys a thread state each time. One extra Ensure that is never released
    keeps the state, so each callback only takes and drops the GIL."""
    try:
        import ctypes

        ctypes.pythonapi.PyGILState_Ensure.restype = ctypes.c_int
        ctypes.pythonapi.PyGILState_Ensure()
    except Exception:  # noqa: BLE001
        pass


class DeviceStream:
    """The callback side: ring → device, stamps and counters into the shared header."""

    def __init__(self, ring: Ring, block: int, sample_rate: int, channels: int, rt_priority: int) -> None:
        import pyaudio

        self.ring = ring
        self.block = block
        self.sample_rate = sample_rate
        self.channels = channels
        self.rt_priority = rt_priority
        self._continue = pyaudio.paContinue
        cap = max(block, 8192)
        self._mono = np.zeros(cap, dtype=np.float32)
        self._multi = np.zeros((cap, channels), dtype=np.float32)
        self._rt_tried = False
        self._last = ring.stamp()

    def callback(self, in_data, frame_count, time_info, status):
        try:
            h = self.ring.header
            if not self._rt_tried:
                self._rt_tried = True
                h[H_RT] = int(_set_realtime(self.rt_priority)) if self.rt_priority > 0 else 0
                _pin_thread_state()
            if status & PA_OUTPUT_UNDERFLOW:
                h[H_UNDERFLOWS] += 1
            n = frame_count
            if n > len(self._mono):  # never expected with a fixed frames_per_buffer
                self._mono = np.zeros(n, dtype=np.float32)
                self._multi = np.zeros((n, self.channels), dtype=np.float32)
            mono = self._mono
            k = self.ring.read_into(mono, n)
            if k < n:
                mono[k:n] = 0.0
                h[H_RING_UNDERRUNS] += 1
            if h[H_CALLBACKS] < 16:  # PortAudio's own view of when this buffer is heard
                self._measure_latency(time_info)
            h[H_CALLBACKS] += 1
            pos = self.ring.read_pos
            t = self._stamp_time(pos, k < n)
            self.ring.set_stamp(pos, t)
            self._last = (pos, t)
            if self.channels == 1:
                return mono[:n].tobytes(), self._continue
            multi = self._multi
            multi[:n] = mono[:n, None]
            return multi[:n].tobytes(), self._continue
        except BaseException:  # noqa: BLE001 - nothing may escape into PortAudio
            return bytes(4 * frame_count * self.channels), self._continue

    def _measure_latency(self, time_info) -> None:
        """latency = the block just handed over + how long until its first sample is heard
        (outputBufferDacTime − currentTime: 512 frames on the jackd dummy rig, where
        get_output_latency() says 256)."""
        try:
            lead = float(time_info["output_buffer_dac_time"]) - float(time_info["current_time"])
        except (KeyError, TypeError, ValueError):
            return
        if 0.0 <= lead < 1.0:
            self.ring.header[H_LATENCY_NS] = int((self.block / self.sample_rate + lead) * 1e9)

    def _stamp_time(self, pos: int, short: bool) -> float:
        """The callback's time on the device clock: a callback is only ever woken late, so
        follow the lower envelope of the stamps — the time predicted from the previous one at
        the device's rate, allowing a slow drift — and resynchronise on an underrun, an xrun or
        a callback that came early."""
        now = time.monotonic()
        pos0, t0 = self._last
        predicted = t0 + (pos - pos0) / self.sample_rate
        late = now - predicted
        if short or late < 0.0 or late > 0.5 * self.block / self.sample_rate:
            return now
        return predicted + min(late, 2e-5)


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    fd, settings = int(argv[0]), json.loads(argv[1])
    size = int(settings["ring_size"])
    mem = mmap.mmap(fd, buffer_bytes(size))
    ring = Ring(size, memoryview(mem))
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        import pyaudio

        with quiet_stderr():
            pa = pyaudio.PyAudio()
        device = choose_device(pa, settings.get("device"))
        channels = max(1, min(2, int(device["channels"])))
        block, rate = int(settings["block"]), int(settings["sample_rate"])
        dev = DeviceStream(ring, block, rate, channels, int(settings.get("rt_priority", 0)))
        try:
            with quiet_stderr():
                stream = pa.open(format=pyaudio.paFloat32, channels=channels, rate=rate, output=True,
                                 output_device_index=device["index"], frames_per_buffer=block,
                                 stream_callback=dev.callback, start=False)
        except Exception as exc:  # noqa: BLE001
            raise LookupError(f"cannot open output device [{device['index']}] {device['name']} at {rate} Hz, "
                              f"{channels} ch, block {block}: {exc}; {describe_devices(output_devices(pa))}") from None
        latency = block / rate + float(stream.get_output_latency())
    except Exception as exc:  # noqa: BLE001 - the daemon reports it (and may try again later)
        _say({"ok": False, "error": str(exc) or type(exc).__name__})
        return 1
    _say({"ok": True, "device": device, "channels": channels, "latency": latency,
          "output_latency": float(stream.get_output_latency())})
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "start":
            ring.set_stamp(ring.read_pos, time.monotonic())
            stream.start_stream()
        elif cmd == "stop":
            break
    # the daemon is gone or asked us to stop: stop cleanly if the device lets us, but never hang
    # (PortAudio can block forever on a dead JACK server): the parent kills us after a second
    with contextlib.suppress(Exception):
        stream.stop_stream()
        stream.close()
        pa.terminate()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
