"""The salience chroma that labels the corpus, scores Table V and drives the regulariser."""

from __future__ import annotations

import numpy as np
import torch

from aedaemon.synthetic import harmonic_frame, midi_to_hz
from aedaemon.train.corpus import dominant_pitch_class, frame_chroma
from aedaemon.train.train import ChromaConsistency


def test_dominant_pitch_class_of_harmonic_tones():
    for note in range(36, 90):
        for rolloff in (0.3, 1.0, 2.0):
            frame = harmonic_frame(midi_to_hz(note), 44100, 4096, rolloff=rolloff)
            assert dominant_pitch_class(frame[None])[0] == note % 12, (note, rolloff)


def test_strong_third_harmonic_does_not_steal_the_label():
    # a clarinet-like tone (odd partials, the 3rd louder than the fundamental): a plain power
    # chroma would call it a fifth up; the salience chroma keeps the played pitch class
    n_bins, f0 = 2049, midi_to_hz(62)
    frame = np.zeros(n_bins, np.float32)
    for k, a in ((1, 0.6), (3, 1.0), (5, 0.5), (7, 0.3), (9, 0.2)):
        frame += a * harmonic_frame(k * f0, 44100, 4096, n_harmonics=1)
    assert dominant_pitch_class(frame[None])[0] == 2  # D, not A


def test_torch_chroma_matches_numpy():
    rng = np.random.default_rng(0)
    frames = (rng.uniform(0, 1, (16, 2049)) ** 8).astype(np.float32)
    cc = ChromaConsistency(8, 0.1)
    np.testing.assert_allclose(cc.chroma(torch.from_numpy(frames)).numpy(), frame_chroma(frames), rtol=1e-4, atol=1e-4)


def test_consistency_loss_is_zero_for_an_obedient_decoder():
    templates = torch.from_numpy(
        np.stack([harmonic_frame(midi_to_hz(60 + c), 44100, 4096) for c in range(12)])
    )

    def obedient(z, chroma):  # ignores the latent, plays the conditioned pitch class
        return chroma @ templates

    def stubborn(z, chroma):  # always plays C
        return templates[0].expand(len(z), -1)

    cc = ChromaConsistency(8, 0.1)
    assert float(cc.loss(obedient, 64, torch.Generator().manual_seed(0))) == 0.0
    assert float(cc.loss(stubborn, 64, torch.Generator().manual_seed(0))) > 0.5
