"""The chat screen: the conversation, progress, pending attachments and the prompt, with the
sessions sidebar on F2. A turn runs in one exclusive worker that streams the answer into a
Markdown widget; Esc cancels that worker, and the partial answer stays, marked "(cancelled)"."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Callable

from textual import work
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Input
from textual.worker import Worker

from ...events import (
    ApprovalDecided,
    AttachmentProcessed,
    AttachmentProduced,
    Progress,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFailed,
    TurnFinished,
    TurnStarted,
)
from ..widgets import (
    AssistantMessage,
    AttachmentTray,
    MessageList,
    ProgressPanel,
    PromptInput,
    SessionsSidebar,
    ToolCallPanel,
    UserMessage,
    pasted_path,
)
from .sessions import SessionActions

ENGINE_TASKS = ("engine", "model")  # progress rows that belong to start-up, not to a turn
HELP = (
    "Enter sends · Esc cancels the answer · /attach PATH (or paste a file's path) adds a file · "
    "F2 saved sessions · ctrl+p every command · /help"
)
SLASH_HELP = "/attach PATH · /read auto|inline|read-all|retrieve · /new · /clear · /copy · /export · /rename · /delete · /sessions"
_READ_MODES = {
    "auto": "whole text when it fits, else every part read, else the closest passages",
    "inline": "the whole text goes into the prompt",
    "read-all": "every part is read for your question and the findings combined, with citations",
    "retrieve": "only the passages closest to your question are given to the model",
}


class _AnswerStream:
    """The answer being written in one turn: a new AssistantMessage after each tool panel."""

    def __init__(self, view: MessageList) -> None:
        self.view = view
        self.answer: AssistantMessage | None = None
        self.stream = None
        self.shown: list[AssistantMessage] = []

    async def write(self, text: str) -> None:
        if self.answer is None:
            self.answer = await self.view.add_answer()
            self.shown.append(self.answer)
            markdown = self.answer.markdown
            self.stream = markdown.get_stream(markdown)  # Markdown.get_stream, a classmethod
        self.answer.text += text
        await self.stream.write(text)

    async def close(self) -> None:
        """End the current answer (a tool panel or a file comes next, or the turn ended)."""
        stream, self.stream = self.stream, None
        self.answer = None
        if stream is not None:
            await stream.stop()

    @property
    def partial(self) -> str:
        return self.shown[-1].text if self.shown else ""

    async def mark(self, status: str, partial: str = "") -> None:
        """Mark the last answer of this turn (or a new one holding `partial`) as cut short; a
        note says so when no answer had started."""
        await self.close()
        if not self.shown and not partial:
            await self.view.add_note(status, classes="interrupted")
            return
        if not self.shown:
            self.shown.append(await self.view.add_answer(partial))
        self.shown[-1].mark(status)


class ChatScreen(SessionActions, Screen):
    AUTO_FOCUS = "#prompt"
    BINDINGS = [
        Binding("escape", "cancel_turn", "Cancel"),
        Binding("f2", "toggle_sessions", "Sessions"),
        Binding("ctrl+n", "new_session", "New"),
        Binding("ctrl+o", "attach", "Attach"),
        Binding("ctrl+y", "copy", "Copy"),
        Binding("ctrl+r", "voice", "Voice"),
        Binding("ctrl+l", "clear", "Clear", show=False),
    ]

    def __init__(self, backend: Any, *, export_dir: Path, clock: Callable[[], float]) -> None:
        super().__init__(id="chat")
        self.backend = backend
        self.export_dir = Path(export_dir)
        self.clock = clock
        self.last_answer = ""
        self._turn: Worker | None = None
        self._recording: threading.Event | None = None

    def compose(self):
        yield Header(icon="✦")
        with Horizontal(id="body"):
            yield SessionsSidebar(id="sessions")
            with Vertical(id="main"):
                yield MessageList(id="messages")
                yield ProgressPanel(id="progress", clock=self.clock)
                yield AttachmentTray(id="tray")
                yield PromptInput(id="prompt", placeholder="Ask anything · /attach PATH adds a file · Enter sends")
        yield Footer()

    # --- parts -----------------------------------------------------------------------

    @property
    def messages(self) -> MessageList:
        return self.query_one(MessageList)

    @property
    def progress(self) -> ProgressPanel:
        return self.query_one(ProgressPanel)

    @property
    def tray(self) -> AttachmentTray:
        return self.query_one(AttachmentTray)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def sidebar(self) -> SessionsSidebar:
        return self.query_one(SessionsSidebar)

    @property
    def turn_running(self) -> bool:
        return self._turn is not None and not self._turn.is_finished

    def error(self, exc: BaseException, title: str = "") -> None:
        self.app.show_error(exc, title)

    async def on_mount(self) -> None:
        self.sidebar.display = False
        self.app.start_backend()  # plugins and the engine start in a thread while the screen paints
        self.update_title()
        sid = self.backend.session_id
        if sid:
            await self.show_transcript(self.backend.transcript(sid))
        else:
            await self.welcome()
        self._warm_up()

    @work(thread=True, group="warm-up", exit_on_error=False)
    def _warm_up(self) -> None:
        """Import what the first answer needs (markdown-it, pygments) while nobody waits for it."""
        from textual.widgets import Markdown  # noqa: F401

    async def welcome(self) -> None:
        await self.messages.add_note(HELP, classes="welcome")

    def update_title(self) -> None:
        sid = self.backend.session_id
        title = self.backend.session_title(sid) if sid else ""
        parts = [self.backend.model_label, title or ("new session" if not sid else sid)]
        self.app.sub_title = " · ".join(p for p in parts if p)

    # --- the prompt ------------------------------------------------------------------

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is not self.prompt:
            return
        event.stop()
        text = event.value
        stripped = text.strip()
        path = pasted_path(stripped)
        if path is not None:  # the whole input is a file: attach it instead of sending it
            if await self.attach_path(path):
                self.prompt.value = ""
            return
        if stripped.startswith("/"):
            if await self.run_slash_command(stripped):
                self.prompt.remember(text)
                self.prompt.value = ""
            return
        if not stripped and not self.tray.items:
            return
        if self.turn_running:
            self.notify("An answer is still coming: wait for it, or press Esc to cancel it.", severity="warning")
            return
        attachments = self.tray.take()
        self.prompt.remember(text)
        self.prompt.value = ""
        self._turn = self.run_turn(text, attachments)

    async def on_prompt_input_path_pasted(self, event: PromptInput.PathPasted) -> None:
        await self.attach_path(event.path)

    def on_attachment_tray_changed(self, event: AttachmentTray.Changed) -> None:
        if event.removed:  # the chip that had focus is gone: back to typing
            self.prompt.focus()

    async def run_slash_command(self, line: str) -> bool:
        """True when the command ran (the input is then cleared)."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        if name == "/attach":
            if not arg:
                self.notify("usage: /attach PATH", severity="warning")
                return False
            path = pasted_path(arg) or Path(arg).expanduser()
            return await self.attach_path(path)
        if name == "/read":
            modes = ("auto", "inline", "read-all", "retrieve")
            mode = {"all": "read-all"}.get(arg, arg)
            if not arg:
                self.notify(f"documents are read in {self.backend.current_read_mode()!r} mode; "
                            f"/read {'|'.join(modes)} changes it", markup=False)
                return True
            if mode not in modes:
                self.notify(f"usage: /read {'|'.join(modes)}", severity="warning", markup=False)
                return False
            self.backend.read_mode = mode
            self.notify(f"attached documents: {_READ_MODES[mode]}", title=f"read mode: {mode}", markup=False)
            return True
        simple = {
            "/new": self.action_new_session,
            "/clear": self.action_clear,
            "/copy": self.action_copy,
            "/export": self.action_export_session,
            "/rename": self.action_rename_session,
            "/delete": self.action_delete_session,
            "/sessions": self.action_toggle_sessions,
            "/voice": self.action_voice,
        }
        if name in simple:
            result = simple[name]()
            if asyncio.iscoroutine(result):
                await result
            return True
        if name in ("/help", "/?"):
            commands = SLASH_HELP + (" · /voice" if self.offers_voice else "")
            self.notify(f"{HELP}\n\nCommands: {commands}", title="Help", timeout=15, markup=False)
            return True
        self.notify(f"unknown command {name}; /help lists them", severity="error", markup=False)
        return False

    async def attach_path(self, path: Path | str) -> bool:
        try:
            attachment = self.backend.attach(path)
        except Exception as exc:  # noqa: BLE001 - shown, never raised into the UI
            self.error(exc, "Cannot attach")
            return False
        await self.tray.add(attachment)
        self.notify(f"attached {attachment.filename} ({attachment.kind})", markup=False)
        return True

    # --- a turn ----------------------------------------------------------------------

    @work(exclusive=True, group="turn", exit_on_error=False)
    async def run_turn(self, text: str, attachments: list) -> None:
        view = self.messages
        files = [(a.filename, a.kind, str(a.path) if a.path is not None else None) for a in attachments]
        await view.add_user(text, files)
        answer = _AnswerStream(view)
        panels: dict[str, ToolCallPanel] = {}
        try:
            await self.app.wait_for_backend(view)
            async for event in self.backend.turn(text, attachments):
                if isinstance(event, TurnFailed):
                    await self._failed(event.error, event.partial_text, answer, text, attachments)
                    return
                await self._show(event, answer, panels)
        except asyncio.CancelledError:
            for panel in panels.values():
                panel.interrupted()
            await answer.mark("(cancelled)")
            self.backend.note_interrupted(answer.partial, "cancelled")
            raise
        except Exception as exc:  # noqa: BLE001 - a bug or a start-up failure: a notification, never a traceback
            await self._failed(exc, "", answer, text, attachments)
        finally:
            await answer.close()
            await self.progress.finish_all(keep=ENGINE_TASKS)
            self.update_title()
            if self.sidebar.display:
                await self.refresh_sessions()

    async def _show(self, event: Any, answer: _AnswerStream, panels: dict[str, ToolCallPanel]) -> None:
        view = self.messages
        if isinstance(event, TextDelta):
            await answer.write(event.text)
        elif isinstance(event, ToolCallStarted):
            await answer.close()
            panels[event.call_id] = await view.add_tool(event.call_id, event.name, event.arguments, event.risk)
        elif isinstance(event, ApprovalDecided):
            if event.call_id in panels:
                panels[event.call_id].decided(event.decision)
        elif isinstance(event, ToolCallFinished):
            if event.call_id in panels:
                panels[event.call_id].finished(event.result, event.error, event.duration_s)
        elif isinstance(event, Progress) and event.task == "context":  # older turns left out: worth keeping in view
            await view.add_note(event.message)
        elif isinstance(event, Progress):
            await self.progress.update(event.task, event.message, event.fraction)
        elif isinstance(event, AttachmentProcessed):
            note = f"{event.filename} ({event.kind}) → {event.handled_by}"
            await view.add_note(note + (f": {event.title}" if event.title and event.title != event.filename else ""))
        elif isinstance(event, AttachmentProduced):
            await answer.close()
            await view.add_file(event.path, event.mime, event.title or event.filename, event.tool)
        elif isinstance(event, TurnStarted):
            self.update_title()
        elif isinstance(event, TurnFinished):
            await answer.close()
            if event.text and not answer.shown:
                answer.shown.append(await view.add_answer(event.text))
            if getattr(event, "finish_reason", None) == "length" and answer.shown:
                answer.shown[-1].mark("(cut short: the answer reached model.max_tokens)")
            self.last_answer = event.text or self.last_answer

    async def _failed(self, exc: BaseException, partial: str, answer: _AnswerStream, text: str, attachments: list) -> None:
        """Keep what arrived, say what went wrong, give the question back."""
        await answer.mark("(failed)", partial)
        self.backend.note_interrupted(partial or answer.partial, "interrupted by an error")
        self.error(exc)
        if not self.prompt.value:
            self.prompt.value = text
            self.prompt.cursor_position = len(text)
        if attachments:
            await self.tray.restore(attachments)

    def action_cancel_turn(self) -> None:
        if self.turn_running:
            self._turn.cancel()
        elif self.sidebar.display and self.sidebar.has_focus_within:
            self.sidebar.display = False
            self.prompt.focus()

    # --- other commands --------------------------------------------------------------

    def _focused_message(self) -> UserMessage | AssistantMessage | None:
        node: Widget | None = self.focused
        while node is not None and not isinstance(node, (UserMessage, AssistantMessage)):
            node = node.parent if isinstance(node.parent, Widget) else None
        return node

    def action_copy(self) -> None:
        """Copy the focused message, else the last answer."""
        focused = self._focused_message()
        text = focused.text if focused is not None else self.last_answer
        if not text:
            self.notify("Nothing to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        what = "the message" if focused is not None else "the last answer"
        self.notify(f"copied {what} ({len(text)} characters)")

    async def action_clear(self) -> None:
        """Clear the view; the conversation itself (and what the model remembers) stays."""
        await self.messages.clear()

    def action_attach(self) -> None:
        self.prompt.value = "/attach "
        self.prompt.cursor_position = len(self.prompt.value)
        self.prompt.focus()

    @property
    def offers_voice(self) -> bool:
        """A loaded plugin declares a push-to-talk Recorder (the speech plugin does)."""
        return self._recording is not None or self.backend.recorder() is not None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Without a recorder the key is not bound at all (and not in the footer); /voice says why.
        if action == "voice":
            return self.offers_voice
        return True

    def action_voice(self) -> None:
        """Push-to-talk: the first press starts recording, the second stops it."""
        if self._recording is not None:
            self._recording.set()
            return
        self._record_voice()

    @work(thread=True, exclusive=True, group="voice", exit_on_error=False)
    def _record_voice(self) -> None:
        app = self.app
        reason = self.backend.why_no_recording()  # may probe the device: in this thread
        if reason:
            app.call_from_thread(app.notify, reason, title="Voice input", severity="warning", markup=False)
            return
        stop = self._recording = threading.Event()
        app.call_from_thread(app.notify, "Recording… press ctrl+r again to stop.", title="Voice input")
        try:
            attachment = self.backend.record(stop)
        except Exception as exc:  # noqa: BLE001
            app.call_from_thread(self.error, exc, "Voice input")
            return
        finally:
            self._recording = None
        if app.closing:
            return
        app.call_from_thread(self.tray.add, attachment)
        app.call_from_thread(app.notify, f"recorded {attachment.filename}: send it with a question, or alone", title="Voice input", markup=False)

    def stop_recording(self) -> None:
        if self._recording is not None:
            self._recording.set()
