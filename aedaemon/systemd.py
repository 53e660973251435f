"""Running under systemd: log lines journald files at their level, and sd_notify(3).

Outside systemd the same logs are ordinary time-stamped stderr lines, and notifications are
no-ops.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Optional

log = logging.getLogger("aedaemon")


class _JournalFormatter(logging.Formatter):
    """`<priority>message` lines: journald files them with the right level, no double time."""

    PRIO = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        prio = self.PRIO.get(record.levelno, 6)
        return f"<{prio}>" + super().format(record).replace("\n", "\n" + f"<{prio}>")


def setup_logging(level: str) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_aedaemon", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._aedaemon = True  # type: ignore[attr-defined]
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())


class SdNotify:
    """sd_notify(3) by hand: one datagram per state to $NOTIFY_SOCKET (no dependency)."""

    def __init__(self) -> None:
        addr = os.environ.get("NOTIFY_SOCKET", "")
        self.sock: Optional[socket.socket] = None
        self.addr = ""
        if addr:
            self.addr = "\0" + addr[1:] if addr.startswith("@") else addr
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except OSError as exc:
                log.warning("cannot create sd_notify socket: %s", exc)
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        self.watchdog_interval: Optional[float] = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1e6 / 2.0

    def send(self, msg: str) -> bool:
        if self.sock is None:
            return False
        try:
            self.sock.sendto(msg.encode(), self.addr)
            return True
        except OSError as exc:
            log.debug("sd_notify %s failed: %s", msg, exc)
            return False
