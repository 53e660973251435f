"""Signal processing: STFT/overlap-add, phase reconstruction, spectral shaping, limiting."""
