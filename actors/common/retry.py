"""Waiting between attempts at something that fails for a while (a server that is away)."""

import asyncio
import contextlib
import random


async def sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stopping` is set in the meantime."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


class Backoff:
    """Delays that double after each failure, from `initial_s` up to `max_s`; `reset()`
    after a success. `jitter` spreads each delay by up to that fraction either way, so many
    clients that lost the same server do not all come back at the same moment."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 10.0, *, jitter: float = 0.0):
        if not 0 < initial_s <= max_s:
            raise ValueError("a back-off needs 0 < initial_s <= max_s")
        self.initial_s = initial_s
        self.max_s = max_s
        self.jitter = jitter
        self._next_s = initial_s

    def reset(self) -> None:
        self._next_s = self.initial_s

    def next_delay(self) -> float:
        """The delay to wait now; the one after it is twice as long (up to `max_s`)."""
        delay = self._next_s * random.uniform(1 - self.jitter, 1 + self.jitter)
        self._next_s = min(self._next_s * 2, self.max_s)
        return delay
