"""Helpers shared by the UI tests: a test plugin, scripted models, and the app factory wiring.

Every test builds the real app with `create_app(backend)`, where the backend wraps a real
Dialogue on a ScriptedModel and (where sessions matter) a real SessionStore in tmp_path.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

from assistant.dialogue.turn import Dialogue
from assistant.events import TextDelta
from assistant.plugin_api import OutputFile, Plugin, Risk, ToolContext, ToolOutput, tool
from assistant.plugin_api.registry import load_plugins
from assistant.sessions import SessionStore
from assistant.settings import load_settings
from assistant.testing.fake_model import ScriptedModel, call
from assistant.ui.app import create_app
from assistant.ui.backend import ChatBackend

__all__ = ["BrokenStreamModel", "capture_notifications", "run_command", "Shop", "GatedModel", "call", "make_app", "make_backend", "make_png", "wait_until"]


def make_png(path: Path, size: tuple[int, int] = (24, 16), color: str = "red") -> Path:
    from PIL import Image

    Image.new("RGB", size, color).save(path, format="PNG")
    return path


class Shop(Plugin):
    """A test plugin: a read-only tool, one with side effects, one that makes an image, and
    one that reports progress and waits until the test releases it."""

    name = "shop"
    description = "A test shop"
    gate: asyncio.Event | None = None  # set per test for `report`

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.orders: list[tuple[str, int]] = []

    @tool
    def price(self, item: str) -> dict:
        """Price of an item.

        Args:
            item: Item name.
        """
        return {"item": item, "price": 3}

    @tool(risk=Risk.SIDE_EFFECTS)
    def order(self, item: str, quantity: int) -> str:
        """Place an order.

        Args:
            item: Item name.
            quantity: How many.
        """
        self.orders.append((item, quantity))
        return f"ordered {quantity} {item}"

    @tool
    def picture(self) -> ToolOutput:
        """Draw a picture."""
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (16, 16), "blue").save(buf, format="PNG")
        return ToolOutput("drew it", (OutputFile(buf.getvalue(), "image/png", "drawing.png", "a blue square"),))

    @tool
    async def report(self, ctx: ToolContext) -> str:
        """Write a long report."""
        ctx.progress("reading documents", 0.25)
        if Shop.gate is not None:
            await Shop.gate.wait()
        ctx.progress("reading documents", 1.0)
        return "report done"


class GatedModel(ScriptedModel):
    """Streams the first piece of each reply, then waits for `release` before the rest: a slow
    model whose timing the test controls."""

    def __init__(self, *replies: Any) -> None:
        super().__init__(*replies)
        self.release = asyncio.Event()
        self.waiting = asyncio.Event()

    async def stream_chat(self, messages, **kwargs):
        first = True
        async for event in super().stream_chat(messages, **kwargs):
            yield event
            if first and isinstance(event, TextDelta):
                first = False
                self.waiting.set()
                await self.release.wait()


def make_dialogue(
    tmp_path: Path, *replies: Any, model: Any = None, store: bool = True, approval: str = "ask", plugins: tuple = (Shop,)
) -> Dialogue:
    state = tmp_path / "state"
    settings = load_settings(
        overrides={
            "paths": {"state_dir": str(state)},
            "dialogue": {"system_prompt": ""},
            "approval": {"side_effects": approval},
        },
        environ={"XDG_CONFIG_HOME": str(tmp_path / "no-config")},
    )
    registry = load_plugins(extra=list(plugins), include_entry_points=False, data_root=state / "plugins")
    sessions = SessionStore(state / "sessions.db", state / "attachments") if store else None
    return Dialogue(model or ScriptedModel(*replies), settings=settings, registry=registry, store=sessions, model_name="scripted")


def make_backend(tmp_path: Path, *replies: Any, **kw: Any) -> ChatBackend:
    return ChatBackend(make_dialogue(tmp_path, *replies, **kw))


def make_app(tmp_path: Path, *replies: Any, backend: ChatBackend | None = None, **kw: Any):
    backend = backend or make_backend(tmp_path, *replies, **kw)
    return create_app(backend, export_dir=tmp_path / "exports", clock=lambda: 100.0)


async def wait_until(pilot, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.02)


class BrokenStreamModel(ScriptedModel):
    """The first reply streams `partial`, then the stream breaks (as when the server dies);
    later replies come from the script."""

    def __init__(self, partial: str, *replies: Any) -> None:
        super().__init__(*replies)
        self.partial = partial
        self.broken = False

    async def stream_chat(self, messages, **kwargs):
        if self.broken:
            async for event in super().stream_chat(messages, **kwargs):
                yield event
            return
        from assistant.errors import StreamInterrupted

        self.broken = True
        self.requests.append({"messages": [dict(m) for m in messages], **kwargs})
        yield TextDelta(self.partial)
        raise StreamInterrupted(
            f"the answer stream broke after {len(self.partial)} characters (RemoteProtocolError)",
            partial_text=self.partial,
            hint="the server may have crashed or restarted: check `assistant engine status`",
        )


def capture_notifications(app) -> list[tuple[str, str, str]]:
    """Records every notification as (severity, title, message); they still show."""
    seen: list[tuple[str, str, str]] = []
    original = app.notify

    def notify(message, *, title="", severity="information", timeout=None, markup=True):
        seen.append((severity, title, message))
        original(message, title=title, severity=severity, timeout=timeout, markup=markup)

    app.notify = notify
    return seen


async def run_command(pilot, query: str) -> None:
    """Open Textual's command palette (ctrl+p), search for `query`, run the best match."""
    from textual.command import CommandInput, CommandList, CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the command palette")
    app.screen.query_one(CommandInput).value = query
    await wait_until(pilot, lambda: app.screen.query_one(CommandList).option_count > 0, what=f"a command matching {query!r}")
    await pilot.press("enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, CommandPalette), what="the palette to close")
