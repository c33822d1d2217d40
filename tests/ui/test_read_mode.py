"""/read switches how attached documents reach the model, and the chat shows what happened."""

from __future__ import annotations

import json

from assistant.testing import ScriptedModel
from assistant.ui.widgets import Note
from assistant_plugins.documents import Documents

from . import capture_notifications, make_app, make_backend, wait_until


def responder(messages, tools):
    user = messages[-1]["content"]
    if isinstance(user, str) and user.startswith("Excerpt"):
        relevant = "7731" in user.split("\n\nQuestion:")[0]
        quote = "The service code is 7731." if relevant else ""
        return json.dumps({"relevant": relevant, "answer": "7731" if relevant else "", "quotes": [quote] if relevant else []})
    if "Notes:" in messages[0]["content"]:
        return "The code is 7731 [1]."
    return "It is 7731 [1]."


async def send(pilot, text: str) -> None:
    pilot.app.chat.prompt.value = text
    await pilot.press("enter")


async def test_read_command_sets_the_mode_and_a_long_document_is_read_whole(tmp_path):
    doc = tmp_path / "manual.md"
    paragraphs = [f"Paragraph {i} is about valves, pumps and hoses in some detail." * 3 for i in range(900)]
    paragraphs[600] += " The service code is 7731."
    doc.write_text("# Manual\n\n" + "\n\n".join(paragraphs))
    backend = make_backend(tmp_path, model=ScriptedModel(responder=responder), plugins=(Documents,))
    app = make_app(tmp_path, backend=backend)
    async with app.run_test() as pilot:
        notes = capture_notifications(app)
        await send(pilot, "/read")
        await pilot.pause()
        assert "'auto' mode" in notes[-1][2]
        await send(pilot, "/read nonsense")
        await pilot.pause()
        assert "usage: /read" in notes[-1][2] and app.chat.prompt.value == "/read nonsense"
        await send(pilot, "/read all")
        await pilot.pause()
        assert "every part is read" in notes[-1][2] and backend.read_mode == "read-all"
        await send(pilot, f"/attach {doc}")
        await send(pilot, "What is the service code?")
        await wait_until(pilot, lambda: not app.chat.turn_running, timeout=20, what="the turn to end")
        shown = [str(n.render()) for n in app.query(Note)]
        assert any("read all" in s and "manual.md" in s and "1 relevant" in s for s in shown), shown
        assert backend.dialogue.registry.plugins["documents"].settings.mode == "read-all"
        excerpts = [r for r in backend.dialogue.model.requests if str(r["messages"][-1]["content"]).startswith("Excerpt")]
        assert len(excerpts) > 5
