"""Each widget and dialog mounted alone in a small host app."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import events, work
from textual.app import App
from textual.widgets import Collapsible, Label, Markdown, ProgressBar

from assistant.ui.screens import ApprovalScreen, ConfirmScreen, RenameScreen
from assistant.ui.widgets import (
    AttachmentChip,
    AttachmentTray,
    ImagePreview,
    MessageList,
    ProgressPanel,
    PromptInput,
    SessionsSidebar,
    ToolCallPanel,
    pasted_path,
)

from . import make_png, wait_until

CSS = Path(__file__).resolve().parents[2] / "assistant" / "ui" / "app.tcss"


class Host(App):
    CSS_PATH = str(CSS)

    def __init__(self, *widgets) -> None:
        super().__init__()
        self._widgets = widgets
        self.messages: list = []

    def compose(self):
        yield from self._widgets

    def on_sessions_sidebar_action(self, event: SessionsSidebar.Action) -> None:
        self.messages.append((event.action, event.session_id))

    def on_prompt_input_path_pasted(self, event: PromptInput.PathPasted) -> None:
        self.messages.append(("pasted", event.path))


@dataclass
class FakeAttachment:
    filename: str
    kind: str
    path: Path | None


# --- conversation --------------------------------------------------------------------------


async def test_answer_streams_into_markdown_and_can_be_marked():
    view = MessageList()
    async with Host(view).run_test() as pilot:
        await view.add_user("hi")
        answer = await view.add_answer()
        stream = Markdown.get_stream(answer.markdown)
        for piece in ("Hello ", "**world**", "!"):
            answer.text += piece
            await stream.write(piece)
        await stream.stop()
        await pilot.pause()
        assert answer.markdown.source == "Hello **world**!" and answer.text == "Hello **world**!"
        status = answer.query_one(".answer-status", Label)
        assert not status.display
        answer.mark("(cancelled)")
        await pilot.pause()
        assert status.display and str(status.render()) == "(cancelled)" and answer.has_class("interrupted")


async def test_tool_panel_shows_name_decision_arguments_result_and_duration():
    panel = ToolCallPanel("c1", "shop_order", {"item": "pear", "quantity": 2}, "side_effects")
    async with Host(panel).run_test() as pilot:
        assert panel.collapsed and panel.title == "🔧 shop_order · running…"
        panel.decided("approved")
        panel.finished("ordered 2 pear", None, 0.25)
        await pilot.pause()
        assert panel.title == "🔧 shop_order · approved · ✓ 0.25 s"
        panel.collapsed = False
        await pilot.pause()
        shown = [str(s.render()) for s in panel.query(".tool-arguments, .tool-result")]
        assert '"item": "pear"' in shown[0] and shown[1] == "ordered 2 pear"


async def test_tool_panel_marks_denied_and_failed_calls():
    denied = ToolCallPanel("c1", "shop_order", {})
    failed = ToolCallPanel("c2", "shop_broken", {})
    async with Host(denied, failed).run_test() as pilot:
        denied.decided("denied")
        denied.finished("The tool shop_order was not run: denied.", "The tool shop_order was not run: denied.", 0.0)
        failed.decided("auto")
        failed.finished("error: RuntimeError: down", "error: RuntimeError: down", 0.5)
        await pilot.pause()
        assert denied.title == "🔧 shop_order · denied · ✗ 0.00 s" and denied.has_class("denied")
        assert failed.title == "🔧 shop_broken · ran automatically · ✗ 0.50 s" and failed.has_class("failed")
        assert isinstance(denied, Collapsible)


# --- attachments and images ----------------------------------------------------------------


async def test_attachment_chips_show_name_and_kind_and_are_removable(tmp_path):
    png = make_png(tmp_path / "cat.png")
    tray = AttachmentTray()
    async with Host(tray).run_test() as pilot:
        await pilot.pause()
        assert not tray.display
        await tray.add(FakeAttachment("cat.png", "image", png))
        await tray.add(FakeAttachment("notes.txt", "text", tmp_path / "notes.txt"))
        await pilot.pause()
        chips = list(tray.query(AttachmentChip))
        assert [str(c.label) for c in chips] == ["🖼 cat.png · image ✕", "📝 notes.txt · text ✕"]
        assert tray.display and len(tray.query(ImagePreview)) == 1  # only images get a preview
        await pilot.click(chips[0])
        await pilot.pause()
        assert [a.filename for a in tray.items] == ["notes.txt"] and not tray.query(ImagePreview)
        tray.query_one(AttachmentChip).focus()
        await pilot.press("delete")
        await pilot.pause()
        assert tray.items == [] and not tray.display


async def test_image_preview_renders_a_png_and_explains_a_broken_one(tmp_path):
    from textual_image.widget import Image

    good = ImagePreview(make_png(tmp_path / "ok.png", (40, 30)), caption="ok.png")
    bad_file = tmp_path / "bad.png"
    bad_file.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    bad = ImagePreview(bad_file)
    async with Host(good, bad).run_test() as pilot:
        await pilot.pause()
        image = good.query_one(Image)
        assert image.size.width > 0 and image.size.height > 0  # the fallback renderer drew it
        assert "no preview" in str(bad.query_one(Label).render()) and bad.error


# --- progress ------------------------------------------------------------------------------


async def test_progress_panel_adds_updates_and_removes_rows():
    now = [100.0]
    panel = ProgressPanel(clock=lambda: now[0])
    async with Host(panel).run_test() as pilot:
        await pilot.pause()
        assert not panel.display
        await panel.update("engine", "starting vLLM")
        await panel.update("imagegen", "step 1/4", 0.25)
        await pilot.pause()
        assert panel.display and set(panel.rows) == {"engine", "imagegen"}
        engine_bar = panel.rows["engine"].query_one(ProgressBar)
        image_bar = panel.rows["imagegen"].query_one(ProgressBar)
        assert engine_bar.total is None and image_bar.percentage == 0.25
        now[0] = 172.0
        await panel.update("engine", "loading weights")
        await pilot.pause()
        row = panel.rows["engine"]
        assert str(row.query_one(".progress-message", Label).render()) == "engine: loading weights"
        assert str(row.query_one(".progress-elapsed", Label).render()) == "1:12"
        await panel.update("imagegen", "done", 1.0)
        await pilot.pause()
        assert set(panel.rows) == {"engine"} and len(panel.query(ProgressBar)) == 1
        await panel.finish_all()
        await pilot.pause()
        assert not panel.rows and not panel.display


# --- sessions sidebar ----------------------------------------------------------------------


async def test_sessions_sidebar_lists_marks_current_and_posts_actions():
    sidebar = SessionsSidebar()
    app = Host(sidebar)
    async with app.run_test() as pilot:
        await sidebar.show([("s2", "Second", "today"), ("s1", "First", "yesterday")], current="s1")
        await pilot.pause()
        assert [i.session_id for i in sidebar.items] == ["s2", "s1"]
        assert sidebar.highlighted_id == "s1" and sidebar.items[1].has_class("current")
        sidebar.list_view.focus()
        await pilot.press("up")
        await pilot.press("r", "d", "e", "n", "enter")
        await pilot.pause()
        assert app.messages == [("rename", "s2"), ("delete", "s2"), ("export", "s2"), ("new", "s2"), ("resume", "s2")]


# --- the prompt ----------------------------------------------------------------------------


def test_pasted_path_understands_what_terminals_paste(tmp_path):
    spaced = tmp_path / "my photo.png"
    spaced.write_bytes(b"x")
    assert pasted_path(str(spaced)) == spaced
    assert pasted_path(f"'{spaced}'") == spaced
    assert pasted_path(f"  {spaced}\n") == spaced
    assert pasted_path(str(spaced).replace(" ", "\\ ")) == spaced
    assert pasted_path("file://" + str(spaced).replace(" ", "%20")) == spaced
    assert pasted_path(str(tmp_path)) is None  # a folder
    assert pasted_path(str(tmp_path / "missing.png")) is None
    assert pasted_path(f"look at {spaced}") is None
    assert pasted_path(f"{spaced}\n{spaced}") is None


async def test_prompt_turns_a_pasted_path_into_a_message_and_inserts_other_text(tmp_path):
    png = make_png(tmp_path / "cat.png")
    prompt = PromptInput()
    app = Host(prompt)
    async with app.run_test() as pilot:
        prompt.focus()
        prompt.post_message(events.Paste(str(png)))
        await pilot.pause()
        assert prompt.value == "" and app.messages == [("pasted", png)]
        prompt.post_message(events.Paste("just text"))
        await pilot.pause()
        assert prompt.value == "just text"


async def test_prompt_recalls_what_was_sent():
    prompt = PromptInput()
    async with Host(prompt).run_test() as pilot:
        prompt.focus()
        prompt.remember("first")
        prompt.remember("second")
        prompt.value = "draft"
        await pilot.press("up")
        assert prompt.value == "second"
        await pilot.press("up", "up")
        assert prompt.value == "first"
        await pilot.press("down", "down")
        assert prompt.value == "draft"


# --- dialogs -------------------------------------------------------------------------------


class DialogHost(App):
    CSS_PATH = str(CSS)

    def __init__(self, make_screen) -> None:
        super().__init__()
        self.make_screen = make_screen
        self.results: list = []

    def on_mount(self) -> None:
        self.ask()

    @work
    async def ask(self) -> None:
        self.results.append(await self.push_screen(self.make_screen(), wait_for_dismiss=True))
        self.ask()


async def test_approval_dialog_keys_and_buttons():
    app = DialogHost(lambda: ApprovalScreen("shop_order", {"item": "pear"}, plugin="shop", risk="side_effects"))
    async with app.run_test() as pilot:
        for key in ("y", "n", "a", "escape"):
            await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
            await pilot.press(key)
            await pilot.pause()
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("enter")  # the focused button is Deny: Enter on an unread dialog never approves
        await wait_until(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.click("#always")
        await wait_until(pilot, lambda: len(app.results) == 6)
        assert app.results == ["approve", "deny", "always", "deny", "deny", "always"]
        assert "side effects" in str(app.screen.query_one(".dialog-detail", Label).render())


async def test_rename_and_confirm_dialogs():
    app = DialogHost(lambda: RenameScreen("Old title"))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen))
        await pilot.press("ctrl+u", *"Trip", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen) and app.results)
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(app.results) == 2)
        assert app.results == ["Trip", None]
    app = DialogHost(lambda: ConfirmScreen("Delete it?"))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.results)
        await pilot.press("enter")  # focused: Cancel
        await wait_until(pilot, lambda: len(app.results) == 2)
        assert app.results == [True, False]
