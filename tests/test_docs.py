"""The docs carry the contract and stay true to the code.

- docs/protocol.md's address table is exactly what `aedaemon addresses` prints (the table in
  aedaemon/protocol.py); regenerate it with `python tests/test_docs.py --write`.
- No tracked file outside tests/ names the shared contract files that a user of the repo does
  not have: docs/protocol.md, docs/model-format.md and docs/nanokontrol2.md are the contract.
- Every relative link (and image) in README.md, docs/*.md and the clients' READMEs points to an
  existing file, and a `#fragment` to an existing heading.
- The "planned" addresses of docs/protocol.md do not exist yet (move them to the table when
  they do), every model.json field is in docs/model-format.md, and every address of the default
  nanoKONTROL2 mapping is in docs/nanokontrol2.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL_DOC = ROOT / "docs" / "protocol.md"
BEGIN = "<!-- addresses:begin -->"
END = "<!-- addresses:end -->"
REGENERATE = "python tests/test_docs.py --write"
SHARED_NAMES = ("PROTOCOL.md", "MODEL.md", "NANOKONTROL2.md")


def _aedaemon() -> Path:
    """The installed console script next to this interpreter (.venv/bin/aedaemon)."""
    script = Path(sys.executable).parent / "aedaemon"
    if not script.is_file():
        raise RuntimeError(f"{script} is missing: install the package (.ci/setup dev)")
    return script


def addresses_output() -> str:
    """What `aedaemon addresses` prints, without its final newline."""
    out = subprocess.run(
        [str(_aedaemon()), "addresses"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return out[:-1] if out.endswith("\n") else out


def split_protocol_doc(text: str) -> tuple[str, str, str]:
    """(before, the generated block, after) of docs/protocol.md; the block excludes the marker
    lines and the newlines that end them."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"{PROTOCOL_DOC} must hold exactly one {BEGIN} ... {END} block")
    start = text.index(BEGIN) + len(BEGIN) + 1
    stop = text.index(END, start)
    return text[:start], text[start : stop - 1], text[stop - 1 :]


def write_protocol_table() -> bool:
    """Regenerate the block in docs/protocol.md; True when the file changed."""
    text = PROTOCOL_DOC.read_text(encoding="utf-8")
    before, block, after = split_protocol_doc(text)
    table = addresses_output()
    if block == table:
        return False
    PROTOCOL_DOC.write_text(before + table + after, encoding="utf-8")
    return True


# ---- the generated address table --------------------------------------------------------------


def test_protocol_doc_table_is_the_generated_one():
    _, block, _ = split_protocol_doc(PROTOCOL_DOC.read_text(encoding="utf-8"))
    assert block == addresses_output(), (
        f"docs/protocol.md's address table differs from `aedaemon addresses`; regenerate it with "
        f"`{REGENERATE}` (from the repository root, with the venv's python)"
    )


# ---- no references to the contract files outside the repo -------------------------------------


def tracked_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.split(b"\0")
    return [ROOT / n.decode() for n in names if n and not n.startswith(b"tests/")]


def test_no_tracked_file_names_the_shared_contract_files():
    found = []
    for path in tracked_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        data = path.read_bytes()
        for lineno, line in enumerate(data.split(b"\n"), 1):
            for name in SHARED_NAMES:
                if name.encode() in line:
                    found.append(f"{path.relative_to(ROOT)}:{lineno}: {name}")
    assert not found, (
        "these files name contract files a user of the repo does not have; link "
        "docs/protocol.md, docs/model-format.md or docs/nanokontrol2.md instead:\n  " + "\n  ".join(found)
    )


# ---- relative links ----------------------------------------------------------------------------

LINK_RE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE_RE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
HEADING_RE = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def linked_docs() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    docs += sorted((ROOT / "clients").glob("*/README*.md"))
    return docs


def strip_code(text: str) -> str:
    """Markdown without fenced blocks, indented code blocks and inline code spans."""
    text = FENCE_RE.sub("", text)
    text = re.sub(r"(?m)^(?: {4}|\t).*$", "", text)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces → '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for m in HEADING_RE.finditer(FENCE_RE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(doc: Path) -> list[str]:
    bad = []
    for m in LINK_RE.finditer(strip_code(doc.read_text(encoding="utf-8"))):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        dest = doc if not file_part else (doc.parent / file_part).resolve()
        if not dest.exists():
            bad.append(f"{doc.relative_to(ROOT)}: {target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            bad.append(f"{doc.relative_to(ROOT)}: {target}: no heading '#{fragment}' in {dest.relative_to(ROOT)}")
    return bad


def test_relative_links_in_the_docs_exist():
    bad = [b for doc in linked_docs() for b in broken_links(doc)]
    assert not bad, "broken links:\n  " + "\n  ".join(bad)


def test_the_link_checker_sees_links():
    links = LINK_RE.findall(strip_code((ROOT / "README.md").read_text(encoding="utf-8")))
    assert "docs/protocol.md" in links and "docs/img/score.png" in links
    assert slug("Deployment on a Raspberry Pi") == "deployment-on-a-raspberry-pi"
    assert slug("`[[bind]]`: one control → one action") == "bind-one-control--one-action"


# ---- the docs name only what exists, and all of it ---------------------------------------------


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    nxt = re.search(r"(?m)^## ", text[start + len(heading) :])
    return text[start : start + len(heading) + nxt.start()] if nxt else text[start:]


def test_planned_addresses_are_not_in_the_table():
    from aedaemon.protocol import ADDRESSES

    planned = _section(PROTOCOL_DOC.read_text(encoding="utf-8"), "## Planned")
    rows = [line.split("|")[2] for line in planned.splitlines() if line.startswith("| ") and line.count("|") == 3]
    named = {a for row in rows for a in re.findall(r"`(/[a-z_/]+)`", row)}
    assert {"/voices", "/input/open"} <= named
    implemented = {e.pattern for e in ADDRESSES}
    assert not named & implemented, (
        f"docs/protocol.md lists {sorted(named & implemented)} as planned, but the daemon has them: "
        "describe them in the document (the table is generated)"
    )


def test_every_model_json_field_is_documented():
    from aedaemon.model import ModelMeta, TrainingRecord

    text = (ROOT / "docs" / "model-format.md").read_text(encoding="utf-8")
    missing = [f for f in [*ModelMeta.model_fields, *TrainingRecord.model_fields] if f"`{f}`" not in text]
    assert not missing, f"docs/model-format.md does not describe {missing}"


def test_every_nanokontrol2_action_is_documented():
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        import tomli as tomllib

    mapping = tomllib.loads((ROOT / "aedaemon" / "mappings" / "nanokontrol2.toml").read_text(encoding="utf-8"))
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in (ROOT / "docs" / "nanokontrol2.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("|")
    ]
    missing = []
    for b in mapping["bind"] + mapping["led"]:
        cc = f"{b['cc']}–{b['cc'] + b['strips'] - 1}" if "strips" in b else str(b["cc"])
        want = [b[k] for k in ("address", "on_address", "off_address", "state") if k in b and b[k].startswith("/")]
        if not any(cc in row and all(w in " ".join(row) for w in want) for row in rows):
            missing.append(f"{b['name']} (CC {cc}{': ' if want else ''}{', '.join(want)})")
    assert not missing, (
        "docs/nanokontrol2.md has no table row with the CC and address of " + "; ".join(missing)
        + " (from aedaemon/mappings/nanokontrol2.toml)"
    )

if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {REGENERATE}   (rewrites the generated address table in docs/protocol.md)")
    changed = write_protocol_table()
    print(f"{PROTOCOL_DOC.relative_to(ROOT)}: {'address table regenerated' if changed else 'up to date'}")
