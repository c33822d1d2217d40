"""What a batch tells the person running it: a progress line, the end summary, the score table."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Iterable, TextIO

from ..events import Progress
from ..progress import StderrProgress
from .inputs import BatchItem


@dataclass
class BatchStats:
    total: int  # items in the input
    to_run: int  # items this run sends
    skipped: int  # already done by an earlier run (or failed, with --no-retry-failed)
    done: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0  # model requests (tool steps and judge calls count)
    setup_s: float = 0.0  # engine start-up, before the first item
    started: float | None = None  # perf_counter() when the first item started
    ended: float | None = None
    interrupted: bool = False

    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or time.perf_counter()) - self.started

    def rate(self, n: float) -> float:
        el = self.elapsed()
        return n / el if el > 0 else 0.0


class BatchProgress:
    """done/total, failures, throughput and ETA on one stderr line (a plain line every few
    seconds when stderr is not a terminal); item failures as notes above it."""

    def __init__(self, stats: BatchStats, *, quiet: bool = False, stream: TextIO | None = None, interval: float = 5.0):
        self.stats = stats
        self.stream = stream or sys.stderr
        self.line = StderrProgress(self.stream, quiet=quiet, interval=interval)
        self.quiet = quiet
        self._shown = 0.0
        self._finished = False

    def __call__(self, event: Progress) -> None:  # engine start-up progress passes through
        self.line(event)

    def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and self.line.tty and now - self._shown < 0.2):
            return
        self._shown = now
        s = self.stats
        finished = s.done + s.failed
        fraction = finished / s.to_run if s.to_run else 1.0
        if fraction >= 1.0:
            if self._finished:  # the last item already showed the finished line
                return
            self._finished = True
        self.line(Progress("batch", self.message(), fraction))

    def message(self) -> str:
        s = self.stats
        finished = s.done + s.failed
        items_s = s.rate(finished)
        eta = f"{_duration((s.to_run - finished) / items_s)}" if items_s > 0 and finished < s.to_run else "-"
        return (
            f"{finished}/{s.to_run} done, {s.failed} failed · {items_s:.2f} items/s · "
            f"{s.rate(s.completion_tokens):.0f} output tok/s · ETA {eta}"
        )

    def note(self, text: str) -> None:
        if self.quiet:
            return
        self.line.clear()
        self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        self.line.clear()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def summary(stats: BatchStats, out: str) -> str:
    s = stats
    if s.to_run == 0:
        return f"nothing to do: all {s.total} items already have a record in {out}"
    head = "batch interrupted" if s.interrupted else "batch finished"
    setup = f" (+{s.setup_s:.1f} s start-up: plugins, engine)" if s.setup_s >= 0.5 else ""
    return (
        f"{head}: {s.total} items: {s.done} done, {s.failed} failed, {s.skipped} skipped (earlier runs)"
        + (f", {s.to_run - s.done - s.failed} not run" if s.interrupted else "")
        + f"\n  tokens: {s.prompt_tokens:,} prompt + {s.completion_tokens:,} output in {s.requests} requests"
        f"\n  throughput: {s.rate(s.done + s.failed):.2f} items/s, {s.rate(s.requests):.2f} requests/s, "
        f"{s.rate(s.completion_tokens):.1f} output tok/s; wall time {s.elapsed():.1f} s{setup}"
        f"\n  results: {out}"
        + ("\n  re-run the same command to finish the rest (done items are skipped)" if s.interrupted else "")
    )


# --- scores ----------------------------------------------------------------------------------


@dataclass
class ScoreRow:
    mode: str
    items: int = 0  # items with an expected answer, scored in this mode
    correct: int = 0
    failed: int = 0  # no answer (the item failed): counted as not correct
    unjudged: int = 0  # judge gave no readable verdict: counted as not correct

    @property
    def accuracy(self) -> float:
        return self.correct / self.items if self.items else 0.0


def score_rows(items: Iterable[BatchItem], records: dict[str, dict], default_match: str) -> list[ScoreRow]:
    """Per mode, over every item of the input that has an expected answer and a record (from
    this run or an earlier one); an 'all' row when there are several modes."""
    rows: dict[str, ScoreRow] = {}
    for item in items:
        record = records.get(item.id)
        if not item.expected or record is None:
            continue
        mode = item.match or default_match
        row = rows.setdefault(mode, ScoreRow(mode))
        row.items += 1
        score = record.get("score") or {}
        if record.get("error") is not None:
            row.failed += 1
        elif score.get("correct") is True:
            row.correct += 1
        elif score.get("correct") is None:
            row.unjudged += 1
    out = sorted(rows.values(), key=lambda r: r.mode)
    if len(out) > 1:
        total = ScoreRow("all")
        for r in out:
            total.items, total.correct = total.items + r.items, total.correct + r.correct
            total.failed, total.unjudged = total.failed + r.failed, total.unjudged + r.unjudged
        out.append(total)
    return out


def score_table(rows: list[ScoreRow]) -> str:
    if not rows:
        return "(no item has an expected answer: nothing scored)"
    lines = ["| mode | count | correct | accuracy | failed | unjudged |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.mode} | {r.items} | {r.correct} | {r.accuracy:.1%} | {r.failed} | {r.unjudged} |")
    return "\n".join(lines)


def markdown_report(stats: BatchStats, rows: list[ScoreRow], *, input_path: str, out: str, models: list[str]) -> str:
    s = stats
    return (
        "# Batch report\n\n"
        f"- input: `{input_path}`; results: `{out}`\n"
        f"- model: {', '.join(models) or 'unknown'}\n"
        f"- items: {s.total} ({s.done} done and {s.failed} failed in this run, {s.skipped} from earlier runs)"
        + (" — interrupted" if s.interrupted else "") + "\n"
        f"- this run: {s.prompt_tokens:,} prompt + {s.completion_tokens:,} output tokens, {s.requests} requests, "
        f"{s.rate(s.done + s.failed):.2f} items/s, {s.rate(s.completion_tokens):.1f} output tok/s, "
        f"wall time {s.elapsed():.1f} s\n\n"
        "## Scores\n\n"
        + score_table(rows)
        + "\n\nAccuracy is correct / count; failed items (no answer) and unjudged ones (the judge's "
        "reply said neither yes nor no) count as not correct.\n"
    )
