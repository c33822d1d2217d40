"""SVG snapshots of the chat screen (pytest-textual-snapshot). Deterministic: a canned backend
with fixed events (durations included), no session store (no dates or ids), a fixed size.

Update after an intended change: `pytest tests/ui/test_snapshots.py --snapshot-update`, then
look at the SVGs (the failure report shows both versions side by side).
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.events import ApprovalDecided, TextDelta, ToolCallFinished, ToolCallStarted, TurnFinished, TurnStarted, Usage
from assistant.plugin_api.contract import Recorder
from assistant.ui.app import create_app
from assistant.ui.backend import ChatBackend

from . import wait_until

SIZE = (100, 30)


@dataclass(frozen=True)
class Request:
    tool: str
    plugin: str
    risk: str
    arguments: dict


class CannedBackend(ChatBackend):
    """Answers every question with the same events; asks for approval when told to."""

    def __init__(self, ask: bool = False) -> None:
        super().__init__(None, model_label="tiny-model")
        self.ask = ask

    def recorder(self):  # as with the speech plugin loaded: the footer offers push-to-talk
        return Recorder(name="microphone", label="Voice input", record=lambda stop: b"")

    async def turn(self, text, attachments=()):
        yield TurnStarted(None)
        yield ToolCallStarted("c1", "shop_order", {"item": "pear", "quantity": 2}, "side_effects")
        if self.ask:
            await self._approve(Request("shop_order", "shop", "side_effects", {"item": "pear", "quantity": 2}))
        yield ApprovalDecided("c1", "shop_order", True, "approved")
        yield ToolCallFinished("c1", "shop_order", "ordered 2 pear", None, 0.25)
        for piece in ("I ordered **two pears**.\n\n", "- delivery: tomorrow\n", "- price: `3` each\n"):
            yield TextDelta(piece)
        yield TurnFinished("I ordered **two pears**.", Usage(10, 10), 2, 0.5, None, 1)


def app_for(backend: ChatBackend):
    return create_app(backend, clock=lambda: 0.0)


async def steady(pilot) -> None:
    """The screen is up and the prompt's cursor does not blink (a blink is a timing)."""
    await wait_until(pilot, lambda: pilot.app.chat.query("PromptInput"))
    pilot.app.chat.prompt.cursor_blink = False
    await pilot.pause()


async def ask(pilot, text: str = "Please order two pears") -> None:
    await steady(pilot)
    pilot.app.chat.prompt.value = text
    await pilot.press("enter")


def test_empty_chat_screen(snap_compare):
    assert snap_compare(app_for(CannedBackend()), terminal_size=SIZE, run_before=steady)


def test_answer_with_a_tool_panel_and_markdown(snap_compare):
    async def run_before(pilot) -> None:
        await ask(pilot)
        await wait_until(pilot, lambda: not pilot.app.chat.turn_running)
        title = pilot.app.query_one("ToolCallPanel CollapsibleTitle")
        final = "▶ 🔧 shop_order · approved · ✓ 0.25 s"
        await wait_until(pilot, lambda: str(title.render()) == final, what="the panel's final title")
        await pilot.pause()

    assert snap_compare(app_for(CannedBackend()), terminal_size=SIZE, run_before=run_before)


def test_approval_modal(snap_compare):
    async def run_before(pilot) -> None:
        await ask(pilot)
        await wait_until(pilot, lambda: pilot.app.screen.id != "chat" and pilot.app.screen.is_mounted)
        await pilot.pause()

    assert snap_compare(app_for(CannedBackend(ask=True)), terminal_size=SIZE, run_before=run_before)
