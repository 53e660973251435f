"""WAV recording tap: the render thread hands each hop to a queue; a writer thread encodes
24-bit PCM with the stdlib `wave` module. Nothing here runs on the audio callback."""

from __future__ import annotations

import datetime as _dt
import logging
import queue
import re
import threading
import wave
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import ParameterError

log = logging.getLogger("aedaemon.recorder")

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.wav)?$")
_STOP = object()


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

    @property
    def active(self) -> bool:
        return self._active

    def tap(self, x: np.ndarray) -> None:
        """Called on the render thread with each hop (copied: the engine reuses its buffer)."""
        if self._active:
            self._q.put(np.array(x, dtype=np.float32, copy=True))

    def start(self, name: Optional[str] = None) -> Path:
        if self._active:
            raise ParameterError(f"already recording to {self.path.name if self.path else '?'}")
        if name is None or name == "":
            name = _dt.datetime.now().strftime("rec-%Y%m%d-%H%M%S")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise ParameterError("recording name must match [A-Za-z0-9_-]{1,64} (a name, never a path)")
        stem = name[:-4] if name.endswith(".wav") else name
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ParameterError(f"cannot create {self.folder}: {exc.strerror or exc}") from None
        path = self.folder / f"{stem}.wav"
        i = 1
        while path.exists():
            path = self.folder / f"{stem}-{i}.wav"
            i += 1
        try:
            w = wave.open(str(path), "wb")
        except OSError as exc:
            raise ParameterError(f"cannot create {path.name}: {exc.strerror or exc}") from None
        w.setnchannels(1)
        w.setsampwidth(3)
        w.setframerate(self.sample_rate)
        self.path = path
        self.frames = 0
        self.error = None
        self._q = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, args=(w, self._q), name="recorder", daemon=True)
        self._thread.start()
        self._active = True
        log.info("recording to %s", path)
        return path

    def stop(self) -> str:
        if not self._active:
            raise ParameterError("not recording")
        self._active = False
        self._q.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        name = self.path.name if self.path else ""
        log.info("recorded %s (%.1f s)", name, self.frames / self.sample_rate)
        if self.error:
            raise ParameterError(f"recording failed: {self.error}")
        return name

    def _write(self, w: wave.Wave_write, q: "queue.SimpleQueue") -> None:
        try:
            while True:
                x = q.get()
                if x is _STOP:
                    break
                if self.error:
                    continue
                pcm = (np.clip(x, -1.0, 1.0) * 8388607.0).astype("<i4")
                try:
                    w.writeframesraw(pcm.view(np.uint8).reshape(-1, 4)[:, :3].tobytes())
                    self.frames += len(x)
                except OSError as exc:
                    self.error = exc.strerror or str(exc)
                    log.error("recording write failed: %s", exc)
        finally:
            try:
                w.close()
            except OSError as exc:
                self.error = self.error or str(exc)
