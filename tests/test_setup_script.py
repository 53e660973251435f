""".ci/setup's install path, run for real against shims of dpkg-query, apt-get, sudo and id.

The machine that runs the suite usually has every Debian package already, so a broken install
path (such as `$SUDO -E apt-get` with an empty SUDO, which ran `-E`) would never show. Here
the script runs in a copy of the repo's skeleton with a PATH that holds only the shims and the
few tools it needs, and the test checks the exact commands it would have run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME = ["portaudio19-dev", "libjack-jackd2-dev", "liblo-tools"]
DEV = ["jackd2", "puredata-core", "iproute2", "libsndfile1", "fluidsynth", "fluid-soundfont-gm"]
# what the script may use besides the shims; no cc, gcc or python3 unless a test adds them
TOOLS = ["bash", "env", "grep", "cat", "dirname", "mktemp", "tail", "rm", "sha256sum", "cut",
         "sort", "paste", "printf", "touch", "mkdir"]

SHIMS = {
    # dpkg-query -W -f='${Status}' PKG: "installed" when PKG is listed in $SHIM_INSTALLED
    "dpkg-query": """#!/bin/bash
pkg="${@: -1}"
for p in $SHIM_INSTALLED; do
  if [ "$p" = "$pkg" ]; then printf 'install ok installed'; exit 0; fi
done
echo "dpkg-query: no packages found matching $pkg" >&2
exit 1
""",
    "apt-get": """#!/bin/bash
echo "DEBIAN_FRONTEND=${DEBIAN_FRONTEND-} apt-get $*" >>"$SHIM_LOG"
if [ -n "${SHIM_APT_FAIL-}" ] && [ "$1" = "$SHIM_APT_FAIL" ]; then
  echo "E: Unable to locate package nonsense" >&2; exit 100
fi
echo "Reading package lists..."
""",
    "sudo": """#!/bin/bash
echo "sudo $*" >>"$SHIM_LOG"
exec "$@"
""",
    "id": """#!/bin/bash
[ "$1" = "-u" ] && { echo "$SHIM_UID"; exit 0; }
exit 1
""",
    # a Python like Debian's before python3-dev / python3-venv: no Python.h, no ensurepip
    "python-bare": "#!/bin/bash\nexit 1\n",
    # a Python with headers and ensurepip (pyenv, or Debian's with both packages)
    "python-full": "#!/bin/bash\nexit 0\n",
    "cc": "#!/bin/bash\nexit 0\n",
}


@dataclass
class Result:
    code: int
    out: str
    err: str
    commands: list[str]


@pytest.fixture
def rig(tmp_path: Path):
    """A repo skeleton with .ci/setup, a bin/ of shims and tools, and a runner."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    shutil.copy2(REPO / ".ci" / "setup", repo / ".ci" / "setup")
    shutil.copy2(REPO / "pyproject.toml", repo / "pyproject.toml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"the test needs {tool} on this machine"
        (bin_dir / tool).symlink_to(found)
    for name, text in SHIMS.items():
        path = tmp_path / "shims" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    log = tmp_path / "commands.log"

    def use(*names: str) -> None:
        """Put shims on the PATH (python-* become python3 via PYTHON)."""
        for name in names:
            (bin_dir / name).symlink_to(tmp_path / "shims" / name)

    def run(*args: str, installed: list[str] = (), uid: int = 0, python: str = "python-full",
            env: dict | None = None) -> Result:
        log.write_text("")
        e = {
            "PATH": str(bin_dir),
            "HOME": str(tmp_path),
            "TMPDIR": str(tmp_path),
            "SHIM_LOG": str(log),
            "SHIM_INSTALLED": " ".join(installed),
            "SHIM_UID": str(uid),
            "PYTHON": str(tmp_path / "shims" / python),
            **(env or {}),
        }
        p = subprocess.run([str(bin_dir / "bash"), str(repo / ".ci" / "setup"), *args],
                           env=e, capture_output=True, text=True, timeout=60)
        return Result(p.returncode, p.stdout, p.stderr, log.read_text().splitlines())

    run.use = use  # type: ignore[attr-defined]
    run.repo = repo  # type: ignore[attr-defined]
    run.shims = tmp_path / "shims"  # type: ignore[attr-defined]
    return run


def apt_commands(packages: list[str], prefix: str = "") -> list[str]:
    env = "DEBIAN_FRONTEND=noninteractive"
    lines = [f"{prefix}{env} apt-get update -qq",
             f"{prefix}{env} apt-get install -y -qq --no-install-recommends {' '.join(packages)}"]
    if prefix:  # sudo's own line, then what it ran
        return [f"sudo env {env} apt-get update -qq", lines[0][len(prefix):],
                f"sudo env {env} apt-get install -y -qq --no-install-recommends {' '.join(packages)}",
                lines[1][len(prefix):]]
    return lines


def test_root_with_nothing_installed_runs_apt_get_directly(rig):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    r = rig("--packages-only", uid=0)
    assert r.code == 0, r.err
    assert r.commands == apt_commands(RUNTIME)
    assert "setup: installing Debian packages: " + " ".join(RUNTIME) in r.out
    assert "Reading package lists" not in r.out  # apt's chatter goes to a log


def test_root_with_everything_installed_runs_nothing(rig):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    r = rig("--packages-only", "dev,train", installed=RUNTIME + DEV, uid=0)
    assert (r.code, r.commands, r.out) == (0, [], "")


def test_sudo_user_with_some_installed_goes_through_sudo_for_the_rest(rig):
    rig.use("dpkg-query", "apt-get", "id", "sudo", "cc")
    r = rig("--packages-only", "dev", installed=["portaudio19-dev", "jackd2", "fluidsynth"], uid=1000)
    assert r.code == 0, r.err
    rest = ["libjack-jackd2-dev", "liblo-tools", "puredata-core", "iproute2", "libsndfile1", "fluid-soundfont-gm"]
    assert r.commands == apt_commands(rest, prefix="sudo ")


def test_non_root_without_sudo_says_what_it_needs(rig):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    r = rig("--packages-only", uid=1000)
    assert r.code == 1
    assert r.commands == []
    assert "needs root: run this as root or install sudo" in r.err
    assert "portaudio19-dev" in r.err


def test_extras_list_each_package_once(rig):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    r = rig("--packages-only", "dev,train", uid=0)
    assert r.code == 0, r.err
    installed = r.commands[1].split("--no-install-recommends ")[1].split()
    assert installed == RUNTIME + DEV  # dev and train both need libsndfile1 etc.: once


def test_train_alone_has_no_test_tools(rig):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    r = rig("--packages-only", "train", uid=0)
    installed = r.commands[1].split("--no-install-recommends ")[1].split()
    assert installed == RUNTIME + ["libsndfile1", "fluidsynth", "fluid-soundfont-gm"]


def test_a_bare_debian_python_and_no_compiler_get_headers_venv_and_gcc(rig):
    """Raspberry Pi OS Lite: python3 without Python.h or ensurepip, and no compiler."""
    rig.use("dpkg-query", "apt-get", "id", "sudo")
    r = rig("--packages-only", uid=1000, python="python-bare")
    assert r.code == 0, r.err
    wanted = RUNTIME + ["python3-dev", "python3-venv", "gcc", "libc6-dev"]
    assert r.commands == apt_commands(wanted, prefix="sudo ")


def test_a_python_with_headers_needs_no_python3_dev(rig):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    r = rig("--packages-only", uid=0, installed=RUNTIME, python="python-full")
    assert (r.code, r.commands) == (0, [])


def test_a_failing_apt_get_is_one_clear_error_with_its_output(rig):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    r = rig("--packages-only", uid=0, env={"SHIM_APT_FAIL": "install"})
    assert r.code == 1
    assert "Unable to locate package" in r.err
    assert "setup: apt-get install failed" in r.err


def test_not_debian_names_the_packages(rig):
    rig.use("id", "cc")  # no dpkg-query, no apt-get
    r = rig("--packages-only", uid=0)
    assert r.code == 1
    assert "not a Debian system" in r.err and "portaudio19-dev" in r.err


# ---- the venv step: install once, add extras, never reinstall for nothing ----------------------

PIP_SHIM = """#!/bin/bash
echo "pip $*" >>"$SHIM_LOG"
"""


@pytest.fixture
def venv_rig(rig, tmp_path: Path):
    rig.use("dpkg-query", "apt-get", "id", "cc")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    for name, text in (("python", "#!/bin/bash\nexit 0\n"), ("pip", PIP_SHIM)):
        (venv / "bin" / name).write_text(text)
        (venv / "bin" / name).chmod(0o755)
    everything = RUNTIME + DEV

    def run(extras: str = "") -> Result:
        return rig(*([extras] if extras else []), installed=everything, env={"VENV": str(venv)})

    run.repo = rig.repo  # type: ignore[attr-defined]
    return run


def pip_installs(r: Result) -> list[str]:
    return [c.split(" -e ")[1] for c in r.commands if c.startswith("pip install") and " -e " in c]


def test_runtime_installs_once_then_starts_quietly(venv_rig):
    first = venv_rig()
    assert first.code == 0, first.err
    assert pip_installs(first) == ["."]
    again = venv_rig()
    assert (again.code, again.commands, again.out, again.err) == (0, [], "", "")


def test_extras_are_added_to_what_is_there_and_kept(venv_rig):
    assert pip_installs(venv_rig("dev,train")) == [".[dev,train]"]
    assert venv_rig().commands == []  # make run after make test: nothing to do
    assert venv_rig("dev").commands == []
    assert pip_installs(venv_rig("train,dev")) == []


def test_a_new_extra_keeps_the_old_ones(venv_rig):
    assert pip_installs(venv_rig()) == ["."]
    assert pip_installs(venv_rig("dev")) == [".[dev]"]
    assert pip_installs(venv_rig("train")) == [".[dev,train]"]


def test_a_changed_pyproject_reinstalls(venv_rig):
    assert pip_installs(venv_rig("dev")) == [".[dev]"]
    pyproject = venv_rig.repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# changed\n")
    assert pip_installs(venv_rig()) == [".[dev]"]


def test_the_real_script_is_what_make_calls():
    """The Makefile's run target sets up the runtime only; test sets up dev and train."""
    text = (REPO / "Makefile").read_text()
    setup_block = text.split("\nsetup:")[1].split("\n\n")[0]
    assert "@.ci/setup\n" in setup_block + "\n" and "dev" not in setup_block
    assert "\nrun: setup\n" in text
    test_block = text.split("\ntest:")[1].split("\n\n")[0]
    assert ".ci/setup dev,train" in test_block
    assert os.access(REPO / ".ci" / "setup", os.X_OK)
