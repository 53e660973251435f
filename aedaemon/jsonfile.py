"""Reading JSON files with one-line errors (model.json, scores)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
