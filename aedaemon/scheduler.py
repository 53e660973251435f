"""Events keyed by audio sample time, applied at the first frame boundary at or after it.

Only the render thread touches a Scheduler; other threads hand events over through the
engine's queue. Ties keep arrival order (a sequence number breaks them), so the messages of
one OSC bundle are applied in the order they were written.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable

Event = Callable[[], None]


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Event]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, sample_time: int, event: Event) -> None:
        heapq.heappush(self._heap, (int(sample_time), next(self._seq), event))

    def pop_due(self, boundary: int) -> list[Event]:
        """Events whose time is at or before this frame boundary, in time order."""
        due: list[Event] = []
        heap = self._heap
        while heap and heap[0][0] <= boundary:
            due.append(heapq.heappop(heap)[2])
        return due

    def clear(self) -> None:
        self._heap.clear()
