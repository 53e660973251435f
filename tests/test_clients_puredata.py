"""The Pure Data client (clients/puredata/aedaemon.pd) against the real daemon, in real Pd.

Debian's vanilla Pd (`puredata-core`, the `pd` binary without the Tk GUI) runs a small test
patch headless (`pd -nogui -noaudio`, real-time scheduler: `-batch` would not poll sockets in
real time). The patch holds one [aedaemon PORT] and a [netreceive -u] through which this test
plays the musician: each FUDI message `INLET args;` goes to that inlet of the abstraction, and
everything the abstraction's outlet gives is printed (`reply: ...` on Pd's stderr). The daemon
is a subprocess on a free port with the software clock; its state is read back with the
Python client. `msg /sync N` through the abstraction's message inlet marks the point where
everything sent before has been applied.
"""

from __future__ import annotations

import queue
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from aedaemon.client import Client
from daemon_harness import REPO, Daemon

PD_DIR = REPO / "clients" / "puredata"
INLETS = ["msg", "latent", "chroma", "transpose", "gain", "glide", "play", "note"]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _test_patch(daemon_port: int, control_port: int) -> str:
    lines = [
        "#N canvas 0 0 700 300 12;",
        f"#X obj 20 20 netreceive -u {control_port};",  # 0
        f"#X obj 20 60 route {' '.join(INLETS)} quit;",  # 1
        f"#X obj 20 120 aedaemon {daemon_port};",  # 2
        "#X obj 20 160 route meter;",  # 3: /meter comes 20 times a second: not printed
        "#X obj 100 200 print reply;",  # 4
        "#X msg 500 120 \\; pd quit;",  # 5
        "#X connect 0 0 1 0;",
        "#X connect 2 0 3 0;",
        "#X connect 3 1 4 0;",
        f"#X connect 1 {len(INLETS)} 5 0;",
    ]
    lines += [f"#X connect 1 {k} 2 {k};" for k in range(len(INLETS))]
    return "\n".join(lines) + "\n"


class PdRig:
    """pd -nogui running the test patch; `send` plays an inlet, `expect` waits for a reply line."""

    def __init__(self, workdir: Path, daemon_port: int, *also_open: Path) -> None:
        pd = shutil.which("pd") or shutil.which("puredata")
        assert pd, "Pure Data is not installed: apt-get install --no-install-recommends puredata-core"
        self.control_port = _free_udp_port()
        patch = workdir / "pd_client_test.pd"
        patch.write_text(_test_patch(daemon_port, self.control_port))
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        opens = [arg for p in (patch, *also_open) for arg in ("-open", str(p))]
        self.proc = subprocess.Popen(
            [pd, "-nogui", "-noaudio", "-nomidi", "-noprefs", "-stderr", "-path", str(PD_DIR), *opens],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, cwd=workdir)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))

    def send(self, message: str) -> None:
        # FUDI over UDP: Pd parses a datagram up to the ';' only when a newline follows it
        self.sock.sendto(f"{message};\n".encode(), ("127.0.0.1", self.control_port))

    def expect(self, pattern: str, timeout: float = 5.0) -> re.Match:
        """The next printed line (after those already matched) that matches `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"Pd printed no line matching {pattern!r}; output so far:\n"
                                     + "\n".join(self.lines[-40:])) from None
            self.lines.append(line)
            m = rx.search(line)
            if m:
                return m

    def sync(self, token: int) -> None:
        """Everything sent through the abstraction before this has been applied by the daemon."""
        self.send(f"msg /sync {token}")
        self.expect(rf"^reply: synced {token}$")

    def close(self) -> int:
        """Quit Pd; every line it printed is then in self.lines."""
        if self.proc.poll() is None:
            self.send("quit")
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        while not self._q.empty():
            self.lines.append(self._q.get())
        return self.proc.returncode


def _pd_errors(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith("error") or "no method" in ln or "couldn't create" in ln]


@pytest.fixture()
def rig(tmp_path, models_dir):
    with Daemon(tmp_path / "daemon", models_dir, "--fresh", audio="null") as d:
        pd = PdRig(tmp_path, d.port)
        try:
            yield d, pd
        finally:
            pd.close()


def test_pd_abstraction_controls_the_daemon(rig):
    d, pd = rig
    # at load: connect, subscribe (/notify 1) and ask for the current values
    pd.expect(r"^reply: connected 1$")
    pd.expect(r"^reply: done /notify$")
    pd.expect(r"^reply: latent( 0\.5){8}$")  # the synthetic model's default latent
    pd.expect(r"^aedaemon: connected to aedaemon \d+\.\d+\S*$")  # its /version was answered
    connected_at = time.monotonic()
    with Client(port=d.port, timeout=3.0) as c:
        # one value per inlet; every number leaves Pd as float32
        pd.send("chroma 4")
        pd.send("transpose 7")
        pd.send("gain 0.5")
        pd.send("glide 0.25")
        pd.send("latent 3 0.25")
        pd.send("play 1")
        pd.sync(1)
        assert c.get("/chroma") == [4]
        assert c.get("/transpose") == [7.0]
        assert c.get("/gain") == [0.5]
        assert c.get("/glide") == [0.25]
        assert c.get("/latent/3") == [0.25]
        assert c.get("/play") == [1]

        # all units at once; chroma by name and as 12 weights
        pd.send("latent 0.125 0.25 0.375 0.5 0.625 0.75 0.875 1")
        pd.send("chroma Eb")
        pd.sync(2)
        assert c.get("/latent") == [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0]
        assert c.get("/chroma") == [3]
        pd.send("chroma 1 0 0 0 1 0 0 1 0 0 0 0")
        pd.sync(3)
        assert c.get("/chroma") == pytest.approx([1 / 3, 0, 0, 0, 1 / 3, 0, 0, 1 / 3, 0, 0, 0, 0])

        # note in: note-on plays that pitch, velocity 0 releases it; play with no argument starts
        pd.send("note 67 100")
        pd.sync(4)
        assert c.get("/chroma") == [7]
        assert c.get("/play") == [1]
        pd.send("note 67 0")
        pd.sync(5)
        assert c.get("/play") == [0]
        pd.send("play")
        pd.sync(6)
        assert c.get("/play") == [1]

        # any /address goes through the message inlet, and its reply comes out of the outlet
        pd.send("msg /preset/save from_pd")
        pd.expect(r"^reply: done /preset/save from_pd$")
        assert "from_pd" in c.preset_list()
        # a refusal comes back as "fail ADDRESS REASON", the reason one symbol (spaces escaped),
        # as the help patch shows it; it changes nothing
        pd.send("gain 5")
        fail = pd.expect(r"^reply: (fail /gain gain\\ 5\\ is\\ out\\ of\\ range\\ 0\.\.2)$").group(1)
        assert f" {fail}, f 24;" in (PD_DIR / "aedaemon-help.pd").read_text()
        assert c.get("/gain") == [0.5]
    time.sleep(max(0.0, 1.3 - (time.monotonic() - connected_at)))  # past the 1 s no-answer timeout
    assert pd.close() == 0
    assert not [ln for ln in pd.lines if "no answer" in ln or "noanswer" in ln]


def test_pd_controls_follow_other_clients(rig):
    """Echoes of another client's changes set the abstraction's sliders (/notify 1): `push` makes
    them send their values again, which restores what they show after the daemon has moved on."""
    d, pd = rig
    pd.expect(r"^reply: done /notify$")
    with Client(port=d.port, timeout=3.0) as c:
        pd.send("msg range 0 2")  # the synthetic model's control range is 0..2
        c.latent(5, 0.875)
        c.latent(6, 1.5)
        c.transpose(-5)
        c.gain(0.25)
        pd.expect(r"^reply: latent 5 0\.875$")
        pd.expect(r"^reply: latent 6 1\.5$")
        pd.expect(r"^reply: transpose -5$")
        pd.expect(r"^reply: gain 0\.25$")
        # unsubscribe, let the daemon move on, then push what the controls show
        pd.send("msg /notify 0")
        pd.expect(r"^reply: done /notify$")
        c.latent(5, 0.1)
        c.latent(6, 0.2)
        c.transpose(3)
        c.gain(1.0)
        c.sync()
        pd.send("msg push")
        pd.sync(7)
        assert c.get("/latent/5")[0] == pytest.approx(0.875, abs=1e-3)
        assert c.get("/latent/6")[0] == pytest.approx(1.5, abs=1e-3)  # past 1: 'range 0 2' took
        assert c.get("/transpose") == [-5.0]
        assert c.get("/gain")[0] == pytest.approx(0.25, abs=1e-3)

        # disconnect and connect again: subscribed again, values asked for again
        pd.send("msg disconnect")
        pd.expect(r"^reply: connected 0$")
        pd.send(f"msg connect 127.0.0.1 {d.port}")
        pd.expect(r"^reply: connected 1$")
        pd.expect(r"^reply: done /notify$")
        pd.expect(r"^reply: transpose -5$")
        c.chroma(9)
        pd.expect(r"^reply: chroma 9$")
    assert pd.close() == 0
    assert not _pd_errors(pd.lines), _pd_errors(pd.lines)


NO_ANSWER = r"^aedaemon: no answer from 127\.0\.0\.1 {port} \(is the daemon running\?\)$"


def test_pd_says_when_nothing_answers(tmp_path):
    """UDP [netsend] "connects" to any port: with no daemon there, the abstraction says so after
    1 s of silence, on the Pd console and out of its outlet; a disconnect before then does not."""
    port = _free_udp_port()  # nothing listens there
    t0 = time.monotonic()
    pd = PdRig(tmp_path, port)
    try:
        pd.expect(r"^reply: connected 1$")
        pd.expect(NO_ANSWER.format(port=port), timeout=4.0)
        assert time.monotonic() - t0 > 0.9
        pd.expect(rf"^reply: noanswer 127\.0\.0\.1 {port}$")
        pd.send(f"msg connect 127.0.0.1 {port}")  # each connect asks again
        pd.expect(NO_ANSWER.format(port=port), timeout=4.0)
        pd.send(f"msg connect 127.0.0.1 {port}")
        pd.send("msg disconnect")  # gave up before the timeout: nothing to report
        time.sleep(1.5)
    finally:
        assert pd.close() == 0
    after = pd.lines[pd.lines.index(f"reply: noanswer 127.0.0.1 {port}") + 1:]
    assert sum("no answer" in ln for ln in after) == 1, after
    assert not _pd_errors(pd.lines), _pd_errors(pd.lines)


def test_help_patch_loads_and_shows_a_refusal_reason_as_one_symbol(tmp_path):
    """The help patch, on a free port, with its example refusal clicked (by a loadbang): [route
    fail] -> [unpack s s] gives the address and the whole reason as one symbol."""
    port = _free_udp_port()
    lines = (PD_DIR / "aedaemon-help.pd").read_text().replace("aedaemon 9000;", f"aedaemon {port};").splitlines()
    boxes = [ln for ln in lines[1:] if ln.startswith("#X ") and not ln.startswith(("#X connect", "#X coords"))]
    example = next(k for k, ln in enumerate(boxes) if ln.startswith("#X msg") and " fail /gain " in ln)
    lines += ["#X obj 900 20 loadbang;", f"#X connect {len(boxes)} 0 {example} 0;"]
    help_copy = tmp_path / "aedaemon-help.pd"
    help_copy.write_text("\n".join(lines) + "\n")
    pd = PdRig(tmp_path, _free_udp_port(), help_copy)
    try:
        pd.expect(r"^reason: symbol gain\\ 5\\ is\\ out\\ of\\ range\\ 0\.\.2$")  # [unpack]: right first
        pd.expect(r"^address: symbol /gain$")
        pd.expect(NO_ANSWER.format(port=port), timeout=4.0)
    finally:
        assert pd.close() == 0
    assert not _pd_errors(pd.lines), _pd_errors(pd.lines)
