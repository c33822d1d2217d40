"""The servers a batch spreads its items over.

Each item goes to the endpoint with the fewest items in flight (ties in turn), which keeps
every server's continuous batching equally fed even when their speeds differ. An endpoint
that refuses connections is taken out for a cool-down that doubles with each consecutive
failure; after it, the next item probes it again.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator


@dataclass(frozen=True)
class Target:
    """One server: how to make its model client (inside the event loop) and what it can do."""

    url: str
    make_model: Callable[[], Any]  # -> a ChatModel (ChatClient, or a fake in tests)
    model_name: str = ""
    vision: bool | None = None
    native_tools: bool = True
    tool_selection: str = "model"


@dataclass
class Slot:
    target: Target
    model: Any = None
    outstanding: int = 0
    down_until: float = 0.0
    failures: int = 0  # consecutive connection failures
    served: int = 0

    @property
    def url(self) -> str:
        return self.target.url


@dataclass
class Pool:
    targets: list[Target]
    cooldown: float = 30.0
    clock: Callable[[], float] = time.monotonic
    slots: list[Slot] = field(default_factory=list)
    _turn: int = 0

    def open(self) -> "Pool":
        """Create the model clients; call inside the event loop (httpx clients belong to it)."""
        self.slots = [Slot(t, t.make_model()) for t in self.targets]
        return self

    async def aclose(self) -> None:
        for slot in self.slots:
            close = getattr(slot.model, "aclose", None)
            if close is not None:
                await close()

    def pick(self, avoid: set[str] = frozenset()) -> Slot | None:
        """The up endpoint with the fewest items in flight, preferring ones not in `avoid`
        (those this item already failed on); None when every endpoint is down."""
        now = self.clock()
        up = [s for s in self.slots if s.down_until <= now]
        if not up:
            return None
        fresh = [s for s in up if s.url not in avoid] or up
        n = len(self.slots)
        best = min(fresh, key=lambda s: (s.outstanding, (self.slots.index(s) - self._turn) % n))
        self._turn = (self.slots.index(best) + 1) % n
        return best

    @contextlib.contextmanager
    def lease(self, slot: Slot) -> Iterator[Slot]:
        slot.outstanding += 1
        try:
            yield slot
        finally:
            slot.outstanding -= 1

    def mark_down(self, slot: Slot) -> float | None:
        """Take it out; returns the cool-down in seconds (doubling per failure, at most 8x), or
        None when it is already out (items that were in flight there report the same outage)."""
        now = self.clock()
        if slot.down_until > now:
            return None
        slot.failures += 1
        wait = self.cooldown * min(2 ** (slot.failures - 1), 8)
        slot.down_until = now + wait
        return wait

    def mark_up(self, slot: Slot) -> None:
        slot.failures = 0
        slot.down_until = 0.0
        slot.served += 1

    def down(self) -> list[str]:
        now = self.clock()
        return [s.url for s in self.slots if s.down_until > now]
