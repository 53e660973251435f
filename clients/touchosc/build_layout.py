#!/usr/bin/env python3
"""Writes mapping.json and aedaemon-mk1.touchosc (a zip holding index.xml) from one description.

    python clients/touchosc/build_layout.py          # rewrites both files beside this script

tests/test_clients_max_touchosc.py checks the files against the daemon's address table and
that this script still produces them.
"""

import base64
import json
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
controls = []
def ctl(name, kind, sends, mk1=True, note=""):
    d = {"control": name, "type": kind, "sends": sends}
    if not mk1:
        d["mk1"] = False
    if note:
        d["note"] = note
    controls.append(d)

for i in range(8):
    ctl(f"latent {i}", "fader", [{"on": "change", "address": f"/latent/{i}", "args": ["x"], "range": [0, 1]}],
        note="feedback: receives /latent/%d" % i)
for k, nm in enumerate(NAMES):
    ctl(f"chroma {nm}", "button", [{"on": "press", "address": "/chroma", "args": [k]}])
ctl("transpose", "fader", [{"on": "change", "address": "/transpose", "args": ["x"], "range": [-24, 24]}])
ctl("gain", "fader", [{"on": "change", "address": "/gain", "args": ["x"], "range": [0, 2]}])
ctl("glide", "fader", [{"on": "change", "address": "/glide", "args": ["x"], "range": [0, 5]}],
    note="the daemon accepts 0..60 s; 0..5 is the useful part for a fader")
ctl("play", "toggle", [{"on": "change", "address": "/play", "args": ["x"], "range": [0, 1]}])
for note in range(60, 73):
    ctl(f"key {note}", "button", [{"on": "press", "address": "/note", "args": [note]}],
        note="Mk1 sends one value on press only; in TouchOSC (current) add velocity and a release message" if note == 60 else "")
ctl("key 60 (current TouchOSC)", "button", [
    {"on": "press", "address": "/note", "args": [60, 100]},
    {"on": "release", "address": "/note_off", "args": [60]}], mk1=False,
    note="pattern for a keyboard: one button per note")
for addr in ("/stop", "/panic", "/reset", "/zero"):
    ctl(addr[1:], "button", [{"on": "press", "address": addr, "args": []}], mk1=False,
        note="no argument: a TouchOSC Mk1 button always sends a value, which the daemon refuses here")
ctl("subscribe", "button", [{"on": "press", "address": "/notify", "args": [1]}],
    note="asks for echoes; they reach TouchOSC only over a TCP connection (see README)")

mapping = {
    "about": "What each control of the aedaemon TouchOSC layout sends. 'x' is the control's value, scaled to 'range'. "
             "Numbers are sent as floats by TouchOSC Mk1; the daemon accepts whole floats where it wants an int.",
    "daemon": {"host": "the computer running aedaemon", "port": 9000},
    "controls": controls,
}

def b64(s):
    return base64.b64encode(s.encode()).decode()

def attrs(**kw):
    return " ".join(f"{k}={quoteattr(str(v))}" for k, v in kw.items())

def tabpage(name, items):
    head = f'<tabpage {attrs(name=b64(name), scalef="0.0", scalet="1.0", li_t="", li_c="gray", li_s="14", li_o="false", li_b="false", la_t="", la_c="gray", la_s="14", la_o="false", la_b="false")}>'
    return head + "\n" + "\n".join(items) + "\n</tabpage>"

counter = [0]
def uname(base):
    counter[0] += 1
    return b64(f"{base}_{counter[0]}")

def fader(kind, x, y, w, h, addr, lo, hi, color="red", centered="false"):
    return (f'<control {attrs(name=uname("fader"), x=x, y=y, w=w, h=h, color=color, scalef=f"{lo:.1f}", scalet=f"{hi:.1f}", type=kind, response="absolute", inverted="false", centered=centered, osc_cs=b64(addr))}></control>')

def push(x, y, w, h, addr, value, color="yellow"):
    return (f'<control {attrs(name=uname("push"), x=x, y=y, w=w, h=h, color=color, scalef="0.0", scalet=f"{value:.1f}", type="push", local_off="false", sp="true", sr="false", osc_cs=b64(addr))}></control>')

def toggle(x, y, w, h, addr, color="green"):
    return (f'<control {attrs(name=uname("toggle"), x=x, y=y, w=w, h=h, color=color, scalef="0.0", scalet="1.0", type="toggle", local_off="false", osc_cs=b64(addr))}></control>')

def label(x, y, w, h, text, size=14):
    return (f'<control {attrs(name=uname("label"), x=x, y=y, w=w, h=h, color="gray", type="labelh", text=b64(text), size=size, background="false", outline="false")}></control>')

# page 1: sound (portrait 768 x 1024)
p1 = [label(20, 10, 728, 40, "aedaemon", 24), label(20, 50, 400, 30, "latent units 0-7", 14)]
for i in range(8):
    x = 20 + i * 92
    p1.append(fader("faderv", x, 80, 70, 400, f"/latent/{i}", 0.0, 1.0))
    p1.append(label(x, 485, 70, 30, str(i)))
p1.append(label(20, 530, 400, 30, "chroma"))
for k, nm in enumerate(NAMES):
    x = 20 + k * 61
    p1.append(push(x, 560, 54, 54, "/chroma", k))
    p1.append(label(x, 616, 54, 26, nm))
p1.append(label(20, 660, 200, 30, "transpose -24..24"))
p1.append(fader("faderh", 20, 690, 600, 60, "/transpose", -24.0, 24.0, color="blue", centered="true"))
p1.append(label(20, 760, 200, 30, "gain 0..2"))
p1.append(fader("faderh", 20, 790, 600, 60, "/gain", 0.0, 2.0, color="orange"))
p1.append(label(20, 860, 200, 30, "glide 0..5 s"))
p1.append(fader("faderh", 20, 890, 600, 60, "/glide", 0.0, 5.0, color="purple"))
p1.append(label(650, 660, 100, 30, "play"))
p1.append(toggle(650, 690, 100, 100, "/play"))
p1.append(label(650, 860, 100, 30, "notify"))
p1.append(push(650, 890, 100, 60, "/notify", 1, color="gray"))
# page 2: keys
p2 = [label(20, 10, 728, 40, "keys (press: /note N)", 20)]
for k, note in enumerate(range(60, 73)):
    col, row = k % 4, k // 4
    x, y = 20 + col * 185, 70 + row * 230
    p2.append(push(x, y, 170, 200, "/note", note, color="red" if NAMES[note % 12].endswith("#") else "yellow"))
    p2.append(label(x, y + 202, 170, 24, f"{NAMES[note % 12]}{note // 12 - 1} ({note})"))

xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
       f'<layout {attrs(version="17", mode="3", w="768", h="1024", orientation="vertical")}>\n'
       + tabpage("sound", p1) + "\n" + tabpage("keys", p2) + "\n</layout>\n")



def main(out: Path) -> None:
    (out / "mapping.json").write_text(json.dumps(mapping, indent=2) + "\n")
    with zipfile.ZipFile(out / "aedaemon-mk1.touchosc", "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("index.xml", date_time=(2026, 1, 1, 0, 0, 0))  # fixed: reproducible bytes
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, xml)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
