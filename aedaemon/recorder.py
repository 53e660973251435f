"""WAV recording tap: the render thread hands each hop to a queue; a writer thread encodes
24-bit PCM. Nothing here runs on the audio callback.

The file's header is kept current: after each block of samples is written, the RIFF and data
sizes are rewritten in place (two pwrites), so a file left by kill -9 or a power cut plays up
to its last block. Files whose header still disagrees with their length (a crash between the
two writes, or an older version) are repaired when the daemon starts (`repair_recordings`).

A timetagged /record/start or /record/stop is sample-accurate: the file is opened when the
message arrives, and the tap keeps exactly the samples from the start's sample time up to,
not including, the stop's (`clock` tells the tap where the hop it is given ends). A stop
that is scheduled leaves the file to be finished by the writer thread once the tap has
passed it; a write error found then goes to the `fail` callback given with the stop.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import queue
import re
import struct
import threading
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .errors import ParameterError

log = logging.getLogger("aedaemon.recorder")

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}(\.wav)?")  # fullmatch only: `$` accepts "name\n"
_STOP = object()
_HEADER = 44
_WIDTH = 3  # 24-bit mono


def _wav_header(sample_rate: int, data_bytes: int) -> bytes:
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * _WIDTH, _WIDTH, 8 * _WIDTH)
            + b"data" + struct.pack("<I", data_bytes))


class _WavFile:
    """Mono 24-bit PCM whose header always counts the samples written so far."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self.data_bytes = 0
        os.write(self.fd, _wav_header(sample_rate, 0))

    def write(self, pcm: bytes) -> None:
        view = memoryview(pcm)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.data_bytes += len(pcm)
        # after the samples: a header never counts more than the file holds
        os.pwrite(self.fd, struct.pack("<I", 36 + self.data_bytes), 4)
        os.pwrite(self.fd, struct.pack("<I", self.data_bytes), 40)

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def repair_recordings(folder: Path) -> list[str]:
    """Fix the header of every WAV in `folder` that counts fewer samples than the file holds
    (left by a crash); returns the names repaired (each logged)."""
    fixed = []
    try:
        paths = sorted(Path(folder).glob("*.wav"))
    except OSError:
        return fixed
    for path in paths:
        try:
            with open(path, "r+b") as fh:
                head = fh.read(_HEADER)
                if len(head) < _HEADER or head[:4] != b"RIFF" or head[8:12] != b"WAVE" or head[36:40] != b"data":
                    continue
                fmt = struct.unpack_from("<IHHIIHH", head, 16)
                align = fmt[5] or 1
                size = os.fstat(fh.fileno()).st_size
                actual = (size - _HEADER) // align * align
                said = struct.unpack_from("<I", head, 40)[0]
                if actual <= said:
                    continue
                fh.seek(4)
                fh.write(struct.pack("<I", 36 + actual))
                fh.seek(40)
                fh.write(struct.pack("<I", actual))
        except OSError as exc:
            log.warning("cannot check recording %s: %s", path, exc)
            continue
        log.warning("recording %s was not closed (a crash?): header said %d frames, %d are on disk; repaired",
                    path.name, said // align, actual // align)
        fixed.append(path.name)
    return fixed


class Recorder:
    def __init__(self, folder: Path, sample_rate: int) -> None:
        self.folder = Path(folder)
        self.sample_rate = int(sample_rate)
        self._q: "queue.SimpleQueue" = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._active = False
        self.path: Optional[Path] = None
        self.frames = 0
        self.error: Optional[str] = None
        # the engine sample at which the hop handed to tap ends (the daemon sets it); without
        # one, timetags are ignored and the recording starts and stops with whole hops
        self.clock: Optional[Callable[[], int]] = None
        self._from: Optional[int] = None  # first sample kept (None: the next hop's first)
        self._until: Optional[int] = None  # first sample not kept (None: until stop())
        self._on_error: Optional[Callable[[str], None]] = None

    @property
    def active(self) -> bool:
        """Recording, or scheduled to: a /record/start now is refused, a /record/stop accepted."""
        return self._active

    def tap(self, x: np.ndarray) -> None:
        """Called on the render thread with each hop (copied: the engine reuses its buffer)."""
        if not self._active:
            return
        lo, hi = 0, len(x)
        start, until, clock = self._from, self._until, self.clock
        if clock is not None and (start is not None or until is not None):
            end = int(clock())
            begin = end - len(x)
            if start is not None:
                lo = min(hi, max(0, start - begin))
            if until is not None:
                hi = max(0, min(hi, until - begin))
            if until is not None and end >= until:
                if hi > lo:
                    self._q.put(np.array(x[lo:hi], dtype=np.float32, copy=True))
                self._active = False  # the writer thread closes the file
                self._q.put(_STOP)
                return
        if hi > lo:
            self._q.put(np.array(x[lo:hi], dtype=np.float32, copy=True))

    def start(self, name: Optional[str] = None, at: Optional[int] = None) -> Path:
        """Open the file now; record from the next hop, or from sample `at` exactly."""
        if self._active:
            when = " (a scheduled stop has not come yet)" if self._until is not None else ""
            raise ParameterError(f"already recording to {self.path.name if self.path else '?'}{when}")
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5.0)  # the previous take, stopped on schedule, still closing
        if name is None or name == "":
            name = _dt.datetime.now().strftime("rec-%Y%m%d-%H%M%S")
        if not isinstance(name, str) or NAME_RE.fullmatch(name) is None:
            raise ParameterError("recording name must match [A-Za-z0-9_-]{1,64} (a name, never a path)")
        stem = name[:-4] if name.endswith(".wav") else name
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ParameterError(f"cannot create {self.folder}: {exc.strerror or exc}") from None
        path = self.folder / f"{stem}.wav"
        i = 1
        while True:
            try:
                w = _WavFile(path, self.sample_rate)
                break
            except FileExistsError:
                path = self.folder / f"{stem}-{i}.wav"
                i += 1
            except OSError as exc:
                raise ParameterError(f"cannot create {path.name}: {exc.strerror or exc}") from None
        self.path = path
        self.frames = 0
        self.error = None
        self._from, self._until, self._on_error = (at if self.clock is not None else None), None, None
        self._q = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, args=(w, self._q), name="recorder", daemon=True)
        self._thread.start()
        self._active = True
        log.info("recording to %s", path)
        return path

    def stop(self, at: Optional[int] = None, fail: Optional[Callable[[str], None]] = None) -> str:
        """Stop now (waits for the file to be complete), or keep the samples before `at` and
        let the writer thread finish the file then (a write error goes to fail(reason))."""
        if not self._active:
            raise ParameterError("not recording")
        if at is not None and self.clock is not None:
            if self._until is not None:
                raise ParameterError(f"a stop is already scheduled for {self.path.name if self.path else '?'}")
            if self._from is not None and at <= self._from:
                raise ParameterError("/record/stop is timed before its recording starts")
            self._on_error = fail
            self._until = int(at)
            return self.path.name if self.path else ""
        self._on_error = None  # reported here, by raising
        self._active = False
        self._q.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        name = self.path.name if self.path else ""
        log.info("recorded %s (%.1f s)", name, self.frames / self.sample_rate)
        if self.error:
            raise ParameterError(f"recording failed: {self.error}")
        return name

    def _write(self, w: _WavFile, q: "queue.SimpleQueue") -> None:
        try:
            while True:
                x = q.get()
                if x is _STOP:
                    break
                if self.error:
                    continue
                pcm = (np.clip(x, -1.0, 1.0) * 8388607.0).astype("<i4")
                try:
                    w.write(pcm.view(np.uint8).reshape(-1, 4)[:, :3].tobytes())
                    self.frames += len(x)
                except OSError as exc:
                    self.error = exc.strerror or str(exc)
                    log.error("recording write failed: %s", exc)
        finally:
            try:
                w.close()
            except OSError as exc:
                self.error = self.error or str(exc)
            if self._on_error is not None:  # a stop on schedule: nobody waits for this thread
                name = self.path.name if self.path else ""
                if self.error:
                    self._on_error(f"recording {name} failed: {self.error}")
                else:
                    log.info("recorded %s (%.1f s)", name, self.frames / self.sample_rate)
