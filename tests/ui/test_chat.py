"""The whole app with Pilot, on a real Dialogue over a ScriptedModel: streaming, cancelling,
attachments, tool panels, approval, progress, errors, voice input, start-up time."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from textual import events

from assistant.errors import EngineStartFailed
from assistant.events import Progress
from assistant.plugin_api import AttachmentOutput, Plugin
from assistant.plugin_api.contract import Recorder
from assistant.ui.app import create_app
from assistant.ui.backend import ChatBackend
from assistant.ui.screens import ApprovalScreen
from assistant.ui.widgets import (
    AssistantMessage,
    AttachmentChip,
    ImagePreview,
    Note,
    ProducedFile,
    ProgressPanel,
    ToolCallPanel,
    UserMessage,
)

from . import (
    BrokenStreamModel,
    GatedModel,
    Shop,
    call,
    capture_notifications,
    make_app,
    make_backend,
    make_dialogue,
    make_png,
    wait_until,
)


async def send(pilot, text: str) -> None:
    pilot.app.chat.prompt.value = text
    await pilot.press("enter")


def answers(app) -> list[AssistantMessage]:
    return list(app.query(AssistantMessage))


async def finished(pilot) -> None:
    await wait_until(pilot, lambda: not pilot.app.chat.turn_running, what="the turn to end")


# --- streaming and cancelling --------------------------------------------------------------


async def test_answer_streams_into_the_markdown_while_it_arrives(tmp_path):
    model = GatedModel("The capital of **France** is Paris.")
    app = make_app(tmp_path, model=model)
    async with app.run_test() as pilot:
        await send(pilot, "Capital of France?")
        await wait_until(pilot, lambda: model.waiting.is_set() and answers(app) and answers(app)[0].markdown.source)
        answer = answers(app)[0]
        assert answer.markdown.source == "The " and app.chat.turn_running  # the first piece, before the rest
        assert app.query_one(UserMessage).text == "Capital of France?" and app.chat.prompt.value == ""
        model.release.set()
        await finished(pilot)
        assert answer.markdown.source == "The capital of **France** is Paris." == app.chat.last_answer
        assert answer.status == ""


async def test_an_answer_cut_by_max_tokens_says_so(tmp_path):
    from assistant.testing.fake_model import Reply

    app = make_app(tmp_path, Reply("The list goes on and", finish_reason="length"))
    async with app.run_test() as pilot:
        await send(pilot, "List everything")
        await finished(pilot)
        assert answers(app)[0].status == "(cut short: the answer reached model.max_tokens)"


async def test_escape_cancels_the_turn_keeping_partial_answer_input_and_history(tmp_path):
    model = GatedModel("Once upon a time there was a very long story.", "Short one.")
    app = make_app(tmp_path, model=model)
    async with app.run_test() as pilot:
        await send(pilot, "Tell me a story")
        await wait_until(pilot, model.waiting.is_set)
        await pilot.press(*"next question")  # the UI stays responsive while the answer streams
        assert app.chat.prompt.value == "next question"
        await pilot.press("escape")
        await finished(pilot)
        answer = answers(app)[0]
        assert answer.status == "(cancelled)" and answer.markdown.source == "Once "
        assert "(cancelled)" in str(answer.query_one(".answer-status").render())
        assert app.chat.prompt.value == "next question"  # what was typed is still there
        # the next turn works, and the model sees the cut-off answer in the history
        model.release.set()
        await pilot.press("enter")
        await finished(pilot)
        assert app.chat.last_answer == "Short one."
        sent = [(m["role"], m["content"]) for m in model.requests[1]["messages"]]
        assert sent == [("user", "Tell me a story"), ("assistant", "Once "), ("user", "next question")]
        store = app.backend.store
        saved = [(m["role"], m["content"]) for m in store.messages(app.backend.session_id)]
        assert saved == sent + [("assistant", "Short one.")]
        assert len(app.query(UserMessage)) == 2  # the view kept the whole conversation


async def test_a_second_question_while_one_is_answered_is_refused_and_kept(tmp_path):
    model = GatedModel("Slow answer.")
    app = make_app(tmp_path, model=model)
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await send(pilot, "first")
        await wait_until(pilot, model.waiting.is_set)
        await send(pilot, "second")
        assert app.chat.prompt.value == "second" and seen[-1][0] == "warning" and "Esc" in seen[-1][2]
        model.release.set()
        await finished(pilot)


async def test_app_starts_and_paints_fast():
    import tempfile
    from pathlib import Path

    tmp = Path(tempfile.mkdtemp())
    backend = make_backend(tmp, "hi")
    started, cpu_started = time.perf_counter(), time.process_time()
    app = create_app(backend)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.chat.is_mounted and app.chat.prompt.has_focus
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    print(f"app construction + first paint: {elapsed * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU")
    # CPU time: the work the app does, which a machine shared with other jobs does not inflate
    assert cpu < 1.0


# --- attachments ---------------------------------------------------------------------------


async def test_attach_command_shows_a_chip_and_preview_and_sends_the_image(tmp_path):
    png = make_png(tmp_path / "cat.png", (40, 30), "orange")
    app = make_app(tmp_path, "An orange square.")
    async with app.run_test() as pilot:
        await send(pilot, f"/attach {png}")
        await pilot.pause()
        chip = app.query_one(AttachmentChip)
        assert str(chip.label) == "🖼 cat.png · image ✕" and app.chat.prompt.value == ""
        assert len(app.chat.tray.query(ImagePreview)) == 1
        await send(pilot, "What is this?")
        await finished(pilot)
        user = app.query_one(UserMessage)
        assert user.files == [("cat.png", "image", str(png))] and len(user.query(ImagePreview)) == 1
        assert not app.chat.tray.items and not app.query(AttachmentChip)
        assert "cat.png (image) → model" in [str(n.render()) for n in app.query(Note)]
        content = app.backend.dialogue.model.requests[0]["messages"][-1]["content"]
        assert content[0]["type"] == "image_url" and content[0]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_pasted_or_submitted_file_path_becomes_an_attachment(tmp_path):
    png = make_png(tmp_path / "photo one.png")
    notes = tmp_path / "notes.txt"
    notes.write_text("buy pears\n")
    app = make_app(tmp_path, "Noted.")
    async with app.run_test() as pilot:
        app.chat.prompt.post_message(events.Paste(str(png).replace(" ", "\\ ")))  # as a terminal pastes a dropped file
        await pilot.pause()
        await send(pilot, str(notes))  # a prompt that is only a file's path attaches it
        await pilot.pause()
        assert [(a.filename, a.kind) for a in app.chat.tray.items] == [("photo one.png", "image"), ("notes.txt", "text")]
        assert app.chat.prompt.value == ""
        await pilot.click(app.query(AttachmentChip).first())  # remove the image again
        await pilot.pause()
        await send(pilot, "Summarise")
        await finished(pilot)
        sent = app.backend.dialogue.model.requests[0]["messages"][-1]["content"]
        assert sent == "[notes.txt]\nbuy pears\n\n\nSummarise"


async def test_attaching_a_missing_or_unusable_file_is_an_error_and_keeps_the_input(tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 4)
    app = make_app(tmp_path)
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await send(pilot, f"/attach {tmp_path / 'missing.png'}")
        assert app.chat.prompt.value == f"/attach {tmp_path / 'missing.png'}"
        await send(pilot, f"/attach {blob}")
        await pilot.pause()
        assert not app.chat.tray.items
        errors = [(title, msg) for severity, title, msg in seen if severity == "error"]
        assert errors[0][0] == "Cannot attach" and "does not exist" in errors[0][1] and "→ check the path" in errors[0][1]
        assert "blob.bin" in errors[1][1] and "→" in errors[1][1]


async def test_generated_images_are_shown_inline(tmp_path):
    app = make_app(tmp_path, call("shop_picture", {}), "Here is your picture.")
    async with app.run_test() as pilot:
        await send(pilot, "Draw something")
        await finished(pilot)
        produced = app.query_one(ProducedFile)
        assert produced.mime == "image/png" and produced.tool == "shop_picture"
        preview = produced.query_one(ImagePreview)
        assert preview.caption == "shop_picture made a blue square" and not preview.error


# --- tools and approval --------------------------------------------------------------------


async def test_tool_calls_appear_as_collapsible_panels(tmp_path):
    app = make_app(tmp_path, call("shop_price", {"item": "apple"}), "Apples cost 3.")
    async with app.run_test() as pilot:
        await send(pilot, "Price of apples?")
        await finished(pilot)
        panel = app.query_one(ToolCallPanel)
        assert panel.tool == "shop_price" and panel.arguments == {"item": "apple"} and panel.collapsed
        assert panel.decision == "auto" and '"price": 3' in panel.result and panel.duration_s is not None
        assert panel.title.startswith("🔧 shop_price · ran automatically · ✓ ")
        assert app.chat.last_answer == "Apples cost 3."
        # the panel comes between the question and the answer
        order = [type(w).__name__ for w in app.chat.messages.children]
        assert order == ["Note", "UserMessage", "ToolCallPanel", "AssistantMessage"]  # the welcome note first


async def _order_with(tmp_path, *keys):
    """Two order calls in one turn; `keys` answer the approval modals in turn."""
    dialogue = make_dialogue(
        tmp_path,
        call("shop_order", {"item": "pear", "quantity": 2}, call_id="c1"),
        call("shop_order", {"item": "fig", "quantity": 1}, call_id="c2"),
        "Done.",
    )
    shop = dialogue.registry.plugins["shop"]
    app = make_app(tmp_path, backend=ChatBackend(dialogue))
    async with app.run_test() as pilot:
        await send(pilot, "Order pears and figs")
        asked = 0
        for key in keys:
            await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen), what="the approval modal")
            assert app.screen.tool == "shop_order"
            asked += 1
            await pilot.press(key)
        await finished(pilot)
        panels = {p.call_id: p for p in app.query(ToolCallPanel)}
        return shop.orders, {cid: (p.decision, p.title) for cid, p in panels.items()}, asked


async def test_approve_lets_the_tool_run(tmp_path):
    orders, panels, _ = await _order_with(tmp_path, "y", "y")
    assert orders == [("pear", 2), ("fig", 1)]
    assert panels["c1"][0] == "approved" and "approved · ✓" in panels["c1"][1]


async def test_deny_stops_the_tool(tmp_path):
    orders, panels, _ = await _order_with(tmp_path, "n", "y")
    assert orders == [("fig", 1)]
    assert panels["c1"][0] == "denied" and "denied · ✗" in panels["c1"][1]


async def test_always_approves_the_rest_of_the_session_without_asking(tmp_path):
    orders, panels, asked = await _order_with(tmp_path, "a")
    assert asked == 1 and orders == [("pear", 2), ("fig", 1)]
    assert panels["c1"][0] == "approved" and panels["c2"][0] == "approved-always"


async def test_escape_during_approval_cancels_and_history_stays_valid(tmp_path):
    dialogue = make_dialogue(tmp_path, call("shop_order", {"item": "pear", "quantity": 2}), "Fine.")
    app = make_app(tmp_path, backend=ChatBackend(dialogue))
    async with app.run_test() as pilot:
        await send(pilot, "Order pears")
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        app.chat.action_cancel_turn()  # e.g. from the command palette
        await finished(pilot)
        assert not isinstance(app.screen, ApprovalScreen)
        assert dialogue.registry.plugins["shop"].orders == []
        assert not answers(app) and str(app.query("Note.interrupted").last().render()) == "(cancelled)"
        assert app.query_one(ToolCallPanel).title == "🔧 shop_order · cancelled"
        roles = [m["role"] for m in app.backend.dialogue.history]
        assert roles == ["user", "assistant", "tool", "assistant"]  # every tool call has its result
        assert "not run" in app.backend.dialogue.history[2]["content"]


# --- progress ------------------------------------------------------------------------------


async def test_tool_progress_shows_a_bar_that_goes_when_done(tmp_path):
    import asyncio

    Shop.gate = asyncio.Event()
    try:
        app = make_app(tmp_path, call("shop_report", {}), "Report ready.")
        async with app.run_test() as pilot:
            await send(pilot, "Write the report")
            panel = app.query_one(ProgressPanel)
            await wait_until(pilot, lambda: "shop" in panel.rows, what="a progress row")
            assert panel.display and panel.rows["shop"].message == "reading documents"
            assert panel.rows["shop"].fraction == 0.25
            Shop.gate.set()
            await finished(pilot)
            assert not panel.rows and not panel.display
    finally:
        Shop.gate = None


class SlowStartBackend(ChatBackend):
    """Like the real backend: prepare() reports engine progress and blocks until released."""

    needs_prepare = True

    def __init__(self, dialogue, fail: Exception | None = None) -> None:
        super().__init__(dialogue)
        self.go = threading.Event()
        self.fail = fail
        self.prepared = 0

    def prepare(self, progress):
        self.prepared += 1
        progress(Progress("engine", "starting vLLM (tiny) 0 s: loading weights"))
        self.go.wait(10)
        if self.fail and self.prepared == 1:
            raise self.fail
        progress(Progress("engine", "engine ready in 3 s", 1.0))


async def test_engine_start_shows_progress_and_the_ui_stays_usable(tmp_path):
    backend = SlowStartBackend(make_dialogue(tmp_path, "Ready now."))
    app = make_app(tmp_path, backend=backend)
    async with app.run_test() as pilot:
        panel = app.query_one(ProgressPanel)

        def shown() -> str:
            row = panel.rows.get("engine")
            return " | ".join(str(label.render()) for label in row.query("Label")) if row and row.is_mounted else ""

        await wait_until(pilot, lambda: shown().endswith("| 0 s"), what="the engine's progress row")
        assert shown() == "engine: starting vLLM (tiny) 0 s: loading weights | --% | 0 s" and panel.display
        await send(pilot, "Hello?")  # accepted while the engine starts: the turn waits for it
        await wait_until(pilot, lambda: any("waiting for the model" in str(n.render()) for n in app.query(Note)))
        await pilot.press(*"typing works")
        assert app.chat.prompt.value == "typing works"
        backend.go.set()
        await finished(pilot)
        assert app.chat.last_answer == "Ready now." and not panel.rows
        assert not [n for n in app.query(Note) if "waiting" in str(n.render())]


async def test_engine_failure_is_a_notification_and_the_question_comes_back(tmp_path):
    failure = EngineStartFailed("the vLLM engine exited with code 1 while starting", hint="full log: /tmp/engine.log")
    backend = SlowStartBackend(make_dialogue(tmp_path, "Second try worked."), fail=failure)
    backend.go.set()
    app = make_app(tmp_path, backend=backend)
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.backend_error is not None)
        assert ("error", "The model is not available", "the vLLM engine exited with code 1 while starting\n→ full log: /tmp/engine.log") in seen
        await send(pilot, "Hello?")  # the start is tried again for the question
        await finished(pilot)
        assert backend.prepared == 2 and app.chat.last_answer == "Second try worked."


# --- errors --------------------------------------------------------------------------------


async def test_turn_failed_notifies_keeps_partial_answer_and_restores_input(tmp_path):
    model = BrokenStreamModel("Paris is the cap", "Paris is the capital of France.")
    app = make_app(tmp_path, model=model)
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await send(pilot, "Capital of France?")
        await finished(pilot)
        severity, title, message = seen[-1]
        assert severity == "error" and message.startswith("the answer stream broke after 16 characters")
        assert "→ the server may have crashed" in message and "Traceback" not in message
        answer = answers(app)[0]
        assert answer.markdown.source == "Paris is the cap" and answer.status == "(failed)"
        assert app.chat.prompt.value == "Capital of France?"  # the question is back in the input
        await pilot.press("enter")
        await finished(pilot)
        assert app.chat.last_answer == "Paris is the capital of France."
        assert len(app.query(UserMessage)) == 2


async def test_a_refused_attachment_comes_back_with_the_question(tmp_path):
    wav = tmp_path / "memo.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    app = make_app(tmp_path)
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        # the tray accepts it before the registry is known (a real backend may still be starting)
        app.backend._dialogue, dialogue = None, app.backend.dialogue
        await send(pilot, f"/attach {wav}")
        app.backend._dialogue = dialogue
        await send(pilot, "Transcribe this")
        await finished(pilot)
        assert seen[-1][0] == "error" and "memo.wav" in seen[-1][2] and "speech" in seen[-1][2]
        assert app.chat.prompt.value == "Transcribe this"
        assert [a.filename for a in app.chat.tray.items] == ["memo.wav"]


async def test_an_unexpected_error_is_a_notification_not_a_crash(tmp_path):
    class Broken(ChatBackend):
        async def turn(self, text, attachments=()):
            raise ZeroDivisionError("division by zero")
            yield  # pragma: no cover

    app = make_app(tmp_path, backend=Broken(make_dialogue(tmp_path)))
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await send(pilot, "boom")
        await finished(pilot)
        assert seen[-1][:2] == ("error", "Error") and seen[-1][2] == "ZeroDivisionError: division by zero"
        assert app.is_running and app.chat.prompt.value == "boom"


# --- voice ---------------------------------------------------------------------------------


class Mic(Plugin):
    """Stands in for the speech plugin's microphone: a push-to-talk Recorder capability."""

    name = "mic"
    problem: str | None = None  # what `check` reports
    recorded: Callable[[threading.Event], Any] | None = None

    def capabilities(self):
        return (Recorder(name="microphone", label="Voice input", check=lambda: Mic.problem, record=lambda stop: Mic.recorded(stop)),)


async def test_voice_key_without_a_microphone_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(Mic, "problem", "no input device found (is a microphone connected?)")
    app = make_app(tmp_path, plugins=(Shop, Mic))
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: seen)
        assert seen[-1] == ("warning", "Voice input", "no input device found (is a microphone connected?)")


async def test_voice_command_without_a_recording_plugin_says_how_to_get_it(tmp_path):
    app = make_app(tmp_path)  # no plugin declares a Recorder: ctrl+r is not bound, /voice explains
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await send(pilot, "/voice")
        await wait_until(pilot, lambda: seen)
        assert seen[-1][0] == "warning" and "assistant[speech]" in seen[-1][2] and "[plugins] disabled" in seen[-1][2]


async def test_push_to_talk_records_until_pressed_again_and_attaches_the_audio(tmp_path, monkeypatch):
    wav = tmp_path / "voice.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    calls = []

    def record(stop):
        calls.append("recording")
        assert stop.wait(5), "the second key press should stop the recording"
        from assistant.dialogue.attachments import sniff

        return sniff(wav)

    monkeypatch.setattr(Mic, "recorded", staticmethod(record))
    app = make_app(tmp_path, "You asked about pears.", backend=ChatBackend(make_dialogue(tmp_path, "You asked about pears.", plugins=(Shop, Ears, Mic))))
    async with app.run_test() as pilot:
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: calls and app.chat._recording is not None)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.chat.tray.items)
        assert [(a.filename, a.kind) for a in app.chat.tray.items] == [("voice.wav", "audio")]
        await pilot.press("enter")  # a recording alone is a question
        await finished(pilot)
        assert "voice.wav (audio) → ears: Transcript of voice.wav" in [str(n.render()) for n in app.query(Note)]
        assert app.backend.dialogue.model.requests[0]["messages"][-1]["content"].startswith("[Transcript of voice.wav]\nhow much are pears")


class Ears(Plugin):
    """Stands in for the speech plugin: consumes audio attachments."""

    name = "ears"
    consumes = frozenset({"audio"})

    async def handle_attachment(self, attachment, ctx):
        return AttachmentOutput("how much are pears", title=f"Transcript of {attachment.filename}")


async def test_a_chat_past_the_context_shows_a_note_and_keeps_answering(tmp_path):
    """The model's context is small: after a few long turns the oldest are left out of the request,
    and the chat says so in the conversation (not only in the transient progress panel)."""
    from assistant.testing import ScriptedModel

    class SmallContext(ScriptedModel):
        async def context_length(self):
            return 1500

    model = SmallContext(*[f"Answer {i}. " + "word " * 120 for i in range(4)])
    app = make_app(tmp_path, model=model)
    async with app.run_test() as pilot:
        for i in range(4):
            await send(pilot, f"Question {i}: " + "long " * 150)
            await finished(pilot)
        notes = [str(n.render()) for n in app.query(Note)]
        assert any("oldest of" in n and "1,500-token context" in n for n in notes), notes
        assert len(answers(app)) == 4 and answers(app)[-1].markdown.source.startswith("Answer 3.")
    assert len(model.requests[-1]["messages"]) < 7  # the last request left turns out
