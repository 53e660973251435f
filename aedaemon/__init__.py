"""aedaemon: a headless neural timbre synthesizer driven by OSC and MIDI."""

__version__ = "0.1.0"
