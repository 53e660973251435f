"""The output ring and its header, shared by the render thread and the device process.

Single producer (the render thread), single consumer (the device callback, in the device
process — aedaemon/devicechild.py — or the software clock). Everything lives in one flat
buffer: a header of int64 fields, then the float32 samples. Positions only ever grow; each
field has one writer at a time, so no lock is needed. A stamp (the read position at a
callback and its CLOCK_MONOTONIC time) is two fields, written under a sequence counter
(a seqlock) so the reader never sees half of one.

Ordering: the producer copies the samples before it stores the new write position, and the
consumer reads the write position before the samples. On x86-64 stores are seen in order; on
arm64 the two stores are separated by many interpreted instructions and at least one call into
NumPy, far longer than a store buffer drains, which in practice keeps them in order too.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

# header fields (int64)
H_WRITE = 0  # samples written (render thread)
H_READ = 1  # samples handed to the device (callback)
H_SEQ = 2  # seqlock around the stamp: odd while it is being written
H_STAMP_POS = 3  # H_READ at the last callback
H_STAMP_NS = 4  # its time, time.monotonic_ns()
H_UNDERFLOWS = 5  # the device's own underflow flags
H_RING_UNDERRUNS = 6  # callbacks that found the ring short
H_CALLBACKS = 7
H_LATENCY_NS = 8  # the block just handed over + the device's lead until it is heard
H_RT = 9  # the callback thread's real-time scheduling: -1 not tried, 0 refused, 1 granted
HEADER_FIELDS = 16
HEADER_BYTES = 8 * HEADER_FIELDS


def ring_size(capacity: int) -> int:
    size = 1
    while size < capacity:
        size <<= 1
    return size


def buffer_bytes(size: int) -> int:
    return HEADER_BYTES + 4 * size


class Ring:
    """float32 ring with ever-growing positions, in its own memory or in a shared buffer."""

    def __init__(self, capacity: int, buffer: Optional[memoryview] = None) -> None:
        size = ring_size(capacity)
        if buffer is None:
            buffer = memoryview(bytearray(buffer_bytes(size)))
        self.size = size
        self.mask = size - 1
        self.header = np.ndarray((HEADER_FIELDS,), dtype=np.int64, buffer=buffer)
        self.buf = np.ndarray((size,), dtype=np.float32, buffer=buffer, offset=HEADER_BYTES)

    @property
    def write_pos(self) -> int:
        return int(self.header[H_WRITE])

    @write_pos.setter
    def write_pos(self, value: int) -> None:
        self.header[H_WRITE] = value

    @property
    def read_pos(self) -> int:
        return int(self.header[H_READ])

    @read_pos.setter
    def read_pos(self, value: int) -> None:
        self.header[H_READ] = value

    def fill(self) -> int:
        h = self.header
        return int(h[H_WRITE] - h[H_READ])

    def space(self) -> int:
        return self.size - self.fill()

    def write(self, x: np.ndarray) -> None:
        n = len(x)
        w = int(self.header[H_WRITE])
        i = w & self.mask
        first = min(n, self.size - i)
        self.buf[i : i + first] = x[:first]
        if first < n:
            self.buf[: n - first] = x[first:]
        self.header[H_WRITE] = w + n  # after the samples (see the module docstring)

    def read_into(self, out: np.ndarray, n: int) -> int:
        """Copy up to n samples into out[:n]; returns how many were available."""
        h = self.header
        r = int(h[H_READ])
        k = int(h[H_WRITE]) - r
        if k > n:
            k = n
        if k <= 0:
            return 0
        i = r & self.mask
        first = self.size - i
        if first >= k:
            out[:k] = self.buf[i : i + k]
        else:
            out[:first] = self.buf[i:]
            out[first:k] = self.buf[: k - first]
        h[H_READ] = r + k
        return k

    # -- the stamp: (read position, monotonic seconds) at the last callback
    def set_stamp(self, pos: int, t_mono: float) -> None:
        h = self.header
        seq = int(h[H_SEQ])
        h[H_SEQ] = seq + 1
        h[H_STAMP_POS] = pos
        h[H_STAMP_NS] = int(t_mono * 1e9)
        h[H_SEQ] = seq + 2

    def stamp(self) -> tuple[int, float]:
        h = self.header
        for _ in range(1000):
            seq = int(h[H_SEQ])
            if seq & 1:
                continue
            pos, ns = int(h[H_STAMP_POS]), int(h[H_STAMP_NS])
            if int(h[H_SEQ]) == seq:
                return pos, ns * 1e-9
        return int(h[H_STAMP_POS]), int(h[H_STAMP_NS]) * 1e-9  # a writer stuck mid-stamp (killed)

