"""The Max patch and the TouchOSC layout/mapping send only what the daemon accepts.

Neither Max nor TouchOSC runs here, so these tests read the files: the Max patch is valid
patcher JSON whose patch cords join existing boxes, and every OSC message the patch, the
mapping and the Mk1 layout can send, at both ends of each control's range and as float32
(TouchOSC Mk1 sends every number as a float), goes through the daemon's own table
(`aedaemon.protocol.dispatch` on a real engine) without being refused.
"""

from __future__ import annotations

import base64
import json
import struct
import zipfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from aedaemon.engine import Engine
from aedaemon.errors import ParameterError
from aedaemon.protocol import OfflineServices, dispatch, resolve

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
MAXPAT = CLIENTS / "max" / "aedaemon.maxpat"
MAPPING = CLIENTS / "touchosc" / "mapping.json"
MK1 = CLIENTS / "touchosc" / "aedaemon-mk1.touchosc"
OFFLINE = "not available in offline rendering"  # session addresses: arguments checked, then refused offline


def f32(x: float) -> float:
    return struct.unpack(">f", struct.pack(">f", float(x)))[0]


def accepts(engine: Engine, address: str, args: list) -> None:
    """The daemon's table takes this message (session and query addresses may only be refused for being offline)."""
    entry, _ = resolve(address)
    assert entry is not None, f"{address} is not in the daemon's address table"
    try:
        dispatch(address, args, engine=engine, services=OfflineServices())
    except ParameterError as exc:
        assert str(exc).startswith(OFFLINE), f"{address} {args}: refused: {exc}"


@pytest.fixture()
def engine(bundle) -> Engine:
    return Engine(bundle)


def _atom(token: str):
    try:
        return float(token) if "." in token else int(token)
    except ValueError:
        return token


# ---- Max --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def maxpat() -> dict:
    return json.loads(MAXPAT.read_text())


def test_maxpat_is_valid_patcher_json(maxpat):
    p = maxpat["patcher"]
    assert p["fileversion"] == 1 and p["classnamespace"] == "box"
    boxes = {b["box"]["id"]: b["box"] for b in p["boxes"]}
    assert len(boxes) == len(p["boxes"]), "box ids are unique"
    for b in boxes.values():
        assert {"maxclass", "numinlets", "numoutlets", "patching_rect"} <= b.keys()
        assert len(b["patching_rect"]) == 4
        if b["maxclass"] in ("newobj", "message", "comment"):
            assert isinstance(b["text"], str) and b["text"]
        if "outlettype" in b:
            assert len(b["outlettype"]) == b["numoutlets"]
    for line in p["lines"]:
        (src, outlet), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        assert src in boxes and dst in boxes
        assert 0 <= outlet < boxes[src]["numoutlets"] and 0 <= inlet < boxes[dst]["numinlets"]
    assert sum(1 for b in boxes.values() if b.get("text", "").startswith("udpsend ")) == 1
    assert any(b.get("text", "").startswith("udpreceive ") for b in boxes.values())


def _max_messages(p: dict) -> list[tuple[str, list]]:
    """Every OSC message the patch sends: message boxes as they are, [prepend /addr] with the
    values its control gives at both ends of its range."""
    boxes = {b["box"]["id"]: b["box"] for b in p["boxes"]}
    into: dict[str, list[str]] = {}
    for line in p["lines"]:
        into.setdefault(line["patchline"]["destination"][0], []).append(line["patchline"]["source"][0])
    out = []
    for bid, b in boxes.items():
        text = b.get("text", "")
        if b["maxclass"] == "message" and text.startswith("/"):
            address, *args = text.split()
            out.append((address, [_atom(a) for a in args]))
        elif b["maxclass"] == "newobj" and text.startswith("prepend /"):
            address = text.split()[1]
            for src in into.get(bid, []):
                s = boxes[src]
                if s["maxclass"] == "slider":
                    lo = s.get("min", 0.0)
                    values = [[f32(lo)], [f32(lo + s["size"])]]
                elif s["maxclass"] in ("flonum", "number"):
                    values = [[s["minimum"]], [s["maximum"]]]
                elif s["maxclass"] == "toggle":
                    values = [[0], [1]]
                elif s.get("text") == "pack 0 0":  # note, velocity from [kslider] or [notein]
                    values = [[60, 100], [60, 0], [72, 127]]
                else:
                    raise AssertionError(f"unexpected source {s['maxclass']} into {text}")
                out += [(address, v) for v in values]
    return out


def test_maxpat_sends_only_what_the_daemon_accepts(maxpat, engine):
    messages = _max_messages(maxpat["patcher"])
    addresses = {a for a, _ in messages}
    # the controls the brief asks for
    assert {f"/latent/{i}" for i in range(8)} | {"/chroma", "/transpose", "/gain", "/glide", "/play", "/note"} <= addresses
    for address, args in messages:
        accepts(engine, address, args)


def test_maxpat_controls_reach_udpsend(maxpat):
    p = maxpat["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in p["boxes"]}
    (send,) = [bid for bid, b in boxes.items() if b.get("text", "").startswith("udpsend")]
    feeds_send = {ln["patchline"]["source"][0] for ln in p["lines"] if ln["patchline"]["destination"][0] == send}
    for bid, b in boxes.items():
        if b.get("text", "").startswith(("prepend /", "/")):
            assert bid in feeds_send, f"{b['text']} is not connected to [udpsend]"


# ---- TouchOSC ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mapping() -> dict:
    return json.loads(MAPPING.read_text())


def test_touchosc_mapping_sends_only_what_the_daemon_accepts(mapping, engine):
    seen = set()
    for control in mapping["controls"]:
        for send in control["sends"]:
            args = send["args"]
            if "x" in args:
                lo, hi = send["range"]
                samples = [lo, (lo + hi) / 2, hi] if control["type"] == "fader" else [lo, hi]
            else:
                samples = [None]
            for v in samples:
                # as TouchOSC Mk1 sends them: every number a float32
                concrete = [f32(v) if a == "x" else (f32(a) if isinstance(a, (int, float)) else a) for a in args]
                accepts(engine, send["address"], concrete)
            seen.add(send["address"])
    assert {f"/latent/{i}" for i in range(8)} | {"/chroma", "/transpose", "/gain", "/glide", "/play", "/note"} <= seen


def _b64(s: str) -> str:
    return base64.b64decode(s).decode()


def test_touchosc_mk1_layout_is_a_valid_zip_and_matches_the_mapping(mapping, engine):
    with zipfile.ZipFile(MK1) as z:
        assert z.namelist() == ["index.xml"] and z.testzip() is None
        root = ET.fromstring(z.read("index.xml"))
    assert root.tag == "layout" and root.get("version") and root.get("orientation") in ("vertical", "horizontal")
    pages = root.findall("tabpage")
    assert pages and all(_b64(p.get("name")) for p in pages)
    names = [c.get("name") for c in root.iter("control")]
    assert len(names) == len(set(names)), "control names are unique"
    mk1_addresses = {s["address"] for c in mapping["controls"] if c.get("mk1", True) for s in c["sends"]}
    sending = 0
    for c in root.iter("control"):
        for key in ("x", "y", "w", "h"):
            assert int(c.get(key)) >= 0
        kind = c.get("type")
        if kind.startswith("label"):
            assert _b64(c.get("text"))
            continue
        address = _b64(c.get("osc_cs"))
        assert address in mk1_addresses, f"{address} is not in mapping.json"
        lo, hi = float(c.get("scalef")), float(c.get("scalet"))
        if kind == "push":  # press sends scalet; release (sr) is off
            assert c.get("sp") == "true" and c.get("sr") == "false"
            values = [hi]
        else:  # faders and toggles send anywhere in scalef..scalet
            values = [lo, (lo + hi) / 2, hi] if kind.startswith("fader") else [lo, hi]
        for v in values:
            accepts(engine, address, [f32(v)])
        sending += 1
    assert sending >= 8 + 12 + 4


def test_touchosc_files_are_what_build_layout_writes(tmp_path):
    """mapping.json and the .touchosc zip come from clients/touchosc/build_layout.py: edit that."""
    import runpy

    runpy.run_path(str(CLIENTS / "touchosc" / "build_layout.py"))["main"](tmp_path)
    assert (tmp_path / "mapping.json").read_text() == MAPPING.read_text()
    assert (tmp_path / MK1.name).read_bytes() == MK1.read_bytes()
