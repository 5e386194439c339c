"""A first-come, first-served limit on the sequences a client has at one server.

A request for n samples occupies n of the server's sequence slots (vLLM's ``max_num_seqs``), so
the limit is weighted: a request waits until its n fit, in arrival order, so a large request is
never starved by a stream of small ones. One per event loop (asyncio futures belong to a loop).
"""

from __future__ import annotations

import asyncio
from collections import deque


class Capacity:
    """``total`` units; ``acquire(n)`` waits for n of them (n above total is clamped to total)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    @property
    def queued(self) -> int:
        return sum(1 for _, f in self._waiting if not f.done())

    async def acquire(self, n: int) -> int:
        """Take ``n`` units (clamped); returns what was taken, to give back to ``release``."""
        n = max(1, min(n, self.total))
        if not self._waiting and self.used + n <= self.total:
            self.used += n
            return n
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((n, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted just as the caller gave up
                self.release(n)
            raise
        return n

    def release(self, n: int) -> None:
        self.used -= n
        while self._waiting:
            wanted, future = self._waiting[0]
            if future.done():  # its caller was cancelled while it waited
                self._waiting.popleft()
                continue
            if self.used + wanted > self.total:
                break
            self._waiting.popleft()
            self.used += wanted
            future.set_result(None)
