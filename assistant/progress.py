"""Progress on stderr for the command-line front ends (the TUI renders Progress events itself)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .events import Progress

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StderrProgress:
    """One self-rewriting line on a terminal; a plain line every few seconds otherwise (logs, CI)."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False, interval: float = 5.0):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.interval = interval
        self._last_plain = 0.0
        self._tick = 0
        self._dirty = False

    def __call__(self, event: Progress) -> None:
        if self.quiet:
            return
        finished = event.fraction is not None and event.fraction >= 1.0
        if self.tty:
            width = 100
            frac = "" if event.fraction is None else f"{event.fraction:4.0%} "
            mark = "✓" if finished else _SPINNER[self._tick % len(_SPINNER)]
            self._tick += 1
            line = f"{mark} {frac}{event.message}"[:width]
            self.stream.write("\r\x1b[2K" + line + ("\n" if finished else ""))
            self._dirty = not finished
        else:
            now = time.monotonic()
            # A task's first line (fraction 0: e.g. a long read's cost estimate) and its last always show.
            if finished or event.fraction == 0.0 or now - self._last_plain >= self.interval:
                self._last_plain = now
                self.stream.write(f"[{event.task}] {event.message}\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self._dirty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._dirty = False

    def say(self, message: str) -> None:
        """A plain status line (used for conversion steps that have no fraction)."""
        self(Progress("model", message))
