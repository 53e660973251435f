"""aedaemon: a headless neural timbre synthesizer driven by OSC and MIDI."""

import os as _os

# NumPy's BLAS (OpenBLAS) starts a thread per core that busy-waits after every call: on a
# 2-core board that is CPU taken from the render thread for nothing (our matrices are tiny).
# Set before NumPy is first imported; a value the user exported wins. (Not OMP_NUM_THREADS:
# PyTorch's training threads follow that one.)
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
