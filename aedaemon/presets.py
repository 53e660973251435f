"""Named presets and the last state, written atomically in the state directory.

    state_dir/presets/NAME.json    one per /preset/save
    state_dir/last_state.json      the sound state, written whenever it changed (checked every
                                   `state_interval` seconds) and on shutdown
    state_dir/aedaemon.lock        flock'ed by the daemon using the folder (holds its pid)

Every write is: a temp file in the same folder, write, flush, fsync, rename over the target,
fsync the folder. A reader therefore sees either the old or the new file, never a half-written
one, and an acknowledged save (the /done reply is sent after the folder fsync) survives a
kill -9 or a power cut. Leftover temp files from an interrupted write are ignored and removed.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Optional

from .errors import AedaemonError, ParameterError
from .files import atomic_write, fsync_dir

log = logging.getLogger("aedaemon.presets")

PRESET_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LAST_STATE = "last_state.json"
LOCK_FILE = "aedaemon.lock"
FORMAT = 1


def check_name(name: Any, what: str = "preset") -> str:
    if not isinstance(name, str) or not PRESET_NAME_RE.match(name):
        raise ParameterError(f"{what} name must match [A-Za-z0-9_-]{{1,64}} (a name, never a path)")
    return name


def _read_json(path: Path) -> Optional[dict]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("state"), dict):
        log.warning("ignoring %s: not a saved state", path)
        return None
    return raw["state"]


class StateLock:
    """An exclusive lock on a state folder, held for as long as the daemon runs.

    Two daemons sharing one state_dir would overwrite each other's last state, and each would
    delete the other's in-flight temp files at start. flock is released by the kernel when the
    process dies (kill -9 included), so a lock file left behind never blocks a restart; the
    file is therefore never deleted, only its pid line rewritten.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: Optional[int] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder()
            self.release()
            raise AedaemonError(
                f"{self.path.parent}/ is in use by another aedaemon ({holder}); use --state-dir"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def _holder(self) -> str:
        try:
            pid = os.pread(self._fd, 32, 0).decode("ascii").strip()
        except (OSError, UnicodeDecodeError):
            pid = ""
        return f"pid {pid}" if pid.isdigit() else "pid unknown"

    def release(self) -> None:
        """Unlock (closing the descriptor drops the flock); idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PresetStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.presets_dir = self.state_dir / "presets"
        self.presets_dir.mkdir(parents=True, exist_ok=True)
        for stale in list(self.presets_dir.glob(".*.tmp")) + list(self.state_dir.glob(".*.tmp")):
            try:
                stale.unlink()
            except OSError:
                pass
        self._last_saved: Optional[str] = None

    # -- named presets
    def path(self, name: str) -> Path:
        return self.presets_dir / f"{check_name(name)}.json"

    def save(self, name: str, state: dict) -> Path:
        p = self.path(name)
        body = json.dumps({"format": FORMAT, "name": name, "state": state}, sort_keys=True, indent=1)
        try:
            atomic_write(p, body.encode("utf-8") + b"\n")
        except OSError as exc:
            raise ParameterError(f"cannot write preset '{name}': {exc.strerror or exc}") from None
        return p

    def load(self, name: str) -> dict:
        p = self.path(name)
        if not p.is_file():
            raise ParameterError(f"no preset named '{name}'")
        state = _read_json(p)
        if state is None:
            raise ParameterError(f"preset '{name}' is unreadable")
        return state

    def list(self) -> list[str]:
        return sorted(
            p.stem for p in self.presets_dir.glob("*.json") if PRESET_NAME_RE.match(p.stem) and p.is_file()
        )

    def delete(self, name: str) -> None:
        p = self.path(name)
        try:
            p.unlink()
        except FileNotFoundError:
            raise ParameterError(f"no preset named '{name}'") from None
        except OSError as exc:
            raise ParameterError(f"cannot delete preset '{name}': {exc.strerror or exc}") from None
        fsync_dir(self.presets_dir)

    # -- last state
    @property
    def last_path(self) -> Path:
        return self.state_dir / LAST_STATE

    def save_last(self, state: dict, force: bool = False) -> bool:
        """Write the last state if it changed since the previous write; True when written."""
        body = json.dumps({"format": FORMAT, "state": state}, sort_keys=True, indent=1)
        if not force and body == self._last_saved:
            return False
        atomic_write(self.last_path, body.encode("utf-8") + b"\n")
        self._last_saved = body
        return True

    def load_last(self) -> Optional[dict]:
        state = _read_json(self.last_path)
        if state is not None:
            self._last_saved = json.dumps({"format": FORMAT, "state": state}, sort_keys=True, indent=1)
        return state
