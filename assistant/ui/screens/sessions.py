"""The chat screen's session commands: the sidebar, new, resume, rename, delete and export.

A mixin of `ChatScreen` (it uses the screen's backend, view, prompt and sidebar), kept apart so
each file stays about one thing.
"""

from __future__ import annotations

from ..backend import Said, ToolRecord
from ..widgets import SessionsSidebar
from .dialogs import ConfirmScreen, RenameScreen


class SessionActions:
    async def refresh_sessions(self) -> None:
        try:
            rows = self.backend.sessions()
        except Exception as exc:  # noqa: BLE001
            self.error(exc, "Sessions")
            return
        await self.sidebar.show([(r.id, r.title, r.detail) for r in rows], self.backend.session_id)

    async def action_toggle_sessions(self) -> None:
        sidebar = self.sidebar
        sidebar.display = not sidebar.display
        if sidebar.display:
            await self.refresh_sessions()
            sidebar.list_view.focus()
        else:
            self.prompt.focus()

    def _busy(self) -> bool:
        if self.turn_running:
            self.notify("An answer is still coming: press Esc to cancel it first.", severity="warning")
            return True
        return False

    async def action_new_session(self) -> None:
        if self._busy():
            return
        self.backend.new_session()
        await self.messages.clear()
        await self.welcome()
        self.last_answer = ""
        self.update_title()
        if self.sidebar.display:
            await self.refresh_sessions()
        self.prompt.focus()

    async def resume(self, session_id: str) -> None:
        if self._busy():
            return
        try:
            items = self.backend.resume(session_id)
        except Exception as exc:  # noqa: BLE001
            self.error(exc, "Cannot resume")
            return
        await self.messages.clear()
        self.last_answer = ""
        await self.show_transcript(items)
        self.update_title()
        if self.sidebar.display:
            await self.refresh_sessions()
        self.prompt.focus()

    async def show_transcript(self, items: list) -> None:
        view = self.messages
        for item in items:
            if isinstance(item, Said):
                if item.role == "user":
                    await view.add_user(item.text, [(f.filename, f.kind, f.path) for f in item.files])
                else:
                    await view.add_answer(item.text)
                    self.last_answer = item.text
            elif isinstance(item, ToolRecord):
                panel = await view.add_tool(item.call_id, item.name, item.arguments)
                if item.decision:
                    panel.decided(item.decision)
                panel.finished(item.result, item.error, item.duration_s)

    def _target(self, session_id: str | None) -> str | None:
        """The session an action is about: the one given, the highlighted one while the sidebar
        has focus, else the current one."""
        if session_id:
            return session_id
        if self.sidebar.display and self.sidebar.has_focus_within and self.sidebar.highlighted_id:
            return self.sidebar.highlighted_id
        sid = self.backend.session_id
        if not sid:
            self.notify("This session is saved when you send its first message.", severity="warning")
        return sid

    def action_rename_session(self, session_id: str | None = None) -> None:
        sid = self._target(session_id)
        if not sid:
            return

        async def done(title: str | None) -> None:
            if not title:
                return
            try:
                self.backend.rename(sid, title)
            except Exception as exc:  # noqa: BLE001
                self.error(exc, "Cannot rename")
                return
            self.notify(f"renamed to {title}", markup=False)
            self.update_title()
            if self.sidebar.display:
                await self.refresh_sessions()

        self.app.push_screen(RenameScreen(self.backend.session_title(sid)), done)

    def action_delete_session(self, session_id: str | None = None) -> None:
        sid = self._target(session_id)
        if not sid:
            return
        if sid == self.backend.session_id and self._busy():
            return
        title = self.backend.session_title(sid) or sid

        async def done(yes: bool | None) -> None:
            if not yes:
                return
            current = sid == self.backend.session_id
            try:
                self.backend.delete(sid)
            except Exception as exc:  # noqa: BLE001
                self.error(exc, "Cannot delete")
                return
            if current:
                await self.messages.clear()
                self.last_answer = ""
            self.notify(f"deleted {title}", markup=False)
            self.update_title()
            if self.sidebar.display:
                await self.refresh_sessions()

        self.app.push_screen(ConfirmScreen(f"Delete the session “{title}”?"), done)

    def action_export_session(self, session_id: str | None = None) -> None:
        sid = self._target(session_id)
        if not sid:
            return
        try:
            path = self.backend.export_markdown(sid, self.export_dir)
        except Exception as exc:  # noqa: BLE001
            self.error(exc, "Cannot export")
            return
        self.notify(f"exported to {path}", title="Export", markup=False)

    async def on_sessions_sidebar_action(self, event: SessionsSidebar.Action) -> None:
        event.stop()
        if event.action == "new":
            await self.action_new_session()
        elif event.session_id is None:
            return
        elif event.action == "resume":
            await self.resume(event.session_id)
        elif event.action == "rename":
            self.action_rename_session(event.session_id)
        elif event.action == "delete":
            self.action_delete_session(event.session_id)
        elif event.action == "export":
            self.action_export_session(event.session_id)
