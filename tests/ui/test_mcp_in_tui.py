"""The terminal UI with tools from a real MCP server process (tests/mcp_servers/shop_server.py):
an image a tool returns is shown inline, and a side-effect MCP tool waits for the approval modal."""

from __future__ import annotations

import sys

from assistant.mcp.hub import McpTools
from assistant.settings import load_settings
from assistant.testing.fake_model import call
from assistant.ui.backend import ChatBackend
from assistant.ui.screens import ApprovalScreen
from assistant.ui.widgets import ImagePreview, ProducedFile, ToolCallPanel

from ..conftest import ROOT
from . import make_app, make_dialogue, wait_until

SHOP = str(ROOT / "tests" / "mcp_servers" / "shop_server.py")


def with_store(dialogue, tmp_path):
    """The MCP server as `store` (the tests' own Shop plugin is `shop`)."""
    log = tmp_path / "reservations.log"
    mcp = load_settings(overrides={"mcp": {"servers": {"store": {"command": sys.executable, "args": [SHOP],
                                                                 "env": {"SHOP_LOG": str(log)}}}}}, environ={}).mcp  # fmt: skip
    dialogue.registry.providers.append(McpTools(mcp, tmp_path / "state" / "plugins"))
    return log


async def run_turn(pilot, text):
    pilot.app.chat.prompt.value = text
    await pilot.press("enter")


async def test_mcp_image_result_is_shown_and_side_effects_ask_first(tmp_path):
    dialogue = make_dialogue(
        tmp_path, call("store_swatch", {"colour": "green"}), "Here is the swatch.",
        call("store_reserve_item", {"item": "dripper"}), "Reserved.",
    )  # fmt: skip
    log = with_store(dialogue, tmp_path)
    app = make_app(tmp_path, backend=ChatBackend(dialogue))
    try:
        async with app.run_test() as pilot:
            await run_turn(pilot, "Show me the green swatch")
            await wait_until(pilot, lambda: not app.chat.turn_running, timeout=60, what="the first turn")
            produced = app.query_one(ProducedFile)
            assert produced.mime == "image/png" and produced.tool == "store_swatch"
            assert not produced.query_one(ImagePreview).error
            await run_turn(pilot, "Reserve a dripper")
            await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen), timeout=30, what="the approval modal")
            assert app.screen.tool == "store_reserve_item"
            await pilot.press("y")
            await wait_until(pilot, lambda: not app.chat.turn_running, timeout=30, what="the second turn")
            panel = [p for p in app.query(ToolCallPanel) if p.tool == "store_reserve_item"][0]
            assert panel.decision == "approved" and "reserved 1 x dripper" in panel.result
            assert log.read_text() == "reserved 1 dripper\n"
    finally:
        await dialogue.registry.aclose()
