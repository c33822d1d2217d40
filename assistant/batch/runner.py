"""Running the items: N at a time, each an independent Dialogue turn, records streamed to disk.

Every item gets a fresh Dialogue (no history between items) and, unless sessions are saved,
no store. Approval is non-interactive: no approver is given, so `approval.*` decides and the
decision is recorded with each tool call. Whatever goes wrong inside one item (the model, an
attachment, a plugin, a bug in a tool) becomes that item's `error`; only two things stop the
batch: an interrupt (Ctrl-C / SIGTERM: in-flight items are dropped and run again on resume)
and every endpoint being unreachable (there is nothing left to send to).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Sequence

from ..errors import AssistantError, EngineUnreachable
from ..events import (
    ApprovalDecided,
    AttachmentProcessed,
    AttachmentProduced,
    Completion,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFailed,
    TurnFinished,
)
from ..settings import BatchSettings, Settings, with_overrides
from .inputs import BatchItem
from .output import ResultsFile
from .pool import Pool, Slot
from .report import BatchProgress, BatchStats
from .scoring import is_correct, judge_messages, parse_verdict


class AllEndpointsDown(EngineUnreachable):
    """Every endpoint refused connections: the batch stops (finished records are kept)."""


@dataclass(frozen=True)
class BatchOptions:
    """One run's options: [batch] settings with the command's flags on top (see from_settings).
    The defaults are BatchSettings' (why 8 in flight: see there)."""

    concurrency: int = BatchSettings.concurrency
    default_match: str = BatchSettings.score  # --score: for items without their own `match`
    system: str | None = None  # --system: for items without their own `system`
    extra_body: dict | None = None  # merged into every chat request (e.g. {"ignore_eos": true})
    max_attempts: int = BatchSettings.max_attempts  # per item per run, counting fail-overs to another endpoint
    judge_max_tokens: int = BatchSettings.judge_max_tokens

    @classmethod
    def from_settings(cls, batch: BatchSettings, *, system: str | None = None, extra_body: dict | None = None) -> "BatchOptions":
        return cls(
            concurrency=batch.concurrency, default_match=batch.score, system=system, extra_body=extra_body,
            max_attempts=batch.max_attempts, judge_max_tokens=batch.judge_max_tokens,
        )  # fmt: skip


class _Metered:
    """The model as one item attempt sees it: adds the batch's extra request fields, and counts
    requests, tokens and the first token (streamed text or a tool call) for the record."""

    def __init__(self, model: Any, extra: dict | None) -> None:
        self.model, self.extra = model, extra
        self.requests = self.completions = self.prompt_tokens = self.completion_tokens = 0
        self.first_token: float | None = None
        self.model_name = ""

    async def stream_chat(self, messages: list[dict], **kwargs: Any) -> AsyncIterator[Any]:
        if self.extra:
            kwargs["extra"] = {**self.extra, **(kwargs.get("extra") or {})}
        self.requests += 1
        call_started = time.perf_counter()
        async for event in self.model.stream_chat(messages, **kwargs):
            if isinstance(event, TextDelta):
                self.first_token = self.first_token or time.perf_counter()
            elif isinstance(event, Completion):
                self.completions += 1
                self.prompt_tokens += event.usage.prompt_tokens
                self.completion_tokens += event.usage.completion_tokens
                self.model_name = event.model or self.model_name
                if self.first_token is None and event.timings.time_to_first_token_s is not None:
                    self.first_token = call_started + event.timings.time_to_first_token_s
            yield event

    async def complete(self, messages: list[dict], **kwargs: Any) -> Completion:
        done = None
        async for event in self.stream_chat(messages, **kwargs):
            if isinstance(event, Completion):
                done = event
        assert done is not None, "stream_chat always ends with a Completion"
        return done


@dataclass
class _Collected:
    """What one turn's events say, in the shape of the record."""

    tool_calls: dict[str, dict] = field(default_factory=dict)
    attachments: list[dict] = field(default_factory=list)
    files: list[dict] = field(default_factory=list)
    output: bool = False  # any text or tool call: the turn reached the model
    finished: TurnFinished | None = None
    error: Exception | None = None
    partial: str = ""
    session_id: str | None = None

    def __call__(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            self.output = True
        elif isinstance(event, ToolCallStarted):
            self.output = True
            self.tool_calls[event.call_id] = {
                "name": event.name, "arguments": event.arguments, "result": None, "error": None,
                "decision": None, "risk": event.risk,
            }  # fmt: skip
        elif isinstance(event, ApprovalDecided):
            self.tool_calls[event.call_id]["decision"] = event.decision
        elif isinstance(event, ToolCallFinished):
            self.tool_calls[event.call_id].update(result=event.result, error=event.error, duration_s=round(event.duration_s, 4))
        elif isinstance(event, AttachmentProcessed):
            self.attachments.append({"filename": event.filename, "kind": event.kind, "handled_by": event.handled_by})
        elif isinstance(event, AttachmentProduced):
            self.files.append({"path": event.path, "mime": event.mime, "title": event.title, "tool": event.tool})
        elif isinstance(event, TurnFinished):
            self.finished, self.session_id = event, event.session_id
        elif isinstance(event, TurnFailed):
            self.error, self.partial, self.session_id = event.error, event.partial_text, event.session_id


def error_info(exc: BaseException, partial: str = "") -> dict:
    if isinstance(exc, AssistantError):
        info = {"type": type(exc).__name__, "message": exc.args[0] if exc.args else "", "hint": exc.hint or None}
    else:  # a plugin's or tool's own exception that escaped the dialogue
        info = {
            "type": type(exc).__name__, "message": str(exc),
            "hint": "an unexpected error inside the assistant or a plugin; if it repeats, please report it",
        }  # fmt: skip
    if partial:
        info["partial_answer"] = partial
    return info


class BatchRunner:
    def __init__(
        self,
        items: Sequence[BatchItem],
        results: ResultsFile,
        settings: Settings,
        *,
        options: BatchOptions = BatchOptions(),
        retry_failed: bool = True,
        registry: Any = None,
        prompts: Any = None,
        store: Any = None,
        progress: BatchProgress | None = None,
        load_attachment: Callable[[str], Any] | None = None,
    ) -> None:
        self.settings, self.options = settings, options
        self.results = results
        self.pool: Pool | None = None
        self.registry, self.prompts, self.store = registry, prompts, store
        self.todo = [
            i for i in items
            if not results.succeeded(i.id) and (retry_failed or i.id not in results.records)
        ]  # fmt: skip
        self.stats = BatchStats(total=len(items), to_run=len(self.todo), skipped=len(items) - len(self.todo))
        self.progress = progress or BatchProgress(self.stats, quiet=True)
        self.progress.stats = self.stats
        self._load_attachment = load_attachment or self._default_loader
        self._per_item: dict[tuple, Settings] = {}

    def _default_loader(self, source: str) -> Any:
        # The same loading as `ask --attach` (typed by content; URLs downloaded; images decoded
        # once so a damaged one fails here as this item's error).
        from ..ask import _load_attachment

        return _load_attachment(source, self.settings)

    # --- the whole batch ---------------------------------------------------------------------

    async def run(self, pool: Pool) -> BatchStats:
        """Run every item still to do on `pool`. Ctrl-C or SIGTERM end it early with
        stats.interrupted set; records already written stay."""
        self.pool = pool
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        old_term = signal.getsignal(signal.SIGTERM)
        try:  # SIGTERM cancels like Ctrl-C does, so in-flight work unwinds and the file stays whole
            loop.add_signal_handler(signal.SIGTERM, main.cancel)
            handles_term = True
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            handles_term = False
        ticker = asyncio.ensure_future(self._tick())
        queue = deque(self.todo)
        try:
            self.pool.open()
            self.stats.started = time.perf_counter()
            async with asyncio.TaskGroup() as group:
                for _ in range(min(self.options.concurrency, len(queue))):
                    group.create_task(self._worker(queue))
        except asyncio.CancelledError:
            self.stats.interrupted = True
        except BaseExceptionGroup as failed:  # one worker failed: the others were cancelled
            raise _first(failed) from None
        finally:
            self.stats.ended = time.perf_counter()
            ticker.cancel()
            await self.results.drain()
            await self.pool.aclose()
            if handles_term:
                loop.remove_signal_handler(signal.SIGTERM)
                signal.signal(signal.SIGTERM, old_term)  # remove_signal_handler leaves SIG_DFL
            self.progress.update(force=True)
        return self.stats

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.progress.update()

    async def _worker(self, queue: deque) -> None:
        while queue:
            await self._run_item(queue.popleft())

    # --- one item ----------------------------------------------------------------------------

    async def _run_item(self, item: BatchItem) -> None:
        started = time.perf_counter()
        prior = self.results.records.get(item.id)
        attempts = int(prior.get("attempts") or 0) if prior else 0  # cumulative over runs
        try:
            attachments = [await asyncio.to_thread(self._load_attachment, src) for src in item.attachments]
        except Exception as exc:  # noqa: BLE001 - this item's problem, not the batch's
            self._write(item, self._failed(item, started, attempts + 1, exc))
            return
        avoid: set[str] = set()
        for _ in range(self.options.max_attempts):
            slot = self.pool.pick(avoid)
            if slot is None:
                raise AllEndpointsDown(
                    "every endpoint is unreachable: " + ", ".join(s.url for s in self.pool.slots),
                    hint="start the server(s) or fix --base-url, then re-run the same command: "
                    "finished items are kept and skipped",
                )
            attempts += 1
            with self.pool.lease(slot):
                meter = _Metered(slot.model, self.options.extra_body)
                got = await self._turn(item, attachments, slot, meter)
            self._count(meter)
            if isinstance(got.error, EngineUnreachable) and not got.output and meter.completions == 0:
                wait = self.pool.mark_down(slot)
                if wait is not None:  # None: already down (other items in flight there saw it first)
                    self.progress.note(f"[{slot.url} is unreachable: taken out for {wait:.0f} s; its items go elsewhere]")
                avoid.add(slot.url)
                continue
            self.pool.mark_up(slot)
            break
        record = self._record(item, started, attempts, slot, meter, got)
        if got.error is None and item.expected:
            await self._score(item, record, slot)
        self._write(item, record)

    async def _turn(self, item: BatchItem, attachments: list, slot: Slot, meter: _Metered) -> _Collected:
        from ..dialogue.turn import Dialogue

        got = _Collected()
        try:
            settings = self._settings_for(item)
        except AssistantError as exc:  # e.g. an OpenAI Batch body with temperature -1: this item's error
            got.error = exc
            return got
        dialogue = Dialogue(
            meter, settings=settings, registry=self.registry, prompts=self.prompts, approver=None,
            store=self.store, model_name=slot.target.model_name, model_accepts_images=slot.target.vision,
            native_tools=slot.target.native_tools, tool_selection=slot.target.tool_selection,
        )  # fmt: skip
        system = item.system or self.options.system
        if system:
            dialogue.system_override = system
        try:
            async for event in dialogue.turn(item.question, attachments):
                got(event)
        except Exception as exc:  # noqa: BLE001 - a plugin's exception is this item's error
            got.error = exc
        if got.error is None and got.finished is None:
            got.error = AssistantError("the turn ended without an answer")
        return got

    def _settings_for(self, item: BatchItem) -> Settings:
        """The batch's settings, with the item's own sampling (an OpenAI Batch body) on top;
        checked once per distinct set (a bad value is that item's error)."""
        if not item.model_settings:
            return self.settings
        key = tuple(sorted(item.model_settings.items()))
        if key not in self._per_item:
            self._per_item[key] = with_overrides(self.settings, {"model": item.model_settings}, source=f"item {item.id}")
        return self._per_item[key]

    def _count(self, meter: _Metered) -> None:
        self.stats.requests += meter.requests
        self.stats.prompt_tokens += meter.prompt_tokens
        self.stats.completion_tokens += meter.completion_tokens

    def _record(self, item: BatchItem, started: float, attempts: int, slot: Slot, meter: _Metered, got: _Collected) -> dict:
        now = time.perf_counter()
        return {
            "id": item.id,
            "question": item.question,
            "answer": got.finished.text if got.finished else None,
            "tool_calls": list(got.tool_calls.values()),
            "citations": [],  # no event carries citations yet
            "usage": {
                "prompt_tokens": meter.prompt_tokens,
                "completion_tokens": meter.completion_tokens,
                "total_tokens": meter.prompt_tokens + meter.completion_tokens,
            },
            "latency_s": round(now - started, 4),
            "ttft_s": None if meter.first_token is None else round(meter.first_token - started, 4),
            "attempts": attempts,
            "error": None if got.error is None else error_info(got.error, got.partial),
            "model": meter.model_name or slot.target.model_name,
            "endpoint": slot.url,
            "steps": got.finished.steps if got.finished else None,
            # "length": the answer was cut at max_tokens (getattr: events from before the field existed)
            "finish_reason": getattr(got.finished, "finish_reason", None),
            "attachments": got.attachments,
            "files": got.files,
            "session_id": got.session_id,
        }

    def _failed(self, item: BatchItem, started: float, attempts: int, exc: BaseException) -> dict:
        """The record of an item that failed before reaching any endpoint (an attachment)."""
        return {
            "id": item.id, "question": item.question, "answer": None, "tool_calls": [], "citations": [],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            "latency_s": round(time.perf_counter() - started, 4), "ttft_s": None, "attempts": attempts,
            "error": error_info(exc), "model": "", "endpoint": None, "steps": None, "finish_reason": None, "attachments": [],
            "files": [], "session_id": None,
        }  # fmt: skip

    async def _score(self, item: BatchItem, record: dict, slot: Slot) -> None:
        mode = item.match or self.options.default_match
        if mode != "judge":
            record["score"] = {"mode": mode, "correct": is_correct(mode, record["answer"], item.expected)}
            return
        # The judge runs on the endpoint that answered (warm prefix cache, same model), greedy.
        meter = _Metered(slot.model, None)
        seed = self.settings.model.seed
        try:
            with self.pool.lease(slot):
                done = await meter.complete(
                    judge_messages(item.question, item.expected, record["answer"], self.prompts),
                    temperature=0.0, max_tokens=self.options.judge_max_tokens, seed=None if seed < 0 else seed,
                )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a failed judge call fails the item (retried on resume)
            record["score"] = {"mode": mode, "correct": None, "verdict": None}
            record["error"] = error_info(exc)
            record["error"]["message"] = "the judge request failed: " + record["error"]["message"]
            return
        finally:
            self._count(meter)
        record["score"] = {
            "mode": mode, "correct": parse_verdict(done.text), "verdict": done.text,
            "usage": {"prompt_tokens": meter.prompt_tokens, "completion_tokens": meter.completion_tokens},
        }  # fmt: skip

    def _write(self, item: BatchItem, record: dict) -> None:
        if item.expected:
            record["expected"] = item.expected[0] if len(item.expected) == 1 else list(item.expected)
            record.setdefault("score", None)
        if item.meta:
            record["meta"] = item.meta
        record["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.results.append(record)
        if record["error"] is None:
            self.stats.done += 1
        else:
            self.stats.failed += 1
            err = record["error"]
            self.progress.note(f"[{item.id} failed: {err['type']}: {err['message'].splitlines()[0][:160]}]")
        self.progress.update()


def _first(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a failed task group: an AssistantError if there is one."""
    flat: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for e in g.exceptions:
            walk(e) if isinstance(e, BaseExceptionGroup) else flat.append(e)

    walk(group)
    for e in flat:
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            return e
    return next((e for e in flat if isinstance(e, AssistantError)), flat[0])
