"""Long work in progress (engine start-up, transcription, image generation steps, document
reading): one row per task with its message, a bar and the elapsed time; a row goes when its
task is done (fraction 1.0) or when the work it belongs to ends."""

from __future__ import annotations

import time
from typing import Callable

from textual.containers import Horizontal, Vertical
from textual.widgets import Label, ProgressBar


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class ProgressRow(Horizontal):
    def __init__(self, task: str, started: float) -> None:
        super().__init__(classes="progress-row")
        self.task_name = task
        self.started = started
        self.message = ""
        self.fraction: float | None = None

    def compose(self):
        yield Label("", classes="progress-message", markup=False)
        yield ProgressBar(total=None, show_eta=False, show_percentage=True, classes="progress-bar")
        yield Label("", classes="progress-elapsed")

    def show(self, message: str, fraction: float | None, now: float) -> None:
        self.message, self.fraction = message, fraction
        self.query_one(".progress-message", Label).update(f"{self.task_name}: {message}")
        bar = self.query_one(ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(fraction, 1.0)) * 100)
        self.tick(now)

    def tick(self, now: float) -> None:
        self.query_one(".progress-elapsed", Label).update(_elapsed(now - self.started))


class ProgressPanel(Vertical):
    """`update(task, message, fraction)` adds or updates a task's row; fraction >= 1 removes it.
    `clock` is injectable so tests and snapshots see fixed times."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, **kw) -> None:
        super().__init__(**kw)
        self.clock = clock
        self.rows: dict[str, ProgressRow] = {}
        self._timer = None

    def on_mount(self) -> None:
        self.display = False
        self._timer = self.set_interval(1.0, self._tick, pause=True)

    async def update(self, task: str, message: str, fraction: float | None = None) -> None:
        now = self.clock()
        if fraction is not None and fraction >= 1.0:
            await self.finish(task)
            return
        row = self.rows.get(task)
        if row is None:
            row = self.rows[task] = ProgressRow(task, now)
            row.message, row.fraction = message, fraction
            await self.mount(row)
        row.show(message, fraction, now)
        self._sync()

    async def finish(self, task: str) -> None:
        row = self.rows.pop(task, None)
        if row is not None:
            await row.remove()
        self._sync()

    async def finish_all(self, keep: tuple[str, ...] = ()) -> None:
        for task in [t for t in self.rows if t not in keep]:
            await self.finish(task)

    def _sync(self) -> None:
        self.display = bool(self.rows)
        if self._timer is not None:
            (self._timer.resume if self.rows else self._timer.pause)()

    def _tick(self) -> None:
        now = self.clock()
        for row in self.rows.values():
            row.tick(now)
