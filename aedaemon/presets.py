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
import math
import os
import re
import threading
from pathlib import Path
from typing import Any, Optional

from .errors import AedaemonError, ParameterError
from .files import atomic_write, fsync_dir

log = logging.getLogger("aedaemon.presets")

PRESET_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # fullmatch only: `$` accepts "name\n"
LAST_STATE = "last_state.json"
LOCK_FILE = "aedaemon.lock"
FORMAT = 1
_DELETED = object()  # a pending delete in PresetStore._pending


def check_name(name: Any, what: str = "preset") -> str:
    if not isinstance(name, str) or PRESET_NAME_RE.fullmatch(name) is None:
        raise ParameterError(f"{what} name must match [A-Za-z0-9_-]{{1,64}} (a name, never a path)")
    return name


# the numeric fields of a saved state: (key, how many numbers; 0 = one number)
_NUMBERS = (("latent", -1), ("scale", -1), ("chroma", 12), ("transpose", 0), ("tune", 0), ("freq_shift", 0),
            ("gain", 0), ("glide", 0), ("tilt", 0), ("velocity", 0), ("pitch", 0))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def state_problems(state: dict) -> list[str]:
    """The fields of a saved state that are not finite numbers (JSON allows Infinity, NaN and
    1e999, which Python reads as inf): `freq_shift: inf`, `chroma: [inf, ...]`, ..."""
    bad = []
    for key, n in _NUMBERS:
        if key not in state or (key == "pitch" and state[key] is None):
            continue
        v = state[key]
        if n == 0:
            ok = _finite(v)
        else:
            ok = isinstance(v, list) and (n < 0 or len(v) == n) and all(_finite(x) for x in v)
            if ok and key == "chroma":
                ok = all(x >= 0 for x in v) and 0 < sum(v) < math.inf
        if not ok:
            text = json.dumps(v, allow_nan=True) if isinstance(v, (int, float, list)) else type(v).__name__
            bad.append(f"{key}: {text[:60]}")
    return bad


def sanitize_state(state: dict, where: str) -> dict:
    """The state without its non-finite fields (each is then left at its current value), and
    one warning line naming them; start-up goes on sounding with the rest."""
    bad = state_problems(state)
    if not bad:
        return state
    log.warning("%s: ignoring fields that are not finite numbers (%s); they keep their defaults", where,
                "; ".join(bad))
    drop = {b.split(":", 1)[0] for b in bad}
    return {k: v for k, v in state.items() if k not in drop}


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
    def __init__(self, state_dir: Path, max_presets: int = 1000) -> None:
        self.state_dir = Path(state_dir)
        self.max_presets = max_presets
        # saves and deletes accepted but not on disk yet (written off the network thread):
        # name -> state, or _DELETED; a load, list or save sees them as if done
        self._pending: dict[str, Any] = {}
        self._pending_lock = threading.Lock()
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
        body = json.dumps({"format": FORMAT, "name": name, "state": state}, sort_keys=True, indent=1,
                          allow_nan=False)
        try:
            atomic_write(p, body.encode("utf-8") + b"\n")
        except OSError as exc:
            raise ParameterError(f"cannot write preset '{name}': {exc.strerror or exc}") from None
        except ValueError:  # never write Infinity or NaN
            raise ParameterError(f"cannot save preset '{name}': the state holds a non-finite number") from None
        return p

    def check_room(self, name: str) -> None:
        """Refuse a new preset beyond max_presets (overwriting one is always fine)."""
        if self._exists(name):
            return
        if len(self.list()) >= self.max_presets:
            raise ParameterError(f"{self.max_presets} presets already (max_presets): delete some first")

    def _exists(self, name: str) -> bool:
        with self._pending_lock:
            pending = self._pending.get(name)
        if pending is not None:
            return pending is not _DELETED
        return self.path(name).is_file()

    # writes accepted on one thread and done on another: what the network thread sees meanwhile
    def pend_save(self, name: str, state: dict) -> object:
        token = dict(state)
        with self._pending_lock:
            self._pending[name] = token
        return token

    def pend_delete(self, name: str) -> object:
        if not self._exists(name):
            raise ParameterError(f"no preset named '{name}'")
        with self._pending_lock:
            self._pending[name] = _DELETED
        return _DELETED

    def settle(self, name: str, token: object) -> None:
        """The pending write of `name` is on disk (or failed): forget it unless another came since."""
        with self._pending_lock:
            if self._pending.get(name) is token:
                del self._pending[name]

    def load(self, name: str) -> dict:
        p = self.path(name)
        with self._pending_lock:
            pending = self._pending.get(name)
        if pending is _DELETED:
            raise ParameterError(f"no preset named '{name}'")
        if pending is not None:
            return dict(pending)
        if not p.is_file():
            raise ParameterError(f"no preset named '{name}'")
        state = _read_json(p)
        if state is None:
            raise ParameterError(f"preset '{name}' is unreadable")
        bad = state_problems(state)
        if bad:
            log.warning("preset '%s' not loaded: fields that are not finite numbers (%s)", name, "; ".join(bad))
            raise ParameterError(f"preset '{name}' holds values that are not finite numbers ({'; '.join(bad)})")
        return state

    def list(self) -> list[str]:
        names = {p.stem for p in self.presets_dir.glob("*.json")
                 if PRESET_NAME_RE.fullmatch(p.stem) and p.is_file()}
        with self._pending_lock:
            for name, pending in self._pending.items():
                if pending is _DELETED:
                    names.discard(name)
                else:
                    names.add(name)
        return sorted(names)

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
        body = json.dumps({"format": FORMAT, "state": state}, sort_keys=True, indent=1, allow_nan=False)
        if not force and body == self._last_saved:
            return False
        atomic_write(self.last_path, body.encode("utf-8") + b"\n")
        self._last_saved = body
        return True

    def load_last(self) -> Optional[dict]:
        """The last state, without fields that are not finite numbers (logged)."""
        state = _read_json(self.last_path)
        if state is not None:
            state = sanitize_state(state, str(self.last_path))
            self._last_saved = json.dumps({"format": FORMAT, "state": state}, sort_keys=True, indent=1)
        return state
