"""Shared helpers for the customer-service plugin tests: calling a tool with a real session store
behind its ToolContext, as the dialogue does when sessions are on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from assistant.plugin_api import ToolContext
from assistant.sessions.store import SessionStore
from assistant.testing import find_tool, make_plugin


class Conversation:
    """A session in a real SessionStore, and the ToolContext a plugin would get in it."""

    def __init__(self, root: Path, store: SessionStore | None = None) -> None:
        self.store = store or SessionStore(root / "sessions.db", root / "attachments")
        self.session_id = self.store.create_session(model="test")
        self.events: list[Any] = []

    def ctx(self, plugin) -> ToolContext:
        return ToolContext(plugin.name, self.session_id, plugin.data_dir, self.events.append, None, "", self.store)

    def say(self, text: str, files: list[tuple[bytes, str, str]] = (), inline_images: list[bytes] = ()) -> int:
        """A user message with files kept beside it (bytes, mime, filename) and images inlined."""
        import base64

        shas = [self.store.add_attachment(data, mime=mime, filename=name) for data, mime, name in files]
        content: Any = text
        if inline_images:
            content = [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(i).decode()}}
                       for i in inline_images] + [{"type": "text", "text": text}]
        return self.store.add_message(self.session_id, "user", content, attachments=shas)

    def marks(self) -> dict:
        return self.store.get_session(self.session_id).marks


def call(plugin, tool: str, ctx: ToolContext | None = None, **arguments: Any) -> Any:
    """Run a tool like the dialogue (arguments through the schema, setup once, ctx injected) and
    return its result parsed from JSON when it is JSON."""
    spec = find_tool(plugin, tool)
    kwargs = spec.parse_arguments(json.dumps(arguments))
    if ctx is None:
        ctx = ToolContext(plugin.name, None, plugin.data_dir, lambda e: None)

    async def go():
        await plugin.ensure_setup()
        return await spec.call(kwargs, ctx)

    text, _ = asyncio.run(go())
    try:
        return json.loads(text)
    except ValueError:
        return text


def plugin(cls, tmp_path: Path, settings: dict | None = None, name: str | None = None):
    """A plugin with its data folder under tmp_path/plugins/<name>, as the registry lays it out."""
    return make_plugin(cls, settings, data_dir=tmp_path / "plugins" / (name or cls.name))
