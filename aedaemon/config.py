"""Daemon settings: a TOML file, overridden by AEDAEMON_* environment variables, overridden by
command-line flags; validated by pydantic with one-line messages that name the key.

    precedence (lowest first): built-in defaults < TOML file < environment < CLI flags

The file is `--config PATH`, else $AEDAEMON_CONFIG, else /etc/aedaemon/aedaemon.toml when it
exists, else none (defaults only). Unknown keys are refused with a suggestion:

    aedaemon.toml: unknown key 'prot'; did you mean 'port'?
"""

from __future__ import annotations

import difflib
import ipaddress
import os
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import AedaemonError
from .files import read_toml

DEFAULT_CONFIG_PATH = Path("/etc/aedaemon/aedaemon.toml")
ENV_PREFIX = "AEDAEMON_"


class ConfigError(AedaemonError):
    """A configuration file, environment variable or flag that cannot be used."""


class MidiConfig(BaseModel):
    """[midi] table: accepted now, used by the MIDI bridge (a later issue)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    port: str = Field(
        "", description="MIDI input port name: a substring, or a shell-style pattern with * ? [] "
        "(case-insensitive); empty: any port",
    )
    mapping: Optional[str] = Field(None, description="mapping name or file (mappings/*.toml)")
    backend: Optional[str] = None


class Config(BaseModel):
    """Every key of aedaemon.toml (top level) with its default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    listen: str = Field("127.0.0.1", description="address to bind UDP and TCP to")
    port: int = Field(9000, ge=0, le=65535, description="UDP and TCP port (0: any free port)")
    allow: list[str] = Field(
        default_factory=list,
        description="networks allowed to send (CIDR); required when listen is not loopback",
    )
    audio: Literal["portaudio", "null", "auto"] = Field(
        "portaudio", description="output: PortAudio, null (a software clock) or auto (null with a warning when "
        "PortAudio has no usable device)")
    device: Optional[Union[int, str]] = Field(None, description="output device index or (part of its) name")
    block: int = Field(256, ge=16, le=8192, description="audio block (frames per callback)")
    hop: Optional[int] = Field(None, ge=16, le=16384, description="synthesis hop; default 256 (5.8 ms: "
                               "low control latency), or the model's hop when smaller")
    render_ahead: Optional[int] = Field(
        None, ge=0, le=65536,
        description="render margin in samples: each hop is rendered this long before the device needs it "
        "(default: 132 = 3 ms with real-time scheduling, else one hop; widened after an underrun); "
        "lower = less control latency, more risk of underflow",
    )
    rt_priority: int = Field(
        70, ge=0, le=99,
        description="SCHED_FIFO priority for the audio callback (render thread: 5 less) when the system "
        "permits it (LimitRTPRIO, CAP_SYS_NICE); 0 = normal scheduling",
    )
    switch_interval: float = Field(
        0.001, gt=0, le=0.1,
        description="Python GIL switch interval in seconds: how long the audio callback can wait for the "
        "interpreter (Python's default 0.005 is almost a whole 256-frame block)",
    )
    phase: str = Field("rtpghi", description="phase reconstruction: rtpghi, noise, canne")
    precision: Literal["auto", "float32", "int8"] = Field(
        "auto", description="decoder: auto (when the model ships decoder-int8.onnx, both decoders are timed at "
        "load and int8 is used when clearly faster on this machine), float32 (the reference) or int8 (weights "
        "quantised, about 3x faster to decode on x86-64)",
    )
    model: str = Field("default", description="model name (in models_dir) or folder")
    models_dir: Path = Field(Path("models"), description="folder of model bundles")
    state_dir: Path = Field(Path("state"), description="presets and the last state")
    recordings_dir: Path = Field(Path("recordings"), description="WAV recordings")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    allow_quit: bool = Field(False, description="honour /quit")
    max_packet: int = Field(65507, ge=64, le=16 * 1024 * 1024, description="largest accepted OSC packet (bytes)")
    max_tcp_clients: int = Field(16, ge=0, le=1024, description="simultaneous TCP connections")
    client_rate: float = Field(
        10000.0, gt=0, description="messages per second per client (token bucket, burst = 1/4 s worth)"
    )
    max_subscribers: int = Field(
        32, ge=0, le=1024,
        description="/notify subscribers (when full, a newcomer takes only the place of one that is dead or "
        "silent for subscriber_timeout; else it is refused)",
    )
    subscriber_timeout: float = Field(
        60.0, gt=0, le=86400,
        description="seconds without a renewal (/notify 1) or a packet after which a UDP subscriber may give way "
        "to a newcomer when max_subscribers is reached",
    )
    max_fanout: float = Field(
        20000.0, gt=0,
        description="echo and /meter datagrams per second to all subscribers together (beyond it echoes are "
        "dropped and counted)",
    )
    tcp_timeout: float = Field(
        10.0, gt=0, le=3600,
        description="seconds a TCP connection may take to send its first packet, and any packet to arrive "
        "complete once begun (slow senders are closed)",
    )
    max_scheduled: int = Field(
        10000, ge=1, le=10_000_000, description="timetagged changes waiting for their time (beyond: /fail)"
    )
    max_scheduled_bytes: int = Field(
        32 * 1024 * 1024, ge=1024,
        description="bytes the waiting timetagged changes may hold (an estimate: ~3 KB per change plus its "
        "arguments; beyond: /fail)",
    )
    schedule_horizon: float = Field(
        300.0, gt=0, description="how far ahead a timetag may be, in seconds (later: /fail)"
    )
    max_presets: int = Field(1000, ge=1, le=100000, description="presets in the state folder (a new one beyond: /fail)")
    meter_rate: float = Field(20.0, gt=0, le=100, description="/meter pushes per second")
    state_interval: float = Field(1.0, gt=0, le=3600, description="seconds between last-state checks")
    midi: MidiConfig = Field(default_factory=MidiConfig)

    @field_validator("allow", mode="before")
    @classmethod
    def _split_allow(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v

    @field_validator("allow")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"'{net}' is not a network (e.g. 192.168.1.0/24)") from None
        return v

    @field_validator("device", mode="before")
    @classmethod
    def _device(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            return int(v)
        if isinstance(v, str) and not v.strip():
            return None
        return v

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            if v != "localhost":
                raise ValueError(f"'{v}' is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)") from None
        return v

    @model_validator(mode="after")
    def _exposed_needs_allow(self) -> "Config":
        if not self.loopback_only and not self.allow:
            raise ValueError(
                f"listen = '{self.listen}' is not loopback: set allow = [\"192.168.1.0/24\", ...] "
                "to the networks that may control the daemon"
            )
        return self

    @property
    def loopback_only(self) -> bool:
        if self.listen == "localhost":
            return True
        return ipaddress.ip_address(self.listen).is_loopback

    def allowed_networks(self) -> list:
        nets = [ipaddress.ip_network(n, strict=False) for n in self.allow]
        return nets


def _suggest(key: str, choices) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _model_fields(loc: tuple) -> list[str]:
    model: type[BaseModel] = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return []
    return list(model.model_fields)


def format_error(err: ValidationError, source: Mapping[str, str]) -> str:
    """One line naming the key (and where it came from) for the first validation error."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc)
    top = str(loc[0]) if loc else ""
    where = source.get(top, "config")
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown key '{key}'{_suggest(str(loc[-1]), _model_fields(loc))}"
    if not loc:
        return f"{where}: {first['msg'].removeprefix('Value error, ')}"
    msg = first["msg"].removeprefix("Value error, ")
    return f"{where}: key '{key}': {msg} (got {first.get('input')!r})"


def env_overrides(env: Mapping[str, str]) -> dict:
    """AEDAEMON_PORT=9001 → {'port': '9001'}; AEDAEMON_MIDI_ENABLED=1 → {'midi': {'enabled': '1'}}.

    AEDAEMON_CONFIG names the file and is not a key. Unknown AEDAEMON_* names are refused.
    """
    out: dict[str, Any] = {}
    midi_keys = set(MidiConfig.model_fields)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key in Config.model_fields and key != "midi":
            out[key] = value
        elif key.startswith("midi_") and key[5:] in midi_keys:
            out.setdefault("midi", {})[key[5:]] = value
        else:
            env_names = [ENV_PREFIX + k.upper() for k in Config.model_fields if k != "midi"]
            raise ConfigError(f"environment: unknown variable '{name}'{_suggest(name, env_names)}")
    return out


def config_path(cli_path: Optional[str | Path], env: Mapping[str, str]) -> Optional[Path]:
    if cli_path:
        return Path(cli_path)
    if env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    if DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH
    return None


def load_config(
    path: Optional[str | Path] = None,
    cli: Optional[Mapping[str, Any]] = None,
    env: Optional[Mapping[str, str]] = None,
) -> tuple[Config, Optional[Path]]:
    """Merge file < env < cli (None values in cli mean 'not given') and validate.

    Returns the config and the file it read (None when defaults only).
    """
    env = os.environ if env is None else env
    file = config_path(path, env)
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    if file is not None:
        data = read_toml(file, ConfigError, "config file")
        merged.update(data)
        source.update({k: str(file) for k in data})
    for k, v in env_overrides(env).items():
        if k == "midi" and isinstance(merged.get("midi"), dict):
            merged["midi"] = {**merged["midi"], **v}
        else:
            merged[k] = v
        source[k] = f"environment {ENV_PREFIX}{k.upper()}"
    for k, v in (cli or {}).items():
        if v is None:
            continue
        merged[k] = v
        flag = "--" + k.replace("_", "-")
        source[k] = f"flag {flag}"
    try:
        cfg = Config.model_validate(merged)
    except ValidationError as exc:
        src = dict(source)
        if not exc.errors()[0]["loc"]:
            # cross-key rule: blame where 'listen' came from
            src[""] = source.get("listen", source.get("allow", str(file) if file else "config"))
        raise ConfigError(format_error(exc, src)) from None
    return cfg, file


def render_reference() -> str:
    """The config reference (key, default, meaning) for docs/daemon.md and `--help`."""
    lines = []
    for name, field in Config.model_fields.items():
        if name == "midi":
            continue
        default = field.get_default(call_default_factory=True)
        lines.append(f"| `{name}` | `{default!r}` | {field.description or ''} |")
    return "\n".join(lines)
