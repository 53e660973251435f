"""Run the real daemon as a subprocess for tests: real PortAudio on the jackd dummy backend
(started here when missing, as `make test` does), real sockets, a port chosen by the daemon
(`--port 0`, read back from its `aedaemon ready port=N` line)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent


def ensure_jackd() -> None:
    r = subprocess.run([str(REPO / ".ci" / "jackd")], capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f".ci/jackd failed: {r.stderr}")


class Daemon:
    def __init__(self, workdir: Path, models_dir: Path, *args: str, model: Optional[str] = "synthetic",
                 audio: str = "portaudio", env: Optional[dict] = None, config: Optional[Path] = None,
                 entry: str = "daemon") -> None:
        if audio == "portaudio":
            ensure_jackd()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.workdir / "state"
        self.recordings_dir = self.workdir / "recordings"
        # entry "daemon": python -m aedaemon.daemon; "cli": the installed `aedaemon run` (same main())
        head = [sys.executable, "-m", "aedaemon.daemon"] if entry == "daemon" else [
            str(Path(sys.executable).parent / "aedaemon"), "run"]
        cmd = [*head, *(["--model", model] if model else []), "--models-dir", str(models_dir),
               "--state-dir", str(self.state_dir), "--recordings-dir", str(self.recordings_dir),
               "--audio", audio, "--port", "0"]
        if config is not None:
            cmd += ["--config", str(config)]
        cmd += list(args)
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("AEDAEMON_")}
        full_env.update(env or {})
        self.stderr_path = self.workdir / "daemon.stderr"
        self._stderr = open(self.stderr_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, cwd=self.workdir,
                                     env=full_env, text=True)
        self.port = 0
        self.ready_s = 0.0
        self._wait_ready()

    def _wait_ready(self, timeout: float = 15.0) -> None:
        line_box: list[str] = []

        def read() -> None:
            line_box.append(self.proc.stdout.readline())

        t = threading.Thread(target=read, daemon=True)
        t.start()
        t.join(timeout)
        line = line_box[0] if line_box else ""
        if not line.startswith("aedaemon ready"):
            self.kill()
            raise RuntimeError(f"daemon did not become ready: {line!r}\n{self.stderr()}")
        fields = dict(kv.split("=") for kv in line.split()[2:])
        self.port = int(fields["port"])
        self.ready_s = float(fields["ready_s"])
        self.ready_wall = time.monotonic() - self.t0

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def terminate(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._stderr.close()

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.terminate()
        else:
            self._stderr.close()


def run_cli(*args: str, cwd: Optional[Path] = None, timeout: float = 20.0, env: Optional[dict] = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AEDAEMON_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "aedaemon.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=full_env)
