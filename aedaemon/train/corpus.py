"""Corpus building: audio files or a GM soundfont → normalised magnitude frames + chroma labels.

Output (one folder):
    corpus.npz      frames float16 [N, 2049] (each frame max 1), labels int8 [N] (pitch class
                    0 = C of the frame's own dominant chroma), file_index int32 [N],
                    split uint8 [N] (0 train, 1 validation, 2 test), note int16 [N] (the MIDI
                    note that was played, soundfont corpora only, else -1)
    manifest.json   settings, every source file with its split and frame count, totals

Frames: mono 44.1 kHz, 4096-point periodic Hann window, hop 1024, no centring padding.
Silent frames (RMS below an absolute floor or far below the file's loudest frame) are dropped.
The split is by source file (for a soundfont: by GM program), never by frame, so validation
and test measure generalisation to unseen sounds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from ..errors import AedaemonError
from ..files import atomic_write_with
from . import CHROMA_SIZE, HOP, N_BINS, N_FFT, PITCH_CLASSES, REFERENCE_NOTE, SAMPLE_RATE

AUDIO_EXTENSIONS = (".wav", ".flac", ".aif", ".aiff", ".aifc")
SPLIT_NAMES = ("train", "validation", "test")
CORPUS_FILE = "corpus.npz"
MANIFEST_FILE = "manifest.json"

# Chroma: a harmonic-sum pitch salience folded to pitch classes. A plain power chroma (every
# bin voting for its nearest note) calls a trumpet or clarinet frame by its strongest partial
# (often the 3rd harmonic, a fifth up): on FluidR3_GM it agreed with the played note for 72 % of
# frames; the salience below (candidate f0 from MIDI 24 to 96, harmonics 1-10 weighted 0.8^(h-1),
# linear interpolation between bins, the best octave per class) agrees for 92 %.
SALIENCE_NOTES = (24, 96)
SALIENCE_HARMONICS = 10
SALIENCE_DECAY = 0.8


class CorpusError(AedaemonError):
    """A corpus that cannot be built or read."""


# --------------------------------------------------------------------------- chroma


def salience_matrix(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """[n_notes, n_bins]: row j sums the harmonics of MIDI note SALIENCE_NOTES[0] + j."""
    n_bins = n_fft // 2 + 1
    notes = np.arange(SALIENCE_NOTES[0], SALIENCE_NOTES[1] + 1)
    m = np.zeros((len(notes), n_bins), dtype=np.float32)
    for j, note in enumerate(notes):
        f0 = 440.0 * 2.0 ** ((note - 69) / 12.0)
        for h in range(1, SALIENCE_HARMONICS + 1):
            b = h * f0 * n_fft / sample_rate
            lo = int(np.floor(b))
            if lo + 1 >= n_bins:
                break
            w = SALIENCE_DECAY ** (h - 1)
            m[j, lo] += w * (1.0 - (b - lo))
            m[j, lo + 1] += w * (b - lo)
    return m


_SALIENCE = None


def frame_chroma(mag: np.ndarray) -> np.ndarray:
    """Chroma [.., 12] of magnitude frames [.., n_bins]: per pitch class (0 = C), the largest
    harmonic-sum salience over the octaves."""
    global _SALIENCE
    if _SALIENCE is None:
        _SALIENCE = salience_matrix()
    sal = np.asarray(mag, dtype=np.float32) @ _SALIENCE.T  # [.., n_notes]
    n = sal.shape[-1]
    first = SALIENCE_NOTES[0] % 12
    pad = (-n) % 12
    sal = np.concatenate([sal, np.full(sal.shape[:-1] + (pad,), -np.inf, np.float32)], axis=-1)
    per_octave = sal.reshape(sal.shape[:-1] + ((n + pad) // 12, 12)).max(axis=-2)  # column k = class first+k
    return np.roll(per_octave, first, axis=-1)


def dominant_pitch_class(mag: np.ndarray) -> np.ndarray:
    """The pitch class (0 = C) with the most energy, per frame."""
    return np.argmax(frame_chroma(mag), axis=-1).astype(np.int8)


def one_hot(labels: np.ndarray) -> np.ndarray:
    out = np.zeros((len(labels), CHROMA_SIZE), dtype=np.float32)
    out[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)] = 1.0
    return out


# --------------------------------------------------------------------------- audio → frames


def find_audio(paths: Sequence[str | Path]) -> list[Path]:
    """Audio files named directly or found (recursively) in folders, sorted, deduplicated."""
    if not paths:
        raise CorpusError("no input: give audio files or folders, or --soundfont SF2")
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in AUDIO_EXTENSIONS)
            if not inside:
                raise CorpusError(f"{p}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
            found.extend(inside)
        elif p.is_file():
            found.append(p)
        else:
            raise CorpusError(f"{p}: no such file or folder")
    seen: set[Path] = set()
    unique = []
    for f in found:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 at `sample_rate` (channels averaged, resampled with resample_poly)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorpusError(f"{path}: cannot read audio ({msg})") from None
    if data.size == 0 or data.shape[0] == 0:
        raise CorpusError(f"{path}: the file holds no audio samples")
    y = data.mean(axis=1)
    if not np.all(np.isfinite(y)):
        raise CorpusError(f"{path}: the audio contains NaN or inf samples")
    if sr != sample_rate:
        g = np.gcd(int(sr), int(sample_rate))
        y = resample_poly(y, sample_rate // g, int(sr) // g).astype(np.float32)
    return y.astype(np.float32, copy=False)


def _window(n_fft: int = N_FFT) -> np.ndarray:
    from scipy.signal import get_window

    return get_window("hann", n_fft).astype(np.float32)  # periodic Hann


def stft_frames(y: np.ndarray, n_fft: int = N_FFT, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """(magnitudes [T, n_bins] float32, windowed RMS per frame [T]) of a mono signal.

    Frame t covers samples [t*hop, t*hop + n_fft); the end is zero-padded to a whole frame.
    """
    if len(y) < n_fft:
        y = np.pad(y, (0, n_fft - len(y)))
    n_frames = 1 + int(np.ceil((len(y) - n_fft) / hop))
    y = np.pad(y, (0, (n_frames - 1) * hop + n_fft - len(y)))
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    w = _window(n_fft)
    mags = np.empty((n_frames, n_fft // 2 + 1), dtype=np.float32)
    rms = np.empty(n_frames, dtype=np.float32)
    wnorm = float(np.sqrt(np.mean(w * w)))
    for s in range(0, n_frames, 512):
        block = y[idx[s : s + 512]] * w
        rms[s : s + 512] = np.sqrt(np.mean(block * block, axis=1)) / wnorm
        mags[s : s + 512] = np.abs(np.fft.rfft(block, axis=1))
    return mags, rms


def sounding(rms: np.ndarray, floor_db: float, relative_db: float) -> np.ndarray:
    """Mask of frames that are not silent: above an absolute dBFS floor and within
    `relative_db` of the loudest frame of the same file."""
    if rms.size == 0:
        return np.zeros(0, dtype=bool)
    thr = max(10 ** (floor_db / 20.0), float(rms.max()) * 10 ** (relative_db / 20.0))
    return rms > thr


def normalise(mags: np.ndarray) -> np.ndarray:
    peak = mags.max(axis=1, keepdims=True)
    return mags / np.maximum(peak, 1e-12)


def evenly(n: int, k: Optional[int]) -> np.ndarray:
    """Indices of at most k of n items, evenly spread (all when k is None or >= n)."""
    if k is None or k <= 0 or n <= k:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))


@dataclass
class Source:
    path: str
    frames: np.ndarray  # float32 [T, n_bins], normalised
    labels: np.ndarray  # int8 [T]
    notes: np.ndarray  # int16 [T], -1 when unknown
    info: dict = field(default_factory=dict)


def frames_from_file(
    path: Path,
    floor_db: float = -70.0,
    relative_db: float = -50.0,
    max_frames: Optional[int] = None,
) -> Source:
    y = read_audio(path)
    mags, rms = stft_frames(y)
    keep = np.nonzero(sounding(rms, floor_db, relative_db))[0]
    keep = keep[evenly(len(keep), max_frames)]
    frames = normalise(mags[keep])
    return Source(
        path=str(path),
        frames=frames,
        labels=dominant_pitch_class(frames),
        notes=np.full(len(frames), -1, np.int16),
    )


# --------------------------------------------------------------------------- split + save


def split_sources(n_sources: int, seed: int, fractions: tuple[float, float] = (0.06, 0.06)) -> np.ndarray:
    """Split code (0 train, 1 validation, 2 test) per source; ~88/6/6, at least one each."""
    if n_sources < 3:
        raise CorpusError(
            f"corpus too small to split: {n_sources} source file(s) with sound; the split is by "
            "file (train/validation/test), so at least 3 are needed"
        )
    n_val = max(1, int(round(fractions[0] * n_sources)))
    n_test = max(1, int(round(fractions[1] * n_sources)))
    order = np.random.default_rng(seed).permutation(n_sources)
    codes = np.zeros(n_sources, dtype=np.uint8)
    codes[order[:n_test]] = 2
    codes[order[n_test : n_test + n_val]] = 1
    return codes


def write_corpus(out: Path, sources: list[Source], seed: int, description: str, command: str, extra: dict) -> dict:
    sources = [s for s in sources if len(s.frames)]
    codes = split_sources(len(sources), seed)
    frames = np.concatenate([s.frames for s in sources]).astype(np.float16)
    labels = np.concatenate([s.labels for s in sources]).astype(np.int8)
    notes = np.concatenate([s.notes for s in sources]).astype(np.int16)
    file_index = np.concatenate([np.full(len(s.frames), i, np.int32) for i, s in enumerate(sources)])
    split = codes[file_index]
    counts = {name: int(np.sum(split == k)) for k, name in enumerate(SPLIT_NAMES)}
    label_counts = {PITCH_CLASSES[c]: int(np.sum(labels == c)) for c in range(CHROMA_SIZE)}
    manifest = {
        "format_version": 1,
        "description": description,
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop": HOP,
        "window": "hann",
        "n_bins": N_BINS,
        "reference_note": REFERENCE_NOTE,
        "seed": seed,
        "command": command,
        "frames": counts,
        "total_frames": int(len(frames)),
        "label_counts": label_counts,
        **extra,
        "files": [
            {"path": s.path, "split": SPLIT_NAMES[int(codes[i])], "frames": int(len(s.frames)), **s.info}
            for i, s in enumerate(sources)
        ],
    }
    if np.any(notes >= 0):
        known = notes >= 0
        manifest["label_matches_played_note"] = float(np.mean(labels[known] == (notes[known] % 12)))

    def save_npz(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, frames=frames, labels=labels, file_index=file_index, split=split, note=notes)

    atomic_write_with(out / CORPUS_FILE, save_npz)
    atomic_write_with(
        out / MANIFEST_FILE, lambda tmp: Path(tmp).write_text(json.dumps(manifest, indent=2) + "\n")
    )
    return manifest


def build_from_audio(
    inputs: Sequence[str | Path],
    out: Path,
    seed: int = 0,
    max_frames_per_file: Optional[int] = None,
    command: str = "",
    progress=None,
) -> dict:
    files = find_audio(inputs)
    sources = []
    for f in files:
        s = frames_from_file(f, max_frames=max_frames_per_file)
        if len(s.frames) == 0:
            raise CorpusError(f"{f}: silent (no frame above the level floor)")
        sources.append(s)
        if progress:
            progress(f"{f}: {len(s.frames)} frames")
    desc = f"{len(files)} audio file(s): " + ", ".join(str(p) for p in list(map(str, inputs))[:5])
    return write_corpus(out, sources, seed, desc, command, {"kind": "audio"})


# --------------------------------------------------------------------------- soundfont


@dataclass
class ScaleSpec:
    low: int = REFERENCE_NOTE - 12
    high: int = REFERENCE_NOTE + 12
    note_seconds: float = 1.0
    gap_seconds: float = 0.5
    velocity: int = 100

    @property
    def notes(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def onset(self, i: int) -> float:
        return i * (self.note_seconds + self.gap_seconds)


def write_scale_midi(path: Path, program: int, spec: ScaleSpec) -> None:
    import mido

    tpb = 480
    tempo = 500000  # 120 bpm: one beat = 0.5 s
    ticks = lambda sec: int(round(sec / 0.5 * tpb))  # noqa: E731
    mid = mido.MidiFile(ticks_per_beat=tpb)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    tr.append(mido.Message("program_change", program=program, channel=0, time=0))
    for i, n in enumerate(spec.notes):
        tr.append(mido.Message("note_on", note=n, velocity=spec.velocity, channel=0, time=0 if i == 0 else ticks(spec.gap_seconds)))
        tr.append(mido.Message("note_off", note=n, velocity=0, channel=0, time=ticks(spec.note_seconds)))
    tr.append(mido.MetaMessage("end_of_track", time=ticks(spec.gap_seconds)))
    mid.save(str(path))


def render_program(sf2: Path, program: int, spec: ScaleSpec, workdir: Path) -> np.ndarray:
    mid = workdir / f"program_{program:03d}.mid"
    wav = workdir / f"program_{program:03d}.wav"
    write_scale_midi(mid, program, spec)
    cmd = [
        "fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5",
        "-r", str(SAMPLE_RATE), "-F", str(wav), str(sf2), str(mid),
    ]  # fmt: skip
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        raise CorpusError("the fluidsynth command is not installed (Debian: apt-get install fluidsynth)") from None
    if res.returncode != 0 or not wav.is_file():
        last = (res.stderr or res.stdout).strip().splitlines()
        raise CorpusError(f"fluidsynth failed on program {program}: {last[-1] if last else 'no output'}")
    y = read_audio(wav)
    wav.unlink()
    mid.unlink()
    return y


def note_sources(
    y: np.ndarray,
    spec: ScaleSpec,
    frames_per_note: Optional[int],
    note_floor_db: float,
    floor_db: float = -70.0,
    relative_db: float = -50.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[bool]]:
    """Frames of each note of a rendered scale: (frames, labels, notes, which notes sounded)."""
    mags, rms = stft_frames(y)
    starts = np.arange(len(mags)) * HOP
    out_f, out_n, sounded = [], [], []
    for i, n in enumerate(spec.notes):
        t0 = spec.onset(i) * SAMPLE_RATE
        t1 = (spec.onset(i) + spec.note_seconds + spec.gap_seconds) * SAMPLE_RATE
        seg = np.nonzero((starts >= t0) & (starts + N_FFT <= t1 + N_FFT // 2))[0]
        peak = float(np.max(np.abs(y[int(t0) : int(t1)]))) if int(t1) > int(t0) else 0.0
        ok = peak > 10 ** (note_floor_db / 20.0)
        sounded.append(ok)
        if not ok or len(seg) == 0:
            continue
        keep = seg[sounding(rms[seg], floor_db, relative_db)]
        keep = keep[evenly(len(keep), frames_per_note)]
        out_f.append(mags[keep])
        out_n.append(np.full(len(keep), n, np.int16))
    if not out_f:
        return np.zeros((0, N_BINS), np.float32), np.zeros(0, np.int8), np.zeros(0, np.int16), sounded
    frames = normalise(np.concatenate(out_f))
    return frames, dominant_pitch_class(frames), np.concatenate(out_n), sounded


def build_from_soundfont(
    sf2: Path,
    out: Path,
    seed: int = 0,
    programs: Iterable[int] = range(0, 112),
    spec: Optional[ScaleSpec] = None,
    frames_per_note: Optional[int] = 16,
    note_floor_db: float = -40.0,
    min_sounding: float = 0.9,
    command: str = "",
    progress=None,
) -> dict:
    """Render a chromatic scale per GM program, keep the programs that sound over the whole range."""
    sf2 = Path(sf2)
    if not sf2.is_file():
        raise CorpusError(f"{sf2}: soundfont not found")
    if shutil.which("fluidsynth") is None:
        raise CorpusError("the fluidsynth command is not installed (Debian: apt-get install fluidsynth)")
    spec = spec or ScaleSpec()
    sources, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="aedaemon-render-") as tmp:
        for prog in programs:
            y = render_program(sf2, prog, spec, Path(tmp))
            frames, labels, notes, sounded = note_sources(y, spec, frames_per_note, note_floor_db)
            share = float(np.mean(sounded))
            if share < min_sounding or len(frames) == 0:
                skipped.append({"program": prog, "notes_sounding": share})
                if progress:
                    progress(f"program {prog:3d}: skipped ({share:.0%} of notes sound)")
                continue
            agree = float(np.mean(labels == notes % 12))
            sources.append(
                Source(
                    path=f"{sf2.name}#program{prog}",
                    frames=frames,
                    labels=labels,
                    notes=notes,
                    info={"program": prog, "label_matches_played_note": round(agree, 4)},
                )
            )
            if progress:
                progress(f"program {prog:3d}: {len(frames)} frames, labels match played note {agree:.0%}")
    if len(sources) < 3:
        raise CorpusError(f"corpus too small to split: only {len(sources)} program(s) of {sf2} sound in range")
    desc = (
        f"{sf2.name}: chromatic scales MIDI {spec.low}-{spec.high}, {len(sources)} GM programs "
        f"(split by program), {frames_per_note} frames per note"
    )
    extra = {
        "kind": "soundfont",
        "soundfont": str(sf2),
        "notes": [spec.low, spec.high],
        "note_seconds": spec.note_seconds,
        "frames_per_note": frames_per_note,
        "skipped_programs": skipped,
    }
    return write_corpus(out, sources, seed, desc, command, extra)


# --------------------------------------------------------------------------- reading


@dataclass
class Corpus:
    path: Path
    frames: np.ndarray  # float16 [N, n_bins]
    labels: np.ndarray
    file_index: np.ndarray
    split: np.ndarray
    note: np.ndarray
    manifest: dict

    def part(self, name: str) -> np.ndarray:
        return np.nonzero(self.split == SPLIT_NAMES.index(name))[0]


def load_corpus(path: str | Path) -> Corpus:
    p = Path(path)
    if p.is_file() and p.name == CORPUS_FILE:
        p = p.parent
    npz, man = p / CORPUS_FILE, p / MANIFEST_FILE
    if not p.is_dir():
        raise CorpusError(f"{p}: no such corpus folder (make one with `aedaemon corpus`)")
    if not npz.is_file() or not man.is_file():
        raise CorpusError(f"{p}: not a corpus folder ({CORPUS_FILE} and {MANIFEST_FILE} expected)")
    try:
        manifest = json.loads(man.read_text())
        with np.load(npz) as z:
            c = Corpus(p, z["frames"], z["labels"], z["file_index"], z["split"], z["note"], manifest)
    except Exception as exc:  # noqa: BLE001
        raise CorpusError(f"{p}: cannot read the corpus ({exc})") from None
    if c.frames.ndim != 2 or c.frames.shape[1] != N_BINS:
        raise CorpusError(f"{p}: frames have shape {c.frames.shape}, expected [N, {N_BINS}]")
    for name in SPLIT_NAMES:
        if len(c.part(name)) == 0:
            raise CorpusError(f"{p}: the {name} split is empty")
    return c


GM_PROGRAMS = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
    "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ",
    "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar",
    "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)",
    "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola",
    "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs",
    "Voice Oohs", "Synth Voice", "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
    "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax",
    "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute",
    "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina", "Lead 1 (square)",
    "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)", "Lead 6 (voice)",
    "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)",
    "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto",
    "Kalimba", "Bagpipe", "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock",
    "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise", "Breath Noise",
    "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)


def source_name(entry: dict) -> str:
    """A manifest file entry as a readable name (GM program names for soundfont sources)."""
    prog = entry.get("program")
    if isinstance(prog, int) and 0 <= prog < len(GM_PROGRAMS):
        return f"{prog} {GM_PROGRAMS[prog]}"
    return str(entry.get("path", "?"))
