"""The GPU gate: one GPU, many sessions.

Every model that runs on this machine's GPU (a local video model, a local VLM: `BackendInfo.uses_gpu`)
waits here before a call, so two sessions never load the same GPU at once. Waiting can be cancelled: a
person who presses Stop while their session waits for another's generation is not kept waiting too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from collabvr.backends.protocols import BackendCancelled

_POLL_S = 0.05  # how often a waiter looks at its cancel flag


class GPUGate:
    """At most `slots` calls hold the GPU at once; the rest wait in arrival order of wake-ups."""

    def __init__(self, slots: int = 1) -> None:
        if slots < 1:
            raise ValueError(f"a GPU gate needs at least one slot, not {slots}")
        self.slots = slots
        self._busy = 0
        self._waiting = 0
        self._queue: list[str] = []  # who waits, in arrival order (for "your place in the queue")
        self._holders: list[str] = []
        self._cond = threading.Condition()

    @property
    def busy(self) -> int:
        with self._cond:
            return self._busy

    @property
    def waiting(self) -> int:
        with self._cond:
            return self._waiting

    def place(self, who: str) -> tuple[str, int]:
        """Where `who` stands: ("holding", 0), ("waiting", its 1-based place among the waiters, by arrival) or
        ("idle", 0). Several calls of one `who` count once, at its earliest place."""
        with self._cond:
            if who in self._holders:
                return "holding", 0
            if who in self._queue:
                return "waiting", self._queue.index(who) + 1
            return "idle", 0

    @contextmanager
    def hold(self, cancel: threading.Event | None = None, who: str = "") -> Iterator[float]:
        """Hold a slot for the body of the `with`; yields the seconds spent waiting for it. Raises
        BackendCancelled if `cancel` is set while waiting. `who` (a session id) is what `place` reports on."""
        started = time.perf_counter()
        with self._cond:
            self._waiting += 1
            self._queue.append(who)
            try:
                while self._busy >= self.slots:
                    if cancel is not None and cancel.is_set():
                        raise BackendCancelled("stopped while waiting for the GPU (another session was using it)")
                    self._cond.wait(_POLL_S)
            finally:
                self._waiting -= 1
                self._queue.remove(who)
            self._busy += 1
            self._holders.append(who)
        try:
            yield time.perf_counter() - started
        finally:
            with self._cond:
                self._busy -= 1
                self._holders.remove(who)
                self._cond.notify()
