"""Events the core emits while answering. Every front end (`ask`, batch, the TUI) consumes these.

Small frozen dataclasses named for what happened; front ends pattern-match on the type.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """Long work in progress (engine start-up, model conversion...). `fraction` is None when unknown."""

    task: str
    message: str
    fraction: float | None = None


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    # Raw JSON text as the model produced it: small models emit invalid JSON, so parsing and
    # validation happen where a retry can be asked for, not here.
    arguments: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    time_to_first_token_s: float | None
    total_s: float

    def tokens_per_s(self, completion_tokens: int) -> float | None:
        """Decode speed: tokens after the first over the time after the first."""
        if self.time_to_first_token_s is None or completion_tokens < 2:
            return None
        decode = self.total_s - self.time_to_first_token_s
        return (completion_tokens - 1) / decode if decode > 0 else None


@dataclass(frozen=True)
class Completion:
    """One finished model response."""

    text: str
    finish_reason: str | None
    usage: Usage
    timings: Timings
    model: str
    tool_calls: tuple[ToolCall, ...] = field(default=())


# --- the dialogue turn ----------------------------------------------------------------


@dataclass(frozen=True)
class TurnStarted:
    session_id: str | None


@dataclass(frozen=True)
class AttachmentProcessed:
    """An attachment was read by a plugin (a transcript, a document) or passed to the model."""

    filename: str
    kind: str
    handled_by: str  # "model", "inline-text" or a plugin name
    title: str = ""
    text: str = ""


@dataclass(frozen=True)
class ToolCallStarted:
    call_id: str
    name: str
    arguments: dict
    risk: str


@dataclass(frozen=True)
class ApprovalDecided:
    call_id: str
    name: str
    approved: bool
    decision: str  # auto, approved, approved-always, approved-by-policy, denied, denied-by-policy


@dataclass(frozen=True)
class ToolCallFinished:
    call_id: str
    name: str
    result: str
    error: str | None
    duration_s: float


@dataclass(frozen=True)
class AttachmentProduced:
    """A tool made a file (e.g. a generated image); it is saved with the session."""

    path: str
    mime: str
    filename: str
    title: str
    tool: str


@dataclass(frozen=True)
class TurnFinished:
    text: str
    usage: Usage
    steps: int
    total_s: float
    session_id: str | None
    tool_calls: int = 0
    finish_reason: str | None = None  # of the last model call: "length" means the answer was cut


@dataclass(frozen=True)
class TurnFailed:
    error: Exception
    partial_text: str = ""
    session_id: str | None = None
