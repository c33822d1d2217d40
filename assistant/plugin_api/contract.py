"""What a plugin is: the class a plugin author subclasses, and the `@tool` decorator.

A plugin declares its name, the attachment kinds it consumes and produces, a settings model
(read from `[plugins.NAME]` in config.toml), its tools, and a lazy `setup()`:

    class Weather(Plugin):
        name = "weather"
        description = "Current weather"

        class Settings(BaseModel):
            units: Literal["metric", "imperial"] = "metric"

        @tool
        async def forecast(self, city: str, days: int = 1) -> str:
            \"\"\"Forecast for a city.

            Args:
                city: City name, e.g. "Oslo".
                days: How many days ahead.
            \"\"\"
            ...

The tool is offered to the model as `weather_forecast`, its JSON schema derived from the type
hints and the docstring. A parameter annotated `ToolContext` is injected, not shown to the model.

`capabilities()` lists what a front end may offer for the plugin (a `Recorder`: push-to-talk).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

if TYPE_CHECKING:
    from ..dialogue.attachments import Attachment


class Risk(str, enum.Enum):
    """What running a tool can do; the approval policy (config `[approval]`) decides per level."""

    READ_ONLY = "read_only"
    SIDE_EFFECTS = "side_effects"


_TOOL_MARK = "__assistant_tool__"


@dataclass(frozen=True)
class ToolMark:
    name: str | None
    risk: Risk
    needs: str | None = None


TOOL_NEEDS = ("file",)


def tool(fn: Callable | None = None, *, risk: Risk | str = Risk.READ_ONLY, name: str | None = None,
         needs: str | None = None):  # fmt: skip
    """Mark a plugin method as a tool. Usable bare (`@tool`) or with options (`@tool(risk=...)`).

    `needs="file"`: the tool works on a file, so small models are offered it only when the
    conversation names or attaches one (else they invent paths to call it with)."""
    if needs is not None and needs not in TOOL_NEEDS:
        raise ValueError(f"needs must be one of {TOOL_NEEDS}, not {needs!r}")

    def mark(f: Callable) -> Callable:
        setattr(f, _TOOL_MARK, ToolMark(name, Risk(risk), needs))
        return f

    return mark(fn) if fn is not None else mark


def tool_mark(obj: Any) -> ToolMark | None:
    return getattr(obj, _TOOL_MARK, None)


@dataclass(frozen=True)
class OutputFile:
    """A file a tool produced (an image, a report): saved with the session and shown to the user."""

    data: bytes
    mime: str
    filename: str
    title: str = ""


@dataclass(frozen=True)
class ToolOutput:
    """A tool result with files attached, or with words the user must see. Plain `str`/`dict`/`list`
    returns are fine otherwise."""

    text: str
    files: tuple[OutputFile, ...] = ()
    # Shown to the user word for word (a hand-off reference, a ticket number): added after the
    # model's answer when the answer leaves it out, since small models paraphrase it away.
    say: str = ""


@dataclass(frozen=True)
class AttachmentOutput:
    """What a consuming plugin made of an attachment: text that joins the user's turn."""

    text: str
    title: str = ""  # shown to the user, e.g. "Transcript of memo.m4a (en, 42 s)"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ToolContext:
    """Handed to tools (and attachment handlers) that declare a parameter of this type."""

    plugin: str
    session_id: str | None
    data_dir: Path  # a folder this plugin may keep files in
    emit: Callable[[Any], None]  # send an event (e.g. events.Progress) to the front end
    # The dialogue's own model client (ChatClient or a test double), for plugins that ask the
    # model themselves (e.g. reading a long document chunk by chunk); None outside a dialogue.
    model: Any = None
    turn_text: str = ""  # the user's message in this turn, for attachment handlers that need the question
    store: Any = None  # the SessionStore when sessions are on (transcript, attachments, marks); else None

    def progress(self, message: str, fraction: float | None = None) -> None:
        from ..events import Progress

        self.emit(Progress(self.plugin, message, fraction))


class Plugin:
    """Base class of every plugin, built-in or third-party."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    consumes: ClassVar[frozenset[str]] = frozenset()  # attachment kinds: image, audio, document, text
    produces: ClassVar[frozenset[str]] = frozenset()
    Settings: ClassVar[type | None] = None  # a pydantic model for [plugins.NAME]; None = no settings
    prompts_dir: ClassVar[Path | None] = None  # templates this plugin ships (user prompts override them)
    # Installed but loaded only when named in [plugins] enabled: for tools that belong to one
    # kind of deployment (the customer-service pack), not to every chat.
    opt_in: ClassVar[bool] = False

    def __init__(self, settings: Any = None, *, data_dir: Path | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir or Path(".")
        self._ready = False
        self._setup_lock = None

    async def setup(self) -> None:
        """Load heavy resources (models, indexes). Called once, lazily, before first use."""

    async def ensure_setup(self) -> None:
        if self._ready:
            return
        # Concurrent turns (batch) may need the plugin at once: set up exactly once.
        if self._setup_lock is None:
            import asyncio

            self._setup_lock = asyncio.Lock()
        async with self._setup_lock:
            if not self._ready:
                await self.setup()
                self._ready = True

    async def handle_attachment(self, attachment: "Attachment", ctx: ToolContext) -> AttachmentOutput:
        """For plugins that consume attachments: turn one into text for the turn."""
        raise NotImplementedError(f"plugin {self.name} declares consumes={set(self.consumes)} but has no handle_attachment")

    def capabilities(self) -> "tuple[Capability, ...]":
        """What a front end may offer on this plugin's behalf (e.g. a `Recorder` for push-to-talk).
        Called after loading, so it may use the settings; keep it cheap: import heavy things
        inside the callables, not here."""
        return ()


# --- front-end capabilities ------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """Something a front end may offer on a plugin's behalf (a key, a palette command).

    A plugin lists them in `Plugin.capabilities()`; each front end looks for the types it knows
    (the TUI: `Recorder`) with `isinstance` and ignores the rest, so a new kind is a subclass
    plus the front end that uses it. `kind` names the type in listings and messages.
    """

    kind: ClassVar[str] = ""
    name: str  # unique within the plugin, e.g. "microphone"
    label: str  # what the front end shows, e.g. "Voice input"
    description: str = ""
    # Why it cannot be used now, with what to do ("... pip install sounddevice"); None when it can.
    # Called when the person asks for it, so it may be slow-ish (probing a device), never at load.
    check: Callable[[], str | None] | None = None

    def unavailable(self) -> str | None:
        """None when it can be used now, else the reason and what to do."""
        if self.check is None:
            return None
        try:
            return self.check()
        except Exception as exc:  # noqa: BLE001 - a broken check must not take the front end down
            return f"cannot check whether {self.label.lower()} works: {type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Recorder(Capability):
    """Push-to-talk: `record(stop)` records from the microphone until `stop` (a threading.Event)
    is set, blocking (front ends run it in a thread), and returns an Attachment or the recorded
    bytes, which the front end types by content and names `filename`. It should cap the length
    itself and raise an AssistantError with a hint when it cannot record."""

    kind: ClassVar[str] = "recorder"
    record: Callable[[Any], Any] | None = None  # (threading.Event) -> Attachment | bytes
    filename: str = "recording.wav"

    def __post_init__(self) -> None:
        if not callable(self.record):
            raise TypeError(f"Recorder {self.name!r} needs record=a callable taking a threading.Event")


# --- testing helpers a plugin offers -----------------------------------------------------------


@dataclass(frozen=True)
class ScenarioAttachment:
    """A kind of scenario-file attachment a plugin's test helpers make, registered as an
    `assistant.testing` entry point whose name is the key (`{"name": "memo.wav", "speech": "..."}`).
    `write(path, value)` writes that file; `missing()` names what this machine lacks to make it
    (a tool, an extra), so scenario tests skip with the reason rather than fail."""

    write: Callable[[Path, Any], None]
    missing: Callable[[], list[str]] = list
