"""Configuration: TOML < environment < flags, and messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from aedaemon.config import Config, ConfigError, load_config, render_reference
from daemon_harness import run_cli


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "aedaemon.toml"
    p.write_text(text)
    return p


def test_defaults_without_a_file():
    cfg, path = load_config(None, env={})
    assert path is None or path == Path("/etc/aedaemon/aedaemon.toml")
    assert (cfg.listen, cfg.port, cfg.audio, cfg.block, cfg.allow_quit) == ("127.0.0.1", 9000, "portaudio", 256, False)


def test_precedence_file_env_flags(tmp_path):
    p = _write(tmp_path, 'port = 9100\nblock = 512\nlog_level = "debug"\n[midi]\nenabled = true\nport = "nanoKONTROL"\n')
    cfg, _ = load_config(p, env={"AEDAEMON_PORT": "9200", "AEDAEMON_MIDI_PORT": "Launch"}, cli={"block": 128, "port": None})
    assert cfg.port == 9200  # env over file
    assert cfg.block == 128  # flag over file
    assert cfg.log_level == "debug"
    assert cfg.midi.enabled is True and cfg.midi.port == "Launch"
    cfg, _ = load_config(p, env={"AEDAEMON_PORT": "9200"}, cli={"port": 9300})
    assert cfg.port == 9300  # flag over env


def test_config_file_from_env(tmp_path):
    p = _write(tmp_path, "port = 9400\n")
    cfg, path = load_config(None, env={"AEDAEMON_CONFIG": str(p)})
    assert path == p and cfg.port == 9400


@pytest.mark.parametrize(
    "text,message",
    [
        ("prot = 9001\n", "unknown key 'prot'; did you mean 'port'?"),
        ("listen_addr = '1.2.3.4'\n", "unknown key 'listen_addr'; did you mean 'listen'?"),
        ("[midi]\nenabeld = true\n", "unknown key 'midi.enabeld'; did you mean 'enabled'?"),
        ("port = 'abc'\n", "key 'port': Input should be a valid integer"),
        ("port = 70000\n", "key 'port': Input should be less than or equal to 65535"),
        ("audio = 'alsa'\n", "key 'audio': Input should be 'portaudio', 'null' or 'auto'"),
        ("block = 4\n", "key 'block': Input should be greater than or equal to 16"),
        ("allow = ['nonsense']\n", "key 'allow': 'nonsense' is not a network"),
        ("listen = '0.0.0.0'\n", "is not loopback: set allow"),
        ("listen = 'my-host'\n", "key 'listen': 'my-host' is not an IP address"),
        ("port = 9000\nport = 9001\n", "not valid TOML"),
        ("port = [\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, message):
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    msg = str(exc.value)
    assert message in msg
    assert str(p) in msg


def test_bad_env_and_flags_name_their_source():
    with pytest.raises(ConfigError, match=r"environment: unknown variable 'AEDAEMON_PROT'; did you mean 'AEDAEMON_PORT'\?"):
        load_config(None, env={"AEDAEMON_PROT": "1"})
    with pytest.raises(ConfigError, match=r"environment AEDAEMON_BLOCK: key 'block'"):
        load_config(None, env={"AEDAEMON_BLOCK": "huge"})
    with pytest.raises(ConfigError, match=r"flag --port: key 'port'"):
        load_config(None, env={}, cli={"port": -1})


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_reference_lists_every_key():
    ref = render_reference()
    for key in Config.model_fields:
        if key != "midi":
            assert f"`{key}`" in ref


@pytest.mark.parametrize(
    "text,message",
    [
        ("prot = 9001\n", "unknown key 'prot'; did you mean 'port'?"),
        ("listen = '0.0.0.0'\n", "set allow"),
    ],
)
def test_cli_prints_one_line_and_exits_2(tmp_path, text, message):
    p = _write(tmp_path, text)
    r = run_cli("run", "--config", str(p), "--audio", "null", cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
