"""The OSC 1.0 wire format: messages, bundles, nested bundles, timetags, TCP framing.

Types i h f d s S b T F N I c t m r are parsed, every parse failure is raised as
:class:`OscParseError`, and nothing here trusts a length field. Our own codec rather than
python-osc's parser: that one skips unknown type tags with a warning on the root logger and
lets a UnicodeDecodeError escape on a bad string, where the daemon must refuse the packet
with one clear line (see the README).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Iterable, Optional

NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
IMMEDIATELY = 1
MAX_BUNDLE_DEPTH = 8


class OscParseError(ValueError):
    """Bytes that are not a well-formed OSC packet."""


def ntp_from_unix(t: float) -> int:
    secs = math.floor(t)
    frac = int((t - secs) * (1 << 32))
    return ((int(secs) + NTP_EPOCH_OFFSET) << 32) | (frac & 0xFFFFFFFF)


def unix_from_ntp(tt: int) -> float:
    return (tt >> 32) - NTP_EPOCH_OFFSET + (tt & 0xFFFFFFFF) / 4294967296.0


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\0", pos)
    if end < 0:
        raise OscParseError("unterminated string")
    nxt = _pad4(end + 1)
    if nxt > len(data):
        raise OscParseError("string padding past end of packet")
    try:
        return data[pos:end].decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise OscParseError("string is not UTF-8") from None


# fixed-size arguments: struct format, size, name for errors ('c' is a char, 'r' an RGBA colour,
# 'm' a MIDI message: all 32 bits); argument-less tags carry their value in the tag itself
_FIXED = {
    "i": (">i", 4, "int32"), "f": (">f", 4, "float32"), "h": (">q", 8, "int64"), "d": (">d", 8, "float64"),
    "t": (">Q", 8, "timetag"), "c": (">I", 4, "'c'"), "r": (">I", 4, "'r'"), "m": (">I", 4, "'m'"),
}  # fmt: skip
_CONSTANTS = {"T": True, "F": False, "N": None, "I": math.inf}


def parse_message(data: bytes) -> tuple[str, list]:
    if not data.startswith(b"/"):
        raise OscParseError("message does not start with '/'")
    if len(data) % 4:
        raise OscParseError("message size is not a multiple of 4")
    address, pos = _read_string(data, 0)
    if pos >= len(data):
        return address, []  # OSC 1.0 tolerates a missing type tag string
    if data[pos : pos + 1] != b",":
        raise OscParseError("type tag string does not start with ','")
    tags, pos = _read_string(data, pos)
    args: list[Any] = []
    n = len(data)
    stack: list[list] = []
    for tag in tags[1:]:
        fixed = _FIXED.get(tag)
        if fixed is not None:
            fmt, size, what = fixed
            if pos + size > n:
                raise OscParseError(f"truncated {what}")
            value = struct.unpack_from(fmt, data, pos)[0]
            pos += size
            if tag == "c":
                value = chr(value) if value < 0x110000 else value
            args.append(value)
        elif tag in _CONSTANTS:
            args.append(_CONSTANTS[tag])
        elif tag in ("s", "S"):
            s, pos = _read_string(data, pos)
            args.append(s)
        elif tag == "b":
            if pos + 4 > n:
                raise OscParseError("truncated blob size")
            size = struct.unpack_from(">i", data, pos)[0]
            pos += 4
            if size < 0 or pos + size > n:
                raise OscParseError("blob size past end of packet")
            args.append(bytes(data[pos : pos + size]))
            pos += _pad4(size)
        elif tag == "[":
            stack.append(args)
            args = []
        elif tag == "]":
            if not stack:
                raise OscParseError("unbalanced ']' in type tags")
            inner = args
            args = stack.pop()
            args.append(inner)
        else:
            raise OscParseError(f"unknown type tag '{tag}'")
    if stack:
        raise OscParseError("unbalanced '[' in type tags")
    if pos > n:
        raise OscParseError("arguments past end of packet")
    return address, args


@dataclass
class Parsed:
    """One message of a packet: its address, arguments and effective timetag (None = now)."""

    address: str
    args: list
    timetag: Optional[int] = None


def parse_packet(data: bytes) -> list[Parsed]:
    """Flatten a message or (nested) bundle into messages with their effective timetag."""
    out: list[Parsed] = []
    _parse_into(bytes(data), None, 0, out)
    return out


def _parse_into(data: bytes, outer: Optional[int], depth: int, out: list[Parsed]) -> None:
    if data.startswith(b"#bundle\0"):
        if depth >= MAX_BUNDLE_DEPTH:
            raise OscParseError("bundles nested too deep")
        if len(data) < 16:
            raise OscParseError("truncated bundle header")
        tt = struct.unpack_from(">Q", data, 8)[0]
        tag: Optional[int] = None if tt <= IMMEDIATELY else tt
        if tag is None or (outer is not None and tag < outer):
            tag = outer  # an inner 'now' (or an earlier time) inherits the enclosing time
        pos = 16
        n = len(data)
        while pos < n:
            if pos + 4 > n:
                raise OscParseError("truncated bundle element size")
            size = struct.unpack_from(">i", data, pos)[0]
            pos += 4
            if size <= 0 or size % 4 or pos + size > n:
                raise OscParseError("bad bundle element size")
            _parse_into(data[pos : pos + size], tag, depth + 1, out)
            pos += size
    elif data.startswith(b"/"):
        address, args = parse_message(data)
        out.append(Parsed(address, args, outer))
    else:
        raise OscParseError("not an OSC message or bundle")


def _encode_string(s: str) -> bytes:
    b = s.encode("utf-8") + b"\0"
    return b + b"\0" * (_pad4(len(b)) - len(b))


def _encode_args(args: Iterable[Any], tags: list, payload: list) -> None:
    for a in args:
        if a is True:
            tags.append("T")
        elif a is False:
            tags.append("F")
        elif a is None:
            tags.append("N")
        elif isinstance(a, int):
            if -(1 << 31) <= a < (1 << 31):
                tags.append("i")
                payload.append(struct.pack(">i", a))
            else:
                tags.append("h")
                payload.append(struct.pack(">q", a))
        elif isinstance(a, float):
            tags.append("f")
            payload.append(struct.pack(">f", a))
        elif isinstance(a, str):
            tags.append("s")
            payload.append(_encode_string(a))
        elif isinstance(a, (bytes, bytearray, memoryview)):
            b = bytes(a)
            tags.append("b")
            payload.append(struct.pack(">i", len(b)) + b + b"\0" * (_pad4(len(b)) - len(b)))
        elif isinstance(a, (list, tuple)):
            tags.append("[")
            _encode_args(a, tags, payload)
            tags.append("]")
        else:
            try:  # numpy scalars
                import numpy as np

                if isinstance(a, np.integer):
                    tags.append("i")
                    payload.append(struct.pack(">i", int(a)))
                    continue
                if isinstance(a, np.floating):
                    tags.append("f")
                    payload.append(struct.pack(">f", float(a)))
                    continue
            except ImportError:  # pragma: no cover
                pass
            raise TypeError(f"cannot encode {type(a).__name__} as an OSC argument")


def encode_message(address: str, args: Iterable[Any] = ()) -> bytes:
    """Encode with types from the Python values: bool T/F, int i (h beyond int32), float f,
    str s, bytes b, None N, list/tuple an OSC array [...]."""
    tags = [","]
    payload: list = []
    _encode_args(args, tags, payload)
    return _encode_string(address) + _encode_string("".join(tags)) + b"".join(payload)


def encode_bundle(timetag: int, elements: Iterable[bytes]) -> bytes:
    parts = [b"#bundle\0", struct.pack(">Q", timetag)]
    for e in elements:
        parts.append(struct.pack(">i", len(e)))
        parts.append(e)
    return b"".join(parts)


SLIP_END, SLIP_ESC, SLIP_ESC_END, SLIP_ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD


def slip_encode(packet: bytes) -> bytes:
    body = packet.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc")
    return b"\xc0" + body + b"\xc0"


def slip_decode(frame: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(frame)
    while i < n:
        c = frame[i]
        if c == SLIP_ESC:
            if i + 1 >= n:
                raise OscParseError("SLIP escape at end of frame")
            d = frame[i + 1]
            if d == SLIP_ESC_END:
                out.append(SLIP_END)
            elif d == SLIP_ESC_ESC:
                out.append(SLIP_ESC)
            else:
                raise OscParseError("bad SLIP escape")
            i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def size_prefix(packet: bytes) -> bytes:
    return struct.pack(">i", len(packet)) + packet
