"""Training pipeline (optional extra `[train]`): corpus → train → export → evaluate.

    aedaemon corpus FILES_OR_FOLDERS --out DIR      audio files → corpus.npz + manifest.json
    aedaemon corpus --soundfont SF2 --out DIR       render a GM soundfont with fluidsynth first
    aedaemon train CORPUS_DIR --out MODEL_DIR       Colonel & Keene 2020 autoencoder (PyTorch; --device)
    aedaemon evaluate MODEL_DIR [--corpus DIR]      test MSE, mesh chroma accuracy, figures

Only `train` needs PyTorch; `corpus` needs soundfile, `evaluate` onnxruntime and matplotlib.
Every module here imports its heavy dependencies lazily so that `aedaemon --help` works on a
base install.
"""

import os as _os

# Reproducible training (the same command gives the same bytes): Intel MKL, PyTorch's BLAS on
# x86, picks its thread count per call from the machine's load unless told not to, and another
# split of a reduction changes the last bits. Set before torch is first imported; a value the
# user exported wins.
for _var in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
    _os.environ.setdefault(_var, "FALSE")

SAMPLE_RATE = 44100
N_FFT = 4096
HOP = 1024
N_BINS = N_FFT // 2 + 1
CHROMA_SIZE = 12
REFERENCE_NOTE = 60
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
DEVICES = ("auto", "cpu", "cuda", "mps")  # `aedaemon train --device`
