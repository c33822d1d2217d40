"""What the terminal UI talks to: a Dialogue, the session store, and (for the real program) an engine.

This is the only module of `assistant.ui` that imports the model and dialogue layers, and it does
so inside functions: the UI paints before langchain, httpx or the engine manager are imported.

`ChatBackend` wraps an already built `Dialogue` (the tests pass one built on `ScriptedModel`);
`EngineBackend` is the real program's: `prepare()` (blocking, run in a thread worker) loads the
plugins and prompts and starts or reuses the engine, reporting `Progress` events; the Dialogue is
then built on the event loop. `build_backend(settings)` assembles it the way `assistant ask` does.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

from ..events import Progress
from ..settings import Settings

ProgressCallback = Callable[[Progress], None]
Approver = Callable[[Any], Awaitable[str]]


# --- what the UI shows for a saved session ------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    """One line of the sessions sidebar."""

    id: str
    title: str
    detail: str


@dataclass(frozen=True)
class AttachedFile:
    filename: str
    kind: str  # image, audio, document, text, unknown
    path: str | None  # where it can be read (for previews); None when only in memory


@dataclass(frozen=True)
class Said:
    """A message of a resumed session: the user's (with its files) or the assistant's."""

    role: str
    text: str
    files: tuple[AttachedFile, ...] = ()


@dataclass(frozen=True)
class ToolRecord:
    """A tool call of a resumed session, from the store's audit log."""

    call_id: str
    name: str
    arguments: dict
    result: str
    error: str | None
    decision: str
    duration_s: float | None


class PrepareCancelled(Exception):
    """The app is closing while the engine was still starting."""


# --- the backend --------------------------------------------------------------------------


class ChatBackend:
    """The UI's access to a Dialogue and its session store.

    `approver` is set by the app: an async callable that asks the person (a modal) and returns
    "approve", "deny" or "always". Every Dialogue this backend makes or is given uses it.
    """

    needs_prepare = False  # True when prepare() does real (slow) work

    def __init__(self, dialogue: Any = None, *, store: Any = None, model_label: str = "") -> None:
        self.store = store
        self.approver: Approver | None = None
        self.model_label = model_label
        self._dialogue = None
        if dialogue is not None:
            self._use(dialogue)

    # --- lifecycle ---------------------------------------------------------------------

    def prepare(self, progress: ProgressCallback) -> None:
        """Blocking start-up work (plugins, engine); the app runs it in a thread."""

    async def ensure_ready(self) -> None:
        """Finish start-up on the event loop (after prepare)."""

    async def aclose(self) -> None:
        """Release what lives on the event loop (HTTP clients)."""

    def close(self) -> None:
        """Release everything else (stops an engine started for this program, closes the store)."""
        if self.store is not None:
            with contextlib.suppress(Exception):
                self.store.close()

    def cancel_prepare(self) -> None:
        """Ask a running prepare() to give up (the app is closing)."""

    # --- the dialogue ------------------------------------------------------------------

    @property
    def dialogue(self) -> Any:
        if self._dialogue is None:
            raise RuntimeError("the backend is not ready yet")
        return self._dialogue

    @property
    def session_id(self) -> str | None:
        return self._dialogue.session_id if self._dialogue is not None else self._pending_session()

    def _pending_session(self) -> str | None:
        return None

    def _use(self, dialogue: Any) -> None:
        if self.store is None:
            self.store = dialogue.store
        elif dialogue.store is None:
            dialogue.store = self.store
        dialogue.policy.approver = self._approve
        self._dialogue = dialogue
        if not self.model_label:
            self.model_label = dialogue.model_name

    async def _approve(self, request: Any) -> str:
        if self.approver is None:
            return "deny"
        return await self.approver(request)

    read_mode: str | None = None  # /read: how attached documents reach the model (None: the setting)

    def _apply_read_mode(self) -> None:
        plugin = self.dialogue.registry.plugins.get("documents")
        if plugin is not None and self.read_mode and plugin.settings.mode != self.read_mode:
            plugin.settings = plugin.settings.model_copy(update={"mode": self.read_mode})

    def current_read_mode(self) -> str:
        if self.read_mode:
            return self.read_mode
        plugin = self._dialogue.registry.plugins.get("documents") if self._dialogue is not None else None
        return plugin.settings.mode if plugin is not None else "auto"

    async def turn(self, text: str, attachments: Sequence[Any] = ()) -> AsyncIterator[Any]:
        await self.ensure_ready()
        self._apply_read_mode()
        async for event in self.dialogue.turn(text, list(attachments)):
            yield event

    def note_interrupted(self, partial: str, reason: str = "cancelled") -> None:
        """After a cancelled or failed turn: keep the history a valid conversation. Tool calls
        that never got a result get one saying why, and the partial answer is kept as the
        assistant's message (committed to the store like every other message)."""
        if self._dialogue is None:
            return
        history = self._dialogue.history
        pending: list[dict] = []
        for i in range(len(history) - 1, -1, -1):
            msg = history[i]
            if msg.get("role") == "assistant" and msg.get("tool_calls"):
                answered = {m.get("tool_call_id") for m in history[i + 1 :] if m.get("role") == "tool"}
                pending = [c for c in msg["tool_calls"] if c.get("id") not in answered]
                break
            if msg.get("role") != "tool":
                break
        for call in pending:
            name = (call.get("function") or {}).get("name", "")
            content = f"The tool was not run: the turn was {reason}."
            self._append({"role": "tool", "tool_call_id": call.get("id"), "name": name, "content": content})
        if history and history[-1].get("role") in ("user", "tool"):
            self._append({"role": "assistant", "content": partial})

    def _append(self, message: dict) -> None:
        d = self._dialogue
        d.history.append(message)
        if self.store is not None and d.session_id:
            self.store.add_message(
                d.session_id, message["role"], message.get("content"),
                tool_call_id=message.get("tool_call_id"), name=message.get("name"),
            )  # fmt: skip

    # --- attachments -------------------------------------------------------------------

    def attach(self, path: str | Path) -> Any:
        """An Attachment for a file, typed by its content. Refused now (AttachmentError) when
        nothing could use it, rather than after the question was sent."""
        from ..dialogue.attachments import route_attachments, sniff

        att = sniff(path)
        if att.kind == "unknown" or self._dialogue is not None:
            consumers = self._dialogue.registry.consumers() if self._dialogue is not None else {}
            accepts = self._dialogue.model_accepts_images if self._dialogue is not None else None
            route_attachments([att], model_accepts_images=accepts, consumers=consumers)
        return att

    def attach_bytes(self, data: bytes, filename: str) -> Any:
        from ..dialogue.attachments import sniff

        return sniff(data, filename=filename)

    # --- voice -------------------------------------------------------------------------

    @property
    def registry(self) -> Any:
        """The loaded plugins, or None while they are still loading."""
        return self._dialogue.registry if self._dialogue is not None else None

    def recorder(self) -> Any:
        """The first push-to-talk `Recorder` a loaded plugin declares (`Plugin.capabilities()`),
        or None: no plugin records (the speech plugin is disabled or absent) or none loaded yet."""
        from ..plugin_api.contract import Recorder

        registry = self.registry
        for plugin in registry.plugins.values() if registry is not None else ():
            try:
                found = [c for c in plugin.capabilities() if isinstance(c, Recorder)]
            except Exception:  # noqa: BLE001,S112 - a plugin's bug costs its capability, not the UI
                continue
            if found:
                return found[0]
        return None

    def why_no_recording(self) -> str | None:
        """None when push-to-talk can record now, else why not and what to do."""
        if self.registry is None:
            return "voice input is not ready: the plugins are still loading; try again in a moment"
        recorder = self.recorder()
        if recorder is None:
            return (
                "no loaded plugin records from the microphone: voice input needs the speech plugin "
                "(pip install 'assistant[speech]', and leave it out of [plugins] disabled)"
            )
        return recorder.unavailable()

    def record(self, stop: threading.Event) -> Any:
        """Record until `stop` is set (push-to-talk; the recorder caps the length); blocking, run
        it in a thread. Returns an Attachment of the recording."""
        recorder = self.recorder()
        if recorder is None:
            from ..errors import UsageError

            raise UsageError(self.why_no_recording() or "no recorder")
        from ..dialogue.attachments import Attachment

        result = recorder.record(stop)
        if isinstance(result, (bytes, bytearray)):
            return self.attach_bytes(bytes(result), recorder.filename)
        if not isinstance(result, Attachment):
            raise TypeError(f"the {recorder.label!r} recorder ({recorder.name}) returned {type(result).__name__}, "
                            "not an Attachment or bytes: report it to the plugin's author")
        return result

    # --- sessions ----------------------------------------------------------------------

    def sessions(self, limit: int = 100) -> list[SessionRow]:
        if self.store is None:
            return []
        rows = []
        for s in self.store.list_sessions(limit=limit):
            title = s.title or s.preview or "(untitled)"
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at))
            rows.append(SessionRow(s.id, title, f"{when} · {s.message_count} messages"))
        return rows

    def session_title(self, session_id: str | None) -> str:
        if not session_id or self.store is None:
            return ""
        with contextlib.suppress(Exception):
            s = self.store.get_session(session_id)
            return s.title or s.preview
        return ""

    def new_session(self) -> None:
        """The next turn starts a new saved session."""
        self._switch(None)

    def resume(self, session_id: str) -> list[Said | ToolRecord]:
        """Continue a saved session: its history goes into the Dialogue; returns what to show."""
        transcript = self.transcript(session_id)
        self._switch(session_id)
        return transcript

    def _switch(self, session_id: str | None) -> None:
        from ..dialogue.turn import Dialogue

        old = self.dialogue
        new = Dialogue(
            old.model, settings=old.settings, registry=old.registry, prompts=old.prompts, approver=None,
            store=self.store, session_id=session_id, model_name=old.model_name,
            model_accepts_images=old.model_accepts_images, native_tools=old.native_tools,
            tool_selection=old.tool_selection,
        )  # fmt: skip
        new.system_override = old.system_override
        self._use(new)

    def transcript(self, session_id: str) -> list[Said | ToolRecord]:
        import json

        from ..sessions.store import text_of

        store = self.store
        records = {r["call_id"]: r for r in store.tool_calls(session_id)}
        out: list[Said | ToolRecord] = []
        for msg in store.messages(session_id):
            role = msg["role"]
            if role == "user":
                files = []
                for sha in msg["attachments"] + msg["inline_attachments"]:
                    info = store.attachment_info(sha) or {}
                    mime = info.get("mime", "")
                    kind = mime.split("/")[0] if mime.startswith(("image/", "audio/")) else ("text" if mime.startswith("text/") else "document")
                    path = store.attachment_path(sha)
                    files.append(AttachedFile(info.get("filename") or sha[:12], kind, str(path) if path.exists() else None))
                out.append(Said("user", text_of(msg["content"]), tuple(files)))
            elif role == "assistant":
                text = text_of(msg["content"])
                if text:
                    out.append(Said("assistant", text))
                for call in msg["tool_calls"] or []:
                    fn = call.get("function") or {}
                    rec = records.get(call.get("id"), {})
                    try:
                        args = json.loads(rec.get("arguments") or fn.get("arguments") or "{}")
                    except ValueError:
                        args = {"_raw": rec.get("arguments") or fn.get("arguments")}
                    out.append(
                        ToolRecord(
                            call.get("id", ""), fn.get("name", "?"), args if isinstance(args, dict) else {"_value": args},
                            rec.get("result") or "", rec.get("error"), rec.get("decision") or "", rec.get("duration_s"),
                        )  # fmt: skip
                    )
        return out

    def rename(self, session_id: str, title: str) -> None:
        self.store.rename(session_id, title)

    def delete(self, session_id: str) -> None:
        self.store.delete(session_id)
        if self.session_id == session_id:
            self.new_session()

    def export_markdown(self, session_id: str, folder: str | Path) -> Path:
        """Write the session as Markdown into `folder`; returns the file written."""
        from ..atomic_folder import write_file_atomic
        from ..errors import UsageError
        from ..sessions import export_markdown

        text = export_markdown(self.store, session_id)
        folder = Path(folder).expanduser()
        target = folder / f"session-{session_id}.md"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            write_file_atomic(target, text.encode("utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}", hint="check that the folder is writable") from None
        return target


class EngineBackend(ChatBackend):
    """The real program's backend: plugins, prompts and the engine are set up in `prepare()`."""

    needs_prepare = True

    def __init__(self, settings: Settings, *, store: Any = None, session_id: str | None = None) -> None:
        super().__init__(None, store=store, model_label=settings.model.name)
        self.settings = settings
        self._session_id = session_id
        self._stack = contextlib.ExitStack()
        self._cancel = threading.Event()
        self._parts: dict[str, Any] | None = None
        self._client = None

    def _pending_session(self) -> str | None:
        return self._session_id

    def cancel_prepare(self) -> None:
        self._cancel.set()

    def prepare(self, progress: ProgressCallback) -> None:
        from ..model.endpoint import open_endpoint, tool_modes
        from ..runtime import load_registry, prompt_library

        def report(event: Progress) -> None:
            if self._cancel.is_set():  # raised inside the engine's wait loop: it stops the child
                raise PrepareCancelled("the app is closing")
            progress(event)

        settings = self.settings
        registry = load_registry(settings)
        prompts = prompt_library(settings, registry)
        if self._cancel.is_set():
            raise PrepareCancelled("the app is closing")
        endpoint = self._stack.enter_context(open_endpoint(settings, report))
        native, selection = tool_modes(settings, endpoint.spec)
        self.model_label = endpoint.client.model or (endpoint.spec.served_name if endpoint.spec else settings.model.name)
        self._parts = {"registry": registry, "prompts": prompts, "endpoint": endpoint, "native": native, "selection": selection}

    async def ensure_ready(self) -> None:
        if self._dialogue is not None:
            return
        if self._parts is None:
            raise RuntimeError("prepare() has not finished")
        from ..dialogue.turn import Dialogue
        from ..model.client import ChatClient

        p = self._parts
        endpoint = p["endpoint"]
        self._client = ChatClient(endpoint.client)
        dialogue = Dialogue(
            self._client, settings=self.settings, registry=p["registry"], prompts=p["prompts"], approver=None,
            store=self.store, session_id=self._session_id, model_name=endpoint.client.model,
            model_accepts_images=endpoint.client.vision, native_tools=p["native"], tool_selection=p["selection"],
        )  # fmt: skip
        self._use(dialogue)

    def new_session(self) -> None:
        self._session_id = None
        if self._dialogue is not None:
            super().new_session()

    def resume(self, session_id: str) -> list[Said | ToolRecord]:
        transcript = self.transcript(session_id)
        self._session_id = session_id
        if self._dialogue is not None:
            self._switch(session_id)
        return transcript

    @property
    def registry(self) -> Any:
        if self._dialogue is None and self._parts is not None:  # prepared, the Dialogue not built yet
            return self._parts["registry"]
        return super().registry

    def attach(self, path: str | Path) -> Any:
        att = super().attach(path)
        if self._dialogue is None and self._parts is not None and att.kind != "unknown":
            from ..dialogue.attachments import route_attachments

            route_attachments([att], model_accepts_images=self._parts["endpoint"].client.vision, consumers=self._parts["registry"].consumers())
        return att

    async def aclose(self) -> None:
        if self._parts is not None:  # MCP servers the chat started
            with contextlib.suppress(Exception):
                await self._parts["registry"].aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
            self._client = None

    @property
    def started_engine(self) -> bool:
        """An engine was started for this program (and close() stops it)."""
        endpoint = (self._parts or {}).get("endpoint")
        return bool(endpoint and endpoint.engine and not endpoint.engine.background)

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            super().close()


def build_backend(settings: Settings, *, session: str | None = None) -> EngineBackend:
    """The real program's backend: the session store opens now (the sidebar lists it at once);
    everything slow waits for `prepare()`. `session`: an id, a unique prefix or 'last'."""
    from ..runtime import open_store

    store = open_store(settings)
    try:
        session_id = store.resolve(session) if session else None
    except BaseException:
        store.close()
        raise
    return EngineBackend(settings, store=store, session_id=session_id)


__all__ = [
    "AttachedFile",
    "ChatBackend",
    "EngineBackend",
    "PrepareCancelled",
    "Said",
    "SessionRow",
    "ToolRecord",
    "build_backend",
]
