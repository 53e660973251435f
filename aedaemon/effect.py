"""The effect chain: a sound played through the autoencoder (Sarroff & Casey 2014, ANNe).

Per analysis frame (the model's periodic Hann window, n_fft, a hop that divides n_fft):

    frame → |STFT| → normalised to a maximum of 1 as the corpus was (its peak is the frame's level)
          → chroma: the frame's own (the corpus's harmonic-salience label, one-hot) or a held one
          → encoder (encoder.onnx) → latent control ((1 − morph)·encoded + morph·latent)·scale·(not muted)
          → decoder → × the frame's level → shaping (transpose, freq_shift, tilt)
          → phase: the input's own (default, what the seeds did) or RTPGHI
          → irfft → dual window → overlap-add → dry/wet mix → gain

Chroma. The encoder (when it has a `chroma` input, as `aedaemon train` writes it) always gets
the frame's own label: that is what it was trained with, and a frame encoded under another
pitch class gets latents that explain the mismatch, not its timbre. The decoder gets the same
label ("auto") or the held chroma ("held", `--chroma`): the frame's timbre at that pitch class.

Cost. Frames are processed in blocks (`BLOCK` frames): one batched encoder run and one batched
decoder run per block, on the frames that sound; equal decoder inputs in a block are decoded
once (np.unique over the rows), and a silent frame (windowed RMS below `SILENCE_DBFS`, the
corpus's absolute floor: nothing the model learned from) is neither encoded nor decoded, its
wet frame is silence. With mix 0 the wet path is not computed at all.

Alignment (offline). The signal is padded with n_fft − hop zeros in front, so the first sample
is covered by every frame overlapping it and the overlap-add of unmodified frames rebuilds the
input exactly (the dual window); the output is cut back to the input's samples. The output is
therefore aligned with the input: offline latency 0, and the dry path is the input itself.
(Live, a frame must be complete before it is analysed: n_fft samples plus the output path.)

Output level. The wet path keeps the input's level (each frame's peak goes back on the decoded
frame). When the mixed output would exceed full scale, it goes through the renderer's soft
limiter (aedaemon/dsp/dynamics.py; identity below its knee) and the figures say how many
samples were above 1; otherwise nothing touches the samples.

This module needs no engine: numpy, scipy, the model bundle and aedaemon/dsp.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import scipy.fft

from .dsp.dynamics import soft_limit
from .dsp.phase import make_phase
from .dsp.shaping import SpectralShaper
from .dsp.stft import dual_window, hann
from .errors import AedaemonError, ParameterError
from .model import CHROMA_SIZE, ModelBundle

PHASES = ("input", "rtpghi")  # the input's own phase (default) or RTPGHI from the magnitude
SILENCE_DBFS = -70.0  # a frame whose windowed RMS is below this is silence (the corpus's floor)
BLOCK = 512  # frames per batched encode/decode
# the synthesizer's ranges (aedaemon/engine.py, the OSC address table), for the same flags
MIX_RANGE = (0.0, 1.0)
MORPH_RANGE = (0.0, 1.0)
SCALE_RANGE = (0.0, 4.0)
TRANSPOSE_RANGE = (-24.0, 24.0)
TILT_RANGE = (-12.0, 12.0)
GAIN_RANGE = (0.0, 2.0)


# ---- settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectSettings:
    """What the chain does to every frame (constant over a file offline)."""

    mix: float = 1.0  # dry/wet: 0 = the input only, 1 = the resynthesis only
    morph: float = 0.0  # 0 = the input's own latents, 1 = `latent`
    latent: Optional[tuple[float, ...]] = None  # what morph blends towards; None: the model's default
    scale: Optional[tuple[float, ...]] = None  # per unit, None: all 1
    mute: Optional[tuple[bool, ...]] = None  # per unit, None: none
    chroma: Optional[tuple[float, ...]] = None  # held chroma for the decoder; None: each frame's own ("auto")
    transpose: float = 0.0  # semitones, peak-locked (SpectralShaper)
    freq_shift: int = 0  # bins, circular
    tilt: float = 0.0  # dB per octave around 1 kHz
    gain: float = 1.0  # linear, on the mixed output
    phase: str = "input"
    hop: Optional[int] = None  # None: the model's hop
    seed: int = 0  # RTPGHI's initial phases


def _in_range(v: float, rng: tuple[float, float], what: str) -> float:
    if not (math.isfinite(v) and rng[0] <= v <= rng[1]):
        raise ParameterError(f"{what} {v:g} is out of range {rng[0]:g}..{rng[1]:g}")
    return float(v)


def check_hop(n_fft: int, hop: int) -> None:
    """A hop the overlap-add can rebuild from: a divisor of n_fft whose dual window is finite
    (with the Hann window: at most n_fft/2)."""
    if hop <= 0 or n_fft % hop:
        raise ParameterError(f"hop {hop} must be a positive divisor of n_fft {n_fft}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = bool(np.isfinite(dual_window(hann(n_fft), hop)).all())
    if not ok:
        raise ParameterError(f"hop {hop} is too large for n_fft {n_fft}: overlap-add cannot rebuild the sound "
                             f"(use at most {n_fft // 2})")


@dataclass(frozen=True)
class Controls:
    """EffectSettings checked against a model: vectors of the model's size, ranges applied."""

    mix: float
    morph: float
    latent: np.ndarray  # float32 [N], clamped to control_range
    scale: np.ndarray  # float32 [N], 0 where muted
    chroma: Optional[np.ndarray]  # float32 [12] held, or None (auto)
    transpose: float
    freq_shift: int
    tilt: float
    gain: float
    phase: str
    hop: int
    seed: int

    @property
    def shaping(self) -> bool:
        return self.transpose != 0.0 or self.freq_shift != 0 or self.tilt != 0.0


def resolve_settings(s: EffectSettings, bundle: ModelBundle) -> Controls:
    """ParameterError with one line for anything out of range or of the wrong size."""
    meta = bundle.meta
    n = meta.latent_size
    if s.phase not in PHASES:
        raise ParameterError(f"phase must be one of {', '.join(PHASES)}, got '{s.phase}'")
    hop = meta.hop if s.hop is None else int(s.hop)
    check_hop(meta.n_fft, hop)
    lo, hi = meta.control_range
    if s.latent is None:
        latent = np.asarray(meta.default_latent, dtype=np.float64)
    else:
        if len(s.latent) != n:
            raise ParameterError(f"latent expects {n} values (model '{meta.name}' has {n} units), got {len(s.latent)}")
        latent = np.clip(np.asarray(s.latent, dtype=np.float64), lo, hi)  # as /latent clamps
    scale = np.ones(n)
    if s.scale is not None:
        if len(s.scale) != n:
            raise ParameterError(f"scale expects {n} values (model '{meta.name}' has {n} units), got {len(s.scale)}")
        scale = np.array([_in_range(float(v), SCALE_RANGE, f"scale of unit {i}") for i, v in enumerate(s.scale)])
    if s.mute is not None:
        if len(s.mute) != n:
            raise ParameterError(f"mute expects {n} values (model '{meta.name}' has {n} units), got {len(s.mute)}")
        scale[np.asarray(s.mute, dtype=bool)] = 0.0
    chroma = None
    if s.chroma is not None:
        c = np.asarray(s.chroma, dtype=np.float64)
        if c.shape != (CHROMA_SIZE,) or not np.all(np.isfinite(c)) or np.any(c < 0) or c.sum() <= 0:
            raise ParameterError("chroma must be 12 weights >= 0, not all 0")
        chroma = (c / c.sum()).astype(np.float32)
    limit = meta.n_fft // 2
    return Controls(
        mix=_in_range(s.mix, MIX_RANGE, "mix"),
        morph=_in_range(s.morph, MORPH_RANGE, "morph"),
        latent=latent.astype(np.float32),
        scale=scale.astype(np.float32),
        chroma=chroma,
        transpose=_in_range(s.transpose, TRANSPOSE_RANGE, "transpose"),
        freq_shift=int(min(limit, max(-limit, int(s.freq_shift)))),  # clamped, as /freq_shift
        tilt=_in_range(s.tilt, TILT_RANGE, "tilt"),
        gain=_in_range(s.gain, GAIN_RANGE, "gain"),
        phase=s.phase,
        hop=hop,
        seed=int(s.seed),
    )


# ---- chroma as the corpus labelled frames ------------------------------------------------------

_salience: dict[tuple[int, int], np.ndarray] = {}


def frame_chroma(mag: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """Chroma [T, 12] of magnitude frames [T, n_bins]: the corpus's harmonic-salience chroma
    (aedaemon/train/corpus.py: frame_chroma) at this model's rate and frame size."""
    from .train.corpus import SALIENCE_NOTES, salience_matrix

    key = (sample_rate, n_fft)
    sal_m = _salience.get(key)
    if sal_m is None:
        import scipy.sparse

        # 10 harmonics × 2 bins per note: a sparse product (~1500 terms a frame, not 150 000)
        sal_m = _salience[key] = scipy.sparse.csr_matrix(salience_matrix(sample_rate, n_fft).T)
    sal = np.asarray((sal_m.T @ np.asarray(mag, dtype=np.float32).T).T, dtype=np.float32)  # [T, n_notes]
    n = sal.shape[-1]
    pad = (-n) % 12
    sal = np.concatenate([sal, np.full(sal.shape[:-1] + (pad,), -np.inf, np.float32)], axis=-1)
    per_octave = sal.reshape(sal.shape[:-1] + ((n + pad) // 12, 12)).max(axis=-2)
    return np.roll(per_octave, SALIENCE_NOTES[0] % 12, axis=-1)


def frame_labels(mag: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray:
    """One-hot [T, 12] of each frame's dominant pitch class, as the corpus labelled frames."""
    labels = np.argmax(frame_chroma(mag, sample_rate, n_fft), axis=-1)
    out = np.zeros((len(labels), CHROMA_SIZE), dtype=np.float32)
    out[np.arange(len(labels)), labels] = 1.0
    return out


# ---- the chain -----------------------------------------------------------------------------------


@dataclass
class EffectStats:
    frames: int = 0  # analysis frames
    silent: int = 0  # frames that cost no encode or decode
    encodes: int = 0  # frames encoded
    decodes: int = 0  # frames decoded (distinct decoder inputs per block)
    seconds: float = 0.0  # of audio
    wall: float = 0.0  # processing time (not reading or writing the files)
    over_full_scale: int = 0  # output samples above 1 before the soft limiter
    latency: int = 0  # samples: the output is aligned with the input offline
    timings: dict = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        return self.seconds / self.wall if self.wall > 0 else math.inf


@dataclass
class Block:
    """One block of analysis frames and what the chain made of them."""

    start: int  # index of the first frame
    spectra: np.ndarray  # complex64 [B, n_bins]: the input's STFT (frame-start phase reference)
    magnitude: np.ndarray  # float32 [B, n_bins]: |spectra|
    level: np.ndarray  # float32 [B]: each frame's peak magnitude
    sounding: np.ndarray  # bool [B]
    wet: np.ndarray  # float32 [B, n_bins]: normalised, decoded and shaped (0 for silent frames)
    latents: np.ndarray  # float32 [B, N]: the effective (controlled) latents (0 for silent frames)


@dataclass
class _Analysed:
    start: int
    spectra: np.ndarray
    magnitude: np.ndarray
    level: np.ndarray
    sounding: np.ndarray
    live: np.ndarray  # indices of the sounding frames
    norm: np.ndarray  # float32 [len(live), n_bins]
    own: Optional[np.ndarray]  # their chroma labels (one-hot), or None
    z: Optional[np.ndarray]  # their encoded latents


def _prefetched(items: Iterator, threads: int) -> Iterator:
    """`items`, the next one computed in a worker thread while the caller uses this one."""
    if threads < 2:
        yield from items
        return
    from concurrent.futures import ThreadPoolExecutor

    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="aedaemon-effect") as pool:
        ahead = pool.submit(next, items, end)
        while True:
            item = ahead.result()
            if item is end:
                return
            ahead = pool.submit(next, items, end)
            yield item


def default_threads() -> int:
    """1: measured on the 2-core development machine with other work on it, the two-stage
    pipeline (threads 2) ran no faster, each stage twice as slow (benchmarks/bench_effect.py
    prints both); on an idle machine with two real cores it can overlap the two networks."""
    return 1


class EffectChain:
    """The effect for one model and one set of controls; `process` runs it over a signal."""

    def __init__(
        self, bundle: ModelBundle, settings: EffectSettings = EffectSettings(), block: int = BLOCK,
        threads: Optional[int] = None, schedule: Sequence[tuple[int, EffectSettings]] = (),
    ) -> None:  # fmt: skip
        """schedule: (input sample, settings) changes after the first (a score): a frame takes
        the settings in force at its centre; the gain moves linearly over a hop. The hop, the
        phase, mix and morph cannot change."""
        self.bundle = bundle
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self.meta = bundle.meta
        self.c = resolve_settings(settings, bundle)
        self._segments = [self.c]
        starts = [0]
        for at, later in sorted(schedule, key=lambda item: item[0]):
            c = resolve_settings(later, bundle)
            for name in ("hop", "phase", "mix", "morph"):
                if getattr(c, name) != getattr(self.c, name):
                    raise ParameterError(f"{name} cannot change during a file (a score may not set it)")
            at = max(0, int(at))
            if at == starts[-1]:  # the later settings at the same sample win
                self._segments[-1] = c
            else:
                self._segments.append(c)
                starts.append(at)
        self._starts = np.asarray(starts, dtype=np.int64)
        self.n_fft = self.meta.n_fft
        self.hop = self.c.hop
        self.n_bins = self.meta.n_bins
        self.sample_rate = self.meta.sample_rate
        self.block = max(1, int(block))
        self.window = hann(self.n_fft).astype(np.float32)
        self.synthesis = dual_window(hann(self.n_fft), self.hop).astype(np.float32)
        self._wnorm = float(np.sqrt(np.mean(self.window.astype(np.float64) ** 2)))
        self._silence = 10.0 ** (SILENCE_DBFS / 20.0)
        self.stats = EffectStats()

    @property
    def pad(self) -> int:
        """Zeros in front of the signal: every sample is then covered by n_fft/hop frames."""
        return self.n_fft - self.hop

    def n_frames(self, n_samples: int) -> int:
        return max(1, -(-(self.pad + n_samples) // self.hop))

    def padded(self, x: np.ndarray) -> np.ndarray:
        t = self.n_frames(len(x))
        total = (t - 1) * self.hop + self.n_fft
        xp = np.zeros(total, dtype=np.float32)
        xp[self.pad : self.pad + len(x)] = x
        return xp

    # -- analysis and the model, a block at a time

    def blocks(self, x: np.ndarray) -> Iterator[Block]:
        """The chain up to the shaped, normalised wet magnitude, block by block. With `threads`
        2 the analysis and encoding of the next block run in a worker thread while this one
        decodes (onnxruntime and the FFTs release the GIL)."""
        for p in _prefetched(self._analysed(x), self.threads):
            b = len(p.spectra)
            wet = np.zeros((b, self.n_bins), dtype=np.float32)
            latents = np.zeros((b, self.meta.latent_size), dtype=np.float32)
            if len(p.live):
                wet[p.live], latents[p.live] = self._decode(p.norm, p.own, p.z, p.start + p.live)
            yield Block(p.start, p.spectra, p.magnitude, p.level, p.sounding, wet, latents)

    def _analysed(self, x: np.ndarray) -> Iterator["_Analysed"]:
        """Frames → spectra, levels, silence, and the sounding frames normalised and encoded."""
        xp = self.padded(np.asarray(x, dtype=np.float32))
        t_total = self.n_frames(len(x))
        views = np.lib.stride_tricks.sliding_window_view(xp, self.n_fft)[:: self.hop]
        for start in range(0, t_total, self.block):
            t0 = time.perf_counter()
            b = min(self.block, t_total - start)
            frames = views[start : start + b] * self.window  # one pass: gather and window
            rms = np.sqrt(np.einsum("ij,ij->i", frames, frames) / self.n_fft) / self._wnorm
            spectra = scipy.fft.rfft(frames, axis=1)  # complex64 for float32 frames
            mag = np.abs(spectra)
            level = mag.max(axis=1)
            sounding = (rms >= self._silence) & (level > 0)
            live = np.nonzero(sounding)[0]
            norm = mag[live] / level[live, None]
            self._add_time("analysis", t0)
            own, z = self._encode(norm) if len(live) else (None, None)
            self.stats.frames += b
            self.stats.silent += b - len(live)
            yield _Analysed(start, spectra, mag, level, sounding, live, norm, own, z)

    def _add_time(self, key: str, since: float) -> None:
        tm = self.stats.timings
        tm[key] = tm.get(key, 0.0) + time.perf_counter() - since

    def _encode(self, norm: np.ndarray) -> tuple[Optional[np.ndarray], np.ndarray]:
        """Normalised frames [B, n_bins] → (their own chroma labels [B, 12] or None, latents [B, N])."""
        t0 = time.perf_counter()
        own = None
        if self.meta.conditioned or self.bundle.encoder_takes_chroma:
            own = frame_labels(norm, self.sample_rate, self.n_fft)
        self._add_time("chroma", t0)
        t1 = time.perf_counter()
        z = self.bundle.encode(norm, own)
        self.stats.encodes += len(norm)
        self._add_time("encode", t1)
        return own, z

    def segment_of(self, frames: np.ndarray) -> np.ndarray:
        """Index into the schedule of the settings in force at each frame's centre."""
        centre = np.asarray(frames, dtype=np.int64) * self.hop - self.pad + self.n_fft // 2
        return np.maximum(np.searchsorted(self._starts, centre, side="right") - 1, 0)

    def _decode(
        self, norm: np.ndarray, own: Optional[np.ndarray], z: np.ndarray, frames: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Latents of these frames (indices) → (decoded and shaped normalised frames [B, n_bins],
        effective latents [B, N])."""
        c = self.c
        t0 = time.perf_counter()
        conditioned = self.meta.conditioned
        b = len(z)
        if len(self._segments) == 1:
            seg = np.zeros(b, dtype=np.int64)
            latent, scale = c.latent, c.scale
        else:
            seg = self.segment_of(frames)
            latent = np.stack([s.latent for s in self._segments])[seg]
            scale = np.stack([s.scale for s in self._segments])[seg]
        eff = z if c.morph == 0.0 else (1.0 - c.morph) * z + c.morph * latent
        eff = np.ascontiguousarray(eff * scale, dtype=np.float32)  # scale 0 where muted
        if conditioned:
            chroma = own
            held = [s.chroma is not None for s in self._segments]
            if any(held):
                chroma = own.copy()
                for k in np.nonzero(np.asarray(held)[seg])[0]:
                    chroma[k] = self._segments[seg[k]].chroma
            inputs = np.concatenate([eff, chroma], axis=1)
        else:
            inputs = eff
        # equal decoder inputs decode once
        uniq, inverse = np.unique(inputs, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        n = self.meta.latent_size
        dec = self.bundle.decode_batch(uniq[:, :n], uniq[:, n:] if conditioned else None)
        self.stats.decodes += len(uniq)
        dec = np.nan_to_num(np.maximum(dec, 0.0), nan=0.0, posinf=0.0, neginf=0.0)
        out = dec[inverse]
        self._add_time("decode", t0)
        if any(s.shaping for s in self._segments):
            t1 = time.perf_counter()
            shaper = self._shaper()
            for k in range(b):
                s = self._segments[seg[k]]
                if s.shaping:
                    out[k] = shaper.apply(out[k], transpose=s.transpose, freq_shift=s.freq_shift, tilt=s.tilt)
            self._add_time("shape", t1)
        return out.astype(np.float32, copy=False), eff

    def _shaper(self) -> SpectralShaper:
        if getattr(self, "_shaper_obj", None) is None:
            # no harmonic emphasis nor high-register roll-off: those make a decoded synth frame
            # sound its played note; an effect frame already has its own pitch
            self._shaper_obj = SpectralShaper(self.n_fft, self.sample_rate, emphasis=False)
        return self._shaper_obj

    def wet_magnitudes(self, x: np.ndarray) -> np.ndarray:
        """The wet magnitude of every frame [T, n_bins] (the frame's level back on, before the
        phase): what the resynthesis is built from."""
        return np.concatenate([b.wet * b.level[:, None] for b in self.blocks(x)])

    # -- resynthesis

    def process(self, x: np.ndarray) -> np.ndarray:
        """The effect over a mono float signal at the model's rate: float32, as long as x,
        aligned with it (latency 0)."""
        x = np.asarray(x, dtype=np.float32)
        started = time.perf_counter()
        c = self.c
        if c.mix == 0.0:
            y = x.copy()  # dry only: nothing to analyse
        else:
            wet = self.resynthesise(x)
            y = wet if c.mix == 1.0 else ((1.0 - c.mix) * x + c.mix * wet).astype(np.float32)
        if len(self._segments) > 1:
            y *= self._gain_curve(len(y))
        elif c.gain != 1.0:
            y *= np.float32(c.gain)
        over = int(np.count_nonzero(np.abs(y) > 1.0))
        if over:
            soft_limit(y)
        st = self.stats
        st.over_full_scale += over
        st.seconds += len(x) / self.sample_rate
        st.wall += time.perf_counter() - started
        return y

    def _gain_curve(self, n: int) -> np.ndarray:
        """Per sample: each scheduled gain from its sample on, reached linearly over a hop."""
        xs, ys = [0.0], [self._segments[0].gain]
        ends = list(self._starts[2:]) + [None]
        for at, s, nxt in zip(self._starts[1:], self._segments[1:], ends):
            end = at + self.hop if nxt is None else min(at + self.hop, nxt)
            xs += [float(at), float(end)]  # non-decreasing: a ramp ends where the next change starts
            ys += [ys[-1], s.gain]
        return np.interp(np.arange(n, dtype=np.float64), xs, ys).astype(np.float32)

    def resynthesise(self, x: np.ndarray) -> np.ndarray:
        """The wet signal alone, aligned with x."""
        c = self.c
        xp_len = (self.n_frames(len(x)) - 1) * self.hop + self.n_fft
        acc = np.zeros(xp_len, dtype=np.float32)
        r = self.n_fft // self.hop
        phase = make_phase("rtpghi", self.n_fft, self.hop, c.seed) if c.phase == "rtpghi" else None
        prev: Optional[np.ndarray] = None
        t_ifft = 0.0
        for blk in self.blocks(x):
            t0 = time.perf_counter()
            if phase is None:
                spec = _with_input_phase(blk)
            else:
                spec = np.zeros_like(blk.spectra)
                for k in range(len(blk.wet)):
                    if not blk.sounding[k]:
                        if prev is not None:
                            phase.reset()
                        prev = None
                        continue
                    frame = blk.wet[k]
                    changed = prev is None or not np.array_equal(frame, prev)
                    spec[k] = phase.next(frame.astype(np.float64), changed) * blk.level[k]
                    prev = frame
            frames = scipy.fft.irfft(spec, n=self.n_fft, axis=1).astype(np.float32, copy=False)
            frames *= self.synthesis
            # overlap-add: frames j, j+r, j+2r, ... do not overlap, so each set is one slice add
            b = len(frames)
            for j in range(min(r, b)):
                sel = frames[j::r]
                first = (blk.start + j) * self.hop
                acc[first : first + len(sel) * self.n_fft] += sel.reshape(-1)
            t_ifft += time.perf_counter() - t0
        tm = self.stats.timings
        tm["phase+ola"] = tm.get("phase+ola", 0.0) + t_ifft
        return acc[self.pad : self.pad + len(x)]  # a view: no second copy of a long file


def _with_input_phase(blk: Block) -> np.ndarray:
    """wet · level · e^{i∠X}: the input's own phase under the new magnitude (phase 0 where
    |X| = 0); silent frames stay 0."""
    out = np.zeros_like(blk.spectra)
    live = np.nonzero(blk.sounding)[0]
    if not len(live):
        return out
    a = blk.magnitude[live]
    mag = blk.wet[live]
    mag *= blk.level[live, None]
    gain = np.divide(mag, a, out=np.zeros_like(mag), where=a > 0.0)
    spec = blk.spectra[live]
    spec *= gain
    dead = (a == 0.0) & (mag > 0.0)
    if dead.any():
        spec[dead] = mag[dead]
    out[live] = spec
    return out


# ---- sound files -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputInfo:
    path: str
    sample_rate: int  # the file's own
    channels: int
    frames: int  # the file's own samples per channel


def read_input(path: str | Path, sample_rate: int) -> tuple[np.ndarray, InputInfo]:
    """A sound file (anything libsndfile reads: WAV, FLAC, AIFF, ...; any rate and channel count)
    as mono float32 at `sample_rate`: channels averaged, converted with scipy.signal.resample_poly.
    AedaemonError with one line when it is missing, unreadable, empty or not finite."""
    from .render import _soundfile

    p = Path(path)
    if not p.exists():
        raise AedaemonError(f"{p}: no such file")
    if p.is_dir():
        raise AedaemonError(f"{p}: is a folder, not a sound file")
    sf = _soundfile()
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AedaemonError(f"cannot read {p}: {msg}") from None
    if data.shape[0] == 0:
        raise AedaemonError(f"{p}: the file holds no audio samples")
    info = InputInfo(str(p), int(sr), int(data.shape[1]), int(data.shape[0]))
    y = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.all(np.isfinite(y)):
        raise AedaemonError(f"{p}: the audio contains NaN or inf samples")
    if int(sr) != sample_rate:
        from scipy.signal import resample_poly

        g = math.gcd(int(sr), int(sample_rate))
        y = resample_poly(y, sample_rate // g, int(sr) // g)
    return np.ascontiguousarray(y, dtype=np.float32), info


def process_file(
    bundle: ModelBundle,
    src: str | Path,
    out: Path,
    settings: EffectSettings = EffectSettings(),
    fmt=None,
    threads: Optional[int] = None,
    schedule: Sequence[tuple[int, EffectSettings]] = (),
) -> tuple[EffectStats, InputInfo]:
    """`aedaemon process`: read, run the chain, write (atomically, the format from out's suffix)."""
    from .render import output_format, write_audio

    fmt = fmt or output_format(out)
    chain = EffectChain(bundle, settings, threads=threads, schedule=schedule)  # refused before the file is read
    if chain.c.mix != 0.0:
        bundle.encoder_takes_chroma  # noqa: B018 - loads encoder.onnx: a model without one is refused here
    x, info = read_input(src, bundle.meta.sample_rate)
    y = chain.process(x)
    block = 1 << 16
    write_audio(out, fmt, bundle.meta.sample_rate, (y[i : i + block] for i in range(0, len(y), block)))
    return chain.stats, info


def unit_values(pairs: Sequence[str], n: int, what: str, convert) -> dict[int, object]:
    """`i=v` strings (comma-separated lists allowed) → {unit: value}, units 0..n-1."""
    out: dict[int, object] = {}
    for text in pairs:
        for item in (p.strip() for p in str(text).split(",")):
            if not item:
                continue
            unit, sep, value = item.partition("=")
            try:
                i = int(unit)
            except ValueError:
                raise ParameterError(f"{what} '{item}': expected UNIT=VALUE, e.g. 3=0.5") from None
            if not 0 <= i < n:
                raise ParameterError(f"{what} '{item}': unit {i} is out of range 0..{n - 1}")
            if not sep:
                raise ParameterError(f"{what} '{item}': expected UNIT=VALUE, e.g. 3=0.5")
            out[i] = convert(value, item)
    return out
