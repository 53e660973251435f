"""MIDI mapping files: TOML, validated with pydantic, errors naming the file, the entry and the field.

A mapping file has an optional ``[device]`` table, any number of ``[[bind]]`` entries (one MIDI
control or group of controls → one action) and any number of ``[[led]]`` entries (one state →
one LED, for controllers whose LEDs light from incoming CCs). See docs/midi.md for the full
reference; the shipped files are in ``aedaemon/mappings/``.

Every address a binding can send is checked against the protocol's address table
(`protocol.resolve`) when the file is loaded, and so is a binding's range against the values
that address accepts (`value_limits`), so a typo or a fader whose top would be refused is
caught at start, not on stage.
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import AedaemonError
from ..files import read_toml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAPPINGS_DIR = Path(__file__).resolve().parent.parent / "mappings"
DEFAULT_MAPPING = "nanokontrol2"
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # fullmatch only: `$` accepts "name\n"

# placeholders an address or a string argument may use
PLACEHOLDERS = ("unit", "strip", "n", "bank", "note", "velocity", "value", "default")
_PLACEHOLDER_RE = re.compile(r"\{([a-z_]*)\}")

Mode = Literal["absolute", "relative", "momentary", "toggle", "step", "note", "offset", "bank_next", "bank_prev"]
Encoding = Literal["twos", "signed", "offset"]
ArgValue = Union[bool, int, float, str]


class MappingError(AedaemonError):
    """A mapping file that cannot be used; the message names the file, entry and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_channel(v: Union[int, str]) -> Union[int, str]:
    if isinstance(v, int) and not 1 <= v <= 16:
        raise ValueError("MIDI channel must be 1..16 or \"any\"")
    return v


Channel = Annotated[Union[int, Literal["any"]], AfterValidator(_check_channel)]


class Device(_Strict):
    """[device]: defaults for the whole file."""

    name: str = ""
    description: str = ""
    port: Optional[str] = Field(None, description="input port name pattern suggested for this controller")
    led_port: Optional[str] = Field(None, description="output port pattern for LED feedback; none = no LEDs")
    channel: Channel = 1
    bank_size: int = Field(8, ge=1, le=128)
    led_on: int = Field(127, ge=0, le=127)
    led_off: int = Field(0, ge=0, le=127)
    extends: Optional[str] = Field(None, description="a shipped mapping this file adds to (learned bindings)")


def _sample(address: str) -> str:
    """A concrete address for a template: every placeholder (unit, strip, note...) as 0."""
    return _PLACEHOLDER_RE.sub("0", address)


def _did_you_mean(address: str) -> str:
    """'; did you mean '/gain'?' for the closest action or state address, in the file's terms."""
    from .. import protocol

    shape = re.sub(r"/(\{[a-z_]*\}|[0-9]+)$", "/{i}", address)
    patterns = [e.pattern for e in protocol.ADDRESSES if e.kind != "query"]
    close = difflib.get_close_matches(shape, patterns, n=1)
    if not close:
        return ""
    return f"; did you mean '{close[0].replace('{i}', address.rsplit('/', 1)[-1])}'?"


def _check_action_address(address: str) -> None:
    """ValueError unless the protocol table has this address (placeholders filled) as an action."""
    from .. import protocol

    entry, _ = protocol.resolve(_sample(address))
    if entry is None:
        raise ValueError(f"unknown address '{address}'{_did_you_mean(address)} (see `aedaemon addresses`)")
    if entry.kind == "query":
        raise ValueError(f"'{address}' is a query, not an action")


def value_limits() -> dict[str, tuple[float, float]]:
    """The values each state address accepts (table pattern → low, high); the protocol refuses
    the rest. /latent and /freq_shift clamp instead of refusing, so any range is fine there."""
    from .. import protocol

    return {
        "/scale/{i}": protocol.SCALE_RANGE, "/transpose": protocol.TRANSPOSE_RANGE, "/gain": protocol.GAIN_RANGE,
        "/glide": protocol.GLIDE_RANGE, "/tilt": protocol.TILT_RANGE, "/chroma": (0.0, protocol.CHROMA_SIZE - 1.0),
        "/mute/{i}": (0.0, 1.0), "/play": (0.0, 1.0),
    }  # fmt: skip


def natural_limits() -> dict[str, Any]:
    """What a relative move or an offset is clamped to, per table pattern: the accepted values,
    plus the clamping addresses (/latent: the model's control range; /freq_shift: ±n_fft/2 of
    the 4096-point frame)."""
    return {**value_limits(), "/latent/{i}": "control", "/freq_shift": (-2048.0, 2048.0)}


class Bind(_Strict):
    """[[bind]]: a control (cc, note or pitch bend; `strips` consecutive numbers) and its action."""

    name: str = ""
    cc: Optional[int] = Field(None, ge=0, le=127)
    note: Optional[Union[int, list[int]]] = None
    pitchbend: bool = False
    strips: int = Field(1, ge=1, le=128)
    channel: Optional[Channel] = None
    mode: Optional[Mode] = None
    address: Optional[str] = None
    args: Optional[list[ArgValue]] = None
    release_address: Optional[str] = None
    release_args: list[ArgValue] = Field(default_factory=list)
    on_address: Optional[str] = None
    on_args: Optional[list[ArgValue]] = None
    off_address: Optional[str] = None
    off_args: Optional[list[ArgValue]] = None
    range: Optional[Union[Literal["latent", "control"], list[float]]] = None
    integer: bool = False
    invert: bool = False
    encoding: Encoding = "twos"
    step: Optional[float] = None
    wrap: bool = False
    threshold: int = Field(1, ge=1, le=127)
    learned: bool = False

    @field_validator("note")
    @classmethod
    def _note(cls, v):
        if v is None:
            return v
        if isinstance(v, list):
            if len(v) != 2 or not all(0 <= n <= 127 for n in v) or v[0] > v[1]:
                raise ValueError("a note range is [lowest, highest], each 0..127")
        elif not 0 <= v <= 127:
            raise ValueError("note must be 0..127")
        return v

    @field_validator("range")
    @classmethod
    def _range(cls, v):
        if isinstance(v, list):
            if len(v) != 2 or not all(math.isfinite(x) for x in v):
                raise ValueError("range is [low, high] (two finite numbers), \"latent\" or \"control\"")
        return v

    @field_validator("address", "release_address", "on_address", "off_address")
    @classmethod
    def _address(cls, v):
        if v is None:
            return v
        if not v.startswith("/"):
            raise ValueError(f"'{v}' is not an OSC address (it must start with /)")
        for ph in _PLACEHOLDER_RE.findall(v):
            if ph not in PLACEHOLDERS:
                raise ValueError(f"unknown placeholder {{{ph}}} (use {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
        _check_action_address(v)  # here, so an unknown address is reported before a missing range
        return v

    @model_validator(mode="after")
    def _shape(self) -> "Bind":
        sources = [k for k, on in (("cc", self.cc is not None), ("note", self.note is not None),
                                   ("pitchbend", self.pitchbend)) if on]
        if len(sources) != 1:
            raise ValueError(f"{sources[-1] if sources else 'cc'}: give exactly one of cc, note or pitchbend"
                             + (f" (got {', '.join(sources)})" if sources else ""))
        if self.mode is None:
            self.mode = "note" if isinstance(self.note, list) else "absolute" if self.cc is not None or self.pitchbend else "momentary"
        if isinstance(self.note, list) and self.strips != 1:
            raise ValueError("strips: a note range is one binding already; use strips with a single note")
        if isinstance(self.note, list) and self.mode != "note":
            raise ValueError(f"mode: a note range only supports mode \"note\" (got \"{self.mode}\")")
        first = self.cc if self.cc is not None else self.note if isinstance(self.note, int) else 0
        if first + self.strips - 1 > 127:
            raise ValueError(f"strips: {first} + {self.strips} strips runs past 127")
        m = self.mode
        if m in ("bank_next", "bank_prev"):
            if self.address is not None:
                raise ValueError(f"address: mode \"{m}\" changes the bank and sends nothing")
            return self
        if m == "note":
            if self.address is None:
                self.address = "/note"
            if self.release_address is None:
                self.release_address = "/note_off"
            return self
        if m == "toggle":
            if self.address is None and (self.on_address is None or self.off_address is None):
                raise ValueError("address: a toggle needs address (with on_args/off_args) or on_address and off_address")
            return self
        if self.address is None:
            raise ValueError(f"address: mode \"{m}\" needs an address")
        if m in ("absolute", "relative", "step", "offset") and self.range is None:
            raise ValueError(f"range: mode \"{m}\" needs a range ([low, high], \"latent\" or \"control\")")
        self._check_range()
        if m == "step" and self.step is None:
            raise ValueError("step: mode \"step\" needs a step (e.g. 1 or -12)")
        if m == "offset" and not self.pitchbend and self.cc is None:
            raise ValueError("mode: \"offset\" works on pitchbend or cc")
        return self

    def _check_range(self) -> None:
        """ValueError when the values this binding sends (its range, as the address's argument)
        reach past what the address accepts: the top of a fader must not be refused on stage."""
        if not isinstance(self.range, list):
            return  # none, or the model's "latent" / "control" range
        lo, hi = min(self.range), max(self.range)
        if lo == hi and self.mode != "absolute":
            raise ValueError("range: low and high are equal")
        sends_range = self.mode in ("absolute", "relative", "step")  # "offset" adds it to the state
        if not sends_range or (self.args is not None and self.args[:1] != ["{value}"]):
            return
        from .. import protocol

        entry, _ = protocol.resolve(_sample(self.address or ""))
        limits = value_limits().get(entry.pattern) if entry is not None else None
        if limits is not None and not (limits[0] <= lo and hi <= limits[1]):
            raise ValueError(
                f"range: [{lo:g}, {hi:g}] reaches past what {self.address} accepts, {limits[0]:g}..{limits[1]:g}"
            )

    # ---- derived ------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return "cc" if self.cc is not None else "note" if self.note is not None else "pitchbend"

    def numbers(self) -> range:
        if self.cc is not None:
            return range(self.cc, self.cc + self.strips)
        if isinstance(self.note, list):
            return range(self.note[0], self.note[1] + 1)
        if isinstance(self.note, int):
            return range(self.note, self.note + self.strips)
        return range(0, 1)

    def strip_of(self, number: int) -> int:
        if isinstance(self.note, list) or self.pitchbend:
            return 0
        return number - (self.cc if self.cc is not None else self.note)  # type: ignore[operator]

    def label(self, index: int) -> str:
        return f"bind[{index}]" + (f" ('{self.name}')" if self.name else "")


def same_control(a: Bind, b: Bind) -> bool:
    """Two bindings listening to (some of) the same controls on the same channel setting."""
    if a.kind != b.kind or a.channel != b.channel:
        return False
    return bool(set(a.numbers()) & set(b.numbers()))


class Led(_Strict):
    """[[led]]: light a controller LED (CC out) while a state is on."""

    name: str = ""
    cc: int = Field(ge=0, le=127)
    strips: int = Field(1, ge=1, le=128)
    state: str = Field(description="a state address (/play, /mute/{unit}) or \"record\"")
    channel: Optional[int] = Field(None, ge=1, le=16)

    @field_validator("state")
    @classmethod
    def _state(cls, v):
        if v != "record" and not v.startswith("/"):
            raise ValueError(f"'{v}' is neither a state address nor \"record\"")
        return v


class MappingFile(_Strict):
    device: Device = Field(default_factory=Device)
    bind: list[Bind] = Field(default_factory=list)
    led: list[Led] = Field(default_factory=list)


@dataclass
class Mapping:
    """A loaded mapping: the validated content, where it came from, and its learned overlay."""

    data: MappingFile
    path: Optional[Path]  # None for an empty mapping
    name: str

    @property
    def device(self) -> Device:
        return self.data.device

    @property
    def binds(self) -> list[Bind]:
        return self.data.bind

    @property
    def leds(self) -> list[Led]:
        return self.data.led


# ---- loading -----------------------------------------------------------------------------


def shipped_mappings() -> list[str]:
    return sorted(p.stem for p in MAPPINGS_DIR.glob("*.toml"))


def resolve_mapping_path(spec: Optional[str]) -> Path:
    """A shipped mapping name ('nanokontrol2') or a file path → the file."""
    spec = spec or DEFAULT_MAPPING
    if NAME_RE.fullmatch(spec) and (MAPPINGS_DIR / f"{spec}.toml").is_file():
        return MAPPINGS_DIR / f"{spec}.toml"
    p = Path(spec).expanduser()
    if p.is_file():
        return p
    if NAME_RE.fullmatch(spec):
        raise MappingError(f"no mapping named '{spec}' (shipped: {', '.join(shipped_mappings())}) and no file {p}")
    raise MappingError(f"mapping file {p} not found")


def _field_path(loc: tuple) -> tuple[str, str]:
    """pydantic loc ('bind', 3, 'cc') → ('bind[3]', 'cc')."""
    parts = list(loc)
    entry = ""
    if parts and parts[0] in ("bind", "led") and len(parts) > 1 and isinstance(parts[1], int):
        entry = f"{parts[0]}[{parts[1]}]"
        parts = parts[2:]
    elif parts and parts[0] == "device":
        entry = "[device]"
        parts = parts[1:]
    elif parts:
        entry = "top level"
    # drop pydantic's union-branch tags ('int', 'list[int]', 'literal[...]')
    fields = [str(p) for p in parts if not isinstance(p, int) and not re.match(r"^(int|float|str|bool|list\[|literal\[|function)", str(p))]
    return entry, ".".join(fields)


def _format_validation(path: Path, raw: dict, err: ValidationError) -> str:
    first = err.errors()[0]
    entry, field = _field_path(tuple(first["loc"]))
    if entry.startswith(("bind[", "led[")):
        table, idx = entry[:-1].split("[")
        try:
            nm = raw[table][int(idx)].get("name")
        except (KeyError, IndexError, TypeError, AttributeError):
            nm = None
        if nm:
            entry += f" ('{nm}')"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{path}: {entry}: unknown field '{field}'"
    if first["type"] == "missing":
        return f"{path}: {entry}: field '{field}' is required"
    if not field:
        # model-level rule: the message starts with the field it is about ("range: ...")
        m = re.match(r"^([a-z_]+): (.*)$", msg)
        if m:
            field, msg = m.group(1), m.group(2)
        else:
            field = "(entry)"
    got = first.get("input")
    got_s = "" if isinstance(got, dict) or repr(got) in msg else f" (got {got!r})"  # never say it twice
    return f"{path}: {entry}: field '{field}': {msg}{got_s}"


def _check_leds(path: Path, data: MappingFile) -> None:
    """Every LED state must be a state address of the protocol table, or "record"."""
    from .. import protocol

    for i, led in enumerate(data.led):
        if led.state != "record":
            entry, _ = protocol.resolve(_sample(led.state))
            if entry is None or entry.kind != "state":
                label = f"led[{i}]" + (f" ('{led.name}')" if led.name else "")
                raise MappingError(f"{path}: {label}: field 'state': '{led.state}' is not a state address or \"record\"")


def parse_mapping(path: Path, text: Optional[str] = None) -> MappingFile:
    path = Path(path)
    if text is None:
        raw = read_toml(path, MappingError, "mapping file")
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MappingError(f"{path}: not valid TOML: {exc}") from None
    try:
        data = MappingFile.model_validate(raw)
    except ValidationError as exc:
        raise MappingError(_format_validation(path, raw, exc)) from None
    _check_leds(path, data)
    return data


def load_mapping(spec: Optional[str] = None, overlay: Optional[Path] = None) -> Mapping:
    """Load a shipped mapping by name or a file; `overlay` (learned bindings) is added on top.

    An overlay file is a mapping file with ``[device] extends = "<name>"``; its bindings shadow
    the base's bindings of the same control. A file that `extends` another is loaded the same
    way when given directly.
    """
    path = resolve_mapping_path(spec)
    data = parse_mapping(path)
    if data.device.extends:
        base = parse_mapping(resolve_mapping_path(data.device.extends))
        data = merge(base, data)
    if overlay is not None and Path(overlay).is_file():
        extra = parse_mapping(Path(overlay))
        data = merge(data, extra)
    return Mapping(data=data, path=path, name=data.device.name or path.stem)


def merge(base: MappingFile, extra: MappingFile) -> MappingFile:
    """Base plus extra's bindings (marked learned, so they shadow base bindings on their controls)."""
    binds = list(base.bind) + [b.model_copy(update={"learned": True}) for b in extra.bind]
    leds = list(base.led) + list(extra.led)
    dev = base.device.model_copy(update={"extends": extra.device.extends or base.device.extends})
    return MappingFile(device=dev, bind=binds, led=leds)


# ---- writing (MIDI learn) --------------------------------------------------------------------


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dump_mapping(data: MappingFile, header: str = "") -> str:
    lines = [f"# {ln}" if ln else "#" for ln in header.splitlines()] if header else []
    dev = data.device.model_dump(exclude_defaults=True)
    if dev:
        lines.append("[device]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in dev.items() if v is not None]
        lines.append("")
    for table, items in (("bind", data.bind), ("led", data.led)):
        for item in items:
            lines.append(f"[[{table}]]")
            d = item.model_dump(exclude_defaults=True)
            lines += [f"{k} = {_toml_value(v)}" for k, v in d.items() if v is not None]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
