"""Sessions (sidebar, new, resume, rename, delete, export), the command palette and the
clipboard, against a real SessionStore in tmp_path."""

from __future__ import annotations

from assistant.ui.backend import ChatBackend
from assistant.ui.screens import ConfirmScreen, RenameScreen
from assistant.ui.widgets import AssistantMessage, SessionItem, ToolCallPanel, UserMessage

from . import call, capture_notifications, make_app, make_dialogue, run_command, wait_until


async def send(pilot, text: str) -> None:
    pilot.app.chat.prompt.value = text
    await pilot.press("enter")
    await wait_until(pilot, lambda: not pilot.app.chat.turn_running, what="the turn to end")


def titles(app) -> list[str]:
    return [item.session_title for item in app.chat.sidebar.items]


async def two_sessions(pilot) -> tuple[str, str]:
    """Talk in one session, start a new one (ctrl+n), talk there: returns (first, second) ids."""
    app = pilot.app
    await send(pilot, "Price of apples?")
    first = app.backend.session_id
    await pilot.press("ctrl+n")
    await wait_until(pilot, lambda: not app.query(UserMessage))
    assert app.backend.session_id is None and app.chat.last_answer == ""
    await send(pilot, "Hello again")
    second = app.backend.session_id
    assert first and second and first != second
    return first, second


def app_with_history(tmp_path):
    return make_app(tmp_path, call("shop_price", {"item": "apple"}), "Apples cost 3.", "Hi!", "Pears cost 3 too.")


async def test_sidebar_toggles_and_lists_sessions_newest_first(tmp_path):
    app = app_with_history(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await two_sessions(pilot)
        assert not app.chat.sidebar.display
        await pilot.press("f2")
        await wait_until(pilot, lambda: len(app.chat.sidebar.items) == 2)
        assert app.chat.sidebar.display and app.chat.sidebar.list_view.has_focus
        assert titles(app) == ["Hello again", "Price of apples?"]
        current = [i for i in app.chat.sidebar.items if i.has_class("current")]
        assert [i.session_id for i in current] == [app.backend.session_id]
        await pilot.press("f2")
        assert not app.chat.sidebar.display and app.chat.prompt.has_focus


async def test_resume_loads_the_history_into_the_view_and_the_dialogue(tmp_path):
    app = app_with_history(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        first, _ = await two_sessions(pilot)
        await pilot.press("f2")
        await wait_until(pilot, lambda: len(app.chat.sidebar.items) == 2)
        await pilot.press("down", "enter")  # the older session
        await wait_until(pilot, lambda: app.backend.session_id == first)
        await wait_until(pilot, lambda: app.query(ToolCallPanel))
        assert [u.text for u in app.query(UserMessage)] == ["Price of apples?"]
        panel = app.query_one(ToolCallPanel)
        assert panel.tool == "shop_price" and panel.decision == "auto" and '"price": 3' in panel.result
        assert [a.text for a in app.query(AssistantMessage)] == ["Apples cost 3."]
        assert app.chat.last_answer == "Apples cost 3." and "Price of apples?" in app.sub_title
        await send(pilot, "And pears?")
        sent = app.backend.dialogue.model.requests[-1]["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]
        assert sent[0]["content"] == "Price of apples?" and sent[-1]["content"] == "And pears?"
        assert len(app.backend.store.messages(first)) == 6


async def test_starting_on_a_saved_session_shows_it(tmp_path):
    dialogue = make_dialogue(tmp_path, "Paris.")
    async for _ in dialogue.turn("Capital of France?"):
        pass
    sid = dialogue.session_id
    resumed = make_dialogue(tmp_path, "Berlin.")
    resumed.session_id, resumed.history = sid, dialogue.store.history(sid)  # as `assistant chat --session ID`
    app = make_app(tmp_path, backend=ChatBackend(resumed))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.query(AssistantMessage))
        assert [u.text for u in app.query(UserMessage)] == ["Capital of France?"]
        assert app.chat.last_answer == "Paris."


async def test_rename_from_the_sidebar(tmp_path):
    app = app_with_history(tmp_path)
    seen = capture_notifications(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await two_sessions(pilot)
        await pilot.press("f2")
        await wait_until(pilot, lambda: len(app.chat.sidebar.items) == 2)
        await pilot.press("down", "r")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen))
        await pilot.press("ctrl+u", *"Fruit prices", "enter")
        await wait_until(pilot, lambda: "Fruit prices" in titles(app))
        assert titles(app) == ["Fruit prices", "Hello again"]  # renaming touches it: newest first
        assert seen[-1][2] == "renamed to Fruit prices"


async def test_rename_current_session_from_the_command_palette(tmp_path):
    app = app_with_history(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "Price of apples?")
        await run_command(pilot, "rename session")
        await wait_until(pilot, lambda: isinstance(app.screen, RenameScreen))
        await pilot.press("ctrl+u", *"Apples", "enter")
        await wait_until(pilot, lambda: app.backend.session_title(app.backend.session_id) == "Apples")
        assert "Apples" in app.sub_title


async def test_delete_asks_first_and_clears_the_view_of_the_current_session(tmp_path):
    app = app_with_history(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        first, second = await two_sessions(pilot)
        await pilot.press("f2")
        await wait_until(pilot, lambda: len(app.chat.sidebar.items) == 2)
        await pilot.press("d")  # the highlighted one is the current (second) session
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")  # changed my mind
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmScreen))
        assert len(app.backend.store.list_sessions()) == 2
        await pilot.press("d")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_until(pilot, lambda: len(app.chat.sidebar.items) == 1)
        assert [s.id for s in app.backend.store.list_sessions()] == [first]
        assert app.backend.session_id is None and not app.query(UserMessage)


async def test_export_writes_markdown_and_says_where(tmp_path):
    app = app_with_history(tmp_path)
    seen = capture_notifications(app)
    async with app.run_test(size=(100, 30)) as pilot:
        first, _ = await two_sessions(pilot)
        await pilot.press("f2")
        await wait_until(pilot, lambda: len(app.chat.sidebar.items) == 2)
        await pilot.press("down", "e")
        target = tmp_path / "exports" / f"session-{first}.md"
        await wait_until(pilot, target.exists)
        text = target.read_text()
        assert text.startswith("# Price of apples?") and "Apples cost 3." in text and "shop_price" in text
        assert seen[-1] == ("information", "Export", f"exported to {target}")


async def test_command_palette_lists_the_chat_commands_and_runs_one(tmp_path):
    app = app_with_history(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "Price of apples?")
        await run_command(pilot, "export session")
        target = tmp_path / "exports" / f"session-{app.backend.session_id}.md"
        await wait_until(pilot, target.exists, what="the export")
        # the palette knows every chat command
        from assistant.ui.app import ChatCommands

        names = [name for name, _, _ in ChatCommands(app.screen)._commands()]
        for expected in ("New session", "Attach a file", "Cancel the answer", "Copy the last answer", "Clear the view"):
            assert expected in names


async def test_copy_puts_the_last_answer_or_the_focused_message_on_the_clipboard(tmp_path):
    app = app_with_history(tmp_path)
    seen = capture_notifications(app)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+y")
        assert seen[-1] == ("warning", "", "Nothing to copy yet.")
        await send(pilot, "Price of apples?")
        await pilot.press("ctrl+y")
        assert app.clipboard == "Apples cost 3."
        app.query_one(UserMessage).focus()
        await pilot.press("ctrl+y")
        assert app.clipboard == "Price of apples?"
        app.chat.prompt.focus()
        await send(pilot, "/copy")
        assert app.clipboard == "Apples cost 3."


async def test_palette_copy_and_clear(tmp_path):
    app = app_with_history(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "Price of apples?")
        for command in ("copy the last", "clear the view"):
            await run_command(pilot, command)
        await wait_until(pilot, lambda: not app.query(UserMessage))
        assert app.clipboard == "Apples cost 3."
        assert len(app.backend.dialogue.history) == 4  # clearing the view forgets nothing


async def test_sidebar_rows_say_when_and_how_long(tmp_path):
    app = app_with_history(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "Price of apples?")
        await pilot.press("f2")
        await wait_until(pilot, lambda: app.chat.sidebar.items)
        item = app.chat.sidebar.items[0]
        assert isinstance(item, SessionItem) and item.session_title == "Price of apples?"
        assert str(item.query("Label").last().render()).endswith(" · 4 messages")
