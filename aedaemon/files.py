"""Files the daemon and the tools read and write: one-line errors on read, atomic durable writes.

An atomic write goes to a temp file in the same folder, is fsynced, renamed over the target and
the folder fsynced: a reader (or a restart after kill -9) sees the old content or the new, never
a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import AedaemonError


def read_json(path: Path, error: type[AedaemonError], label: str = "") -> Any:
    """Parse a JSON file; any problem raises `error` with one line naming the file."""
    name = f"{label} {path}".strip()
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{name} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {name}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{name} is not valid JSON: {exc.msg} at line {exc.lineno}") from None


def read_toml(path: Path, error: type[AedaemonError], label: str) -> dict:
    """Parse a TOML file; any problem raises `error` with one line naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise error(f"{label} {path} not found") from None
    except IsADirectoryError:
        raise error(f"{label} {path} is a directory") from None
    except PermissionError:
        raise error(f"{label} {path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not UTF-8 text") from None


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in `folder` durable (best effort: not every filesystem allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temp path to write `path`'s new content to; it replaces `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    """Replace `path` with `data` (str is written as UTF-8) atomically and durably."""
    with atomic_path(path, mode) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def atomic_write_with(path: Path, writer: Callable[[Path], None], mode: int = 0o644) -> None:
    """Like atomic_write, for libraries that write to a path themselves (numpy, soundfile)."""
    with atomic_path(path, mode) as tmp:
        writer(tmp)
