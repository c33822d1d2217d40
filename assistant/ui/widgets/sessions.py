"""The sessions sidebar: saved conversations, newest first. Enter resumes the highlighted one;
n, r, d and e (shown in the footer) start a new one, rename, delete or export it. The screen does the work: this
widget only posts `SessionsSidebar.Action` messages."""

from __future__ import annotations

from typing import Iterable

from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, ListItem, ListView


class SessionItem(ListItem):
    def __init__(self, session_id: str, title: str, detail: str, *, current: bool = False) -> None:
        super().__init__(
            Label(("● " if current else "") + title, classes="session-title", markup=False),
            Label(detail, classes="session-detail", markup=False),
            classes="session current" if current else "session",
        )
        self.session_id = session_id
        self.session_title = title


class SessionsSidebar(Vertical):
    BINDINGS = [
        Binding("n", "request('new')", "New"),
        Binding("r", "request('rename')", "Rename"),
        Binding("d", "request('delete')", "Delete"),
        Binding("e", "request('export')", "Export"),
    ]

    class Action(Message):
        """`action` is new, resume, rename, delete or export; `session_id` the highlighted one."""

        def __init__(self, action: str, session_id: str | None) -> None:
            super().__init__()
            self.action, self.session_id = action, session_id

    def compose(self):
        yield Label("Sessions", classes="sidebar-title")
        yield ListView(id="session-list")

    @property
    def list_view(self) -> ListView:
        return self.query_one(ListView)

    async def show(self, rows: Iterable[tuple[str, str, str]], current: str | None = None) -> None:
        """Replace the list: rows of (id, title, detail); the current session is marked."""
        view = self.list_view
        keep = self.highlighted_id
        await view.clear()
        items = [SessionItem(sid, title, detail, current=sid == current) for sid, title, detail in rows]
        await view.extend(items)
        ids = [i.session_id for i in items]
        target = keep if keep in ids else current
        if target in ids:
            view.index = ids.index(target)
        elif items:
            view.index = 0

    @property
    def items(self) -> list[SessionItem]:
        return list(self.list_view.query(SessionItem))

    @property
    def highlighted_id(self) -> str | None:
        item = self.list_view.highlighted_child
        return item.session_id if isinstance(item, SessionItem) else None

    def action_request(self, action: str) -> None:
        self.post_message(self.Action(action, self.highlighted_id))

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, SessionItem):
            self.post_message(self.Action("resume", event.item.session_id))
