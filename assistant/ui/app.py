"""The Textual app: one chat screen, a command palette provider, the approval modal wired as
the dialogue's approver, and the engine's start-up in a thread worker.

    app = create_app(backend)      # backend: ui.backend.ChatBackend (tests) or build_backend(settings)
    app.run()
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from .screens import ApprovalScreen, ChatScreen


class ChatCommands(Provider):
    """The chat's commands in Textual's command palette (ctrl+p)."""

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        chat: ChatScreen = self.app.chat  # type: ignore[attr-defined]
        commands = [
            ("New session", "Start a new conversation (ctrl+n)", chat.action_new_session),
            ("Sessions", "Show or hide the saved sessions (f2)", chat.action_toggle_sessions),
            ("Rename session", "Give the current session a title", chat.action_rename_session),
            ("Delete session", "Delete the current session", chat.action_delete_session),
            ("Export session to Markdown", "Write the current session to a .md file", chat.action_export_session),
            ("Attach a file", "Type /attach PATH, or paste a file's path (ctrl+o)", chat.action_attach),
            ("Cancel the answer", "Stop the answer being written (esc)", chat.action_cancel_turn),
            ("Copy the last answer", "Copy the focused message or the last answer to the clipboard (ctrl+y)", chat.action_copy),
            ("Clear the view", "Clear the screen; the conversation is kept (ctrl+l)", chat.action_clear),
        ]
        recorder = chat.backend.recorder()  # push-to-talk, when a plugin declares a Recorder
        if recorder is not None:
            commands.append((recorder.label, f"{recorder.description or 'Record from the microphone'} (ctrl+r)", chat.action_voice))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, command in self._commands():
            yield DiscoveryHit(name, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, command in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), command, help=help_text)


class AssistantApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "assistant"
    COMMANDS = App.COMMANDS | {ChatCommands}
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]

    def __init__(self, backend: Any, *, export_dir: str | Path | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.backend = backend
        backend.approver = self.ask_approval
        self.chat = ChatScreen(backend, export_dir=Path(export_dir) if export_dir else Path.cwd(), clock=clock)
        self.backend_ready = asyncio.Event()
        self.backend_error: BaseException | None = None
        self._closing = False

    def get_default_screen(self) -> ChatScreen:
        return self.chat

    # --- start-up: plugins and the engine, in a thread ---------------------------------

    def start_backend(self) -> None:
        """Run the backend's start-up (called once the chat screen is up, and again to retry)."""
        self.backend_error = None
        self.backend_ready.clear()
        if not self.backend.needs_prepare:
            self.backend_ready.set()
            return
        self._prepare_backend(asyncio.get_running_loop())

    @work(thread=True, exclusive=True, group="backend", exit_on_error=False)
    def _prepare_backend(self, loop: asyncio.AbstractEventLoop) -> None:
        def post(callback: Callable, *args: Any) -> None:
            # Never blocks (call_from_thread would): the app may be closing, and its loop with it.
            try:
                loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:
                pass

        try:
            self.backend.prepare(lambda event: post(self._on_progress, event))
        except BaseException as exc:  # noqa: BLE001 - reported on the loop, never a traceback
            post(self._backend_done, exc)
        else:
            post(self._backend_done, None)

    @property
    def closing(self) -> bool:
        return self._closing

    def _on_progress(self, event: Any) -> None:
        if not self._closing:
            self.call_later(self.chat.progress.update, event.task, event.message, event.fraction)

    def _backend_done(self, error: BaseException | None) -> None:
        from .backend import PrepareCancelled

        if self._closing:  # the start-up was given up because the app is closing
            return
        self.call_later(self.chat.progress.finish_all)
        if error is not None and not isinstance(error, PrepareCancelled):
            self.backend_error = error
            self.show_error(error, "The model is not available")
        elif error is None:
            self.chat.update_title()
            self.chat.refresh_bindings()  # the plugins are loaded: offer what they declare (ctrl+r)
        self.backend_ready.set()

    async def wait_for_backend(self, view: Any = None) -> None:
        """Wait until the backend can answer; a failed start-up is retried once per question."""
        if self.backend_ready.is_set() and self.backend_error is not None:
            self.start_backend()
        if not self.backend_ready.is_set():
            note = await view.add_note("waiting for the model to be ready…") if view is not None else None
            try:
                await self.backend_ready.wait()
            finally:
                if note is not None:
                    await note.remove()
        if self.backend_error is not None:
            raise self.backend_error

    # --- the dialogue's approver -----------------------------------------------------

    async def ask_approval(self, request: Any) -> str:
        """Shows the approval modal and waits for the answer (runs inside the turn's worker)."""
        screen = ApprovalScreen(request.tool, request.arguments, plugin=request.plugin, risk=request.risk)
        try:
            answer = await self.push_screen(screen, wait_for_dismiss=True)
        except asyncio.CancelledError:  # Esc on the chat, or the app closing: take the dialog down
            if self.screen is screen:
                self.pop_screen()
            raise
        return answer or "deny"

    # --- errors ----------------------------------------------------------------------

    def show_error(self, exc: BaseException, title: str = "") -> None:
        """A notification with the error's message and hint; never a traceback."""
        from ..errors import AssistantError

        message = str(exc.args[0]) if exc.args else type(exc).__name__
        hint = getattr(exc, "hint", "")
        if not isinstance(exc, AssistantError):
            message = f"{type(exc).__name__}: {message}"
            self.log.error("unexpected error", exc)
        text = message + (f"\n→ {hint}" if hint else "")
        self.notify(text, title=title or "Error", severity="error", timeout=12, markup=False)

    # --- closing ---------------------------------------------------------------------

    async def on_unmount(self) -> None:
        self._closing = True
        self.backend.cancel_prepare()
        self.chat.stop_recording()
        await self.backend.aclose()


def create_app(backend: Any, *, export_dir: str | Path | None = None, clock: Callable[[], float] = time.monotonic) -> AssistantApp:
    """The app over `backend` (a `ui.backend.ChatBackend`). `export_dir`: where session exports
    go (default: the current folder). `clock`: for the progress panel's elapsed times."""
    return AssistantApp(backend, export_dir=export_dir, clock=clock)
