"""Running turns for the server: one Dialogue per request, one shared model client.

Each request gets its own Dialogue (conversations never share state), on the one model
client opened at start-up. Approval is non-interactive: nobody can answer a prompt over HTTP,
so `approval.non_interactive` decides, and the decision is saved with the call. Every turn is
saved as a session, so a client can continue it by id.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator

from ..dialogue.attachments import route_attachments
from ..events import TextDelta, TurnFailed
from ..sessions.store import text_of
from ..settings import Settings, with_overrides
from .messages import ChatRequest

_END = object()


@dataclass(frozen=True)
class BackendInfo:
    """What the assistant is backed by, for /v1/models and the Dialogue."""

    model_name: str
    base_url: str
    embedded: bool  # a local engine started (or reused) by `assistant serve`
    max_model_len: int | None = None
    vision: bool | None = None
    native_tools: bool = True
    tool_selection: str = "model"


class SharedModel:
    """The model client as every turn sees it: the one client, with the context window asked
    once at start-up (a Dialogue would otherwise ask /v1/models at the start of every turn)."""

    def __init__(self, client: Any, max_model_len: int | None) -> None:
        self._client, self._max_model_len = client, max_model_len

    async def context_length(self) -> int | None:
        return self._max_model_len

    def __getattr__(self, name: str) -> Any:  # stream_chat, chat, tokenize, config: the client's own
        return getattr(self._client, name)


@dataclass(frozen=True)
class PreparedTurn:
    request: ChatRequest
    session_id: str
    settings: Settings


class Backend:
    def __init__(self, model: Any, settings: Settings, info: BackendInfo, *, registry: Any, prompts: Any, store: Any) -> None:
        self.model, self.settings, self.info = model, settings, info
        self.registry, self.prompts, self.store = registry, prompts, store
        self._slots = asyncio.Semaphore(settings.serve.max_concurrent)
        self._settings_for: dict[tuple, Settings] = {}  # request overrides -> settings (checking them costs ~1 ms)

    def tool_names(self) -> list[str]:
        return sorted(self.registry.tools)

    def prepare(self, req: ChatRequest) -> PreparedTurn:
        """Everything that can be wrong with a request fails here, before a response starts:
        settings out of range, an attachment nothing handles, an unknown session. A new
        session is created (seeded with the request's earlier messages) so its id can go in
        the response headers."""
        settings = self._with_overrides(req.model_settings)
        route_attachments(req.attachments, model_accepts_images=self.info.vision, consumers=self.registry.consumers())
        if req.session_id:
            self.store.get_session(req.session_id)  # exact ids only: a prefix could pick someone else's
            return PreparedTurn(req, req.session_id, settings)
        first_user = next((m for m in req.earlier if m["role"] == "user"), None)
        title = text_of(first_user["content"]) if first_user else req.text
        session_id = self.store.create_session(model=self.info.model_name, title=title.strip()[:60])
        for message in req.earlier:
            self.store.add_message(session_id, message["role"], message["content"])
        return PreparedTurn(req, session_id, settings)

    def _with_overrides(self, model_settings: dict) -> Settings:
        key = tuple(sorted(model_settings.items()))
        if key not in self._settings_for:
            if len(self._settings_for) >= 256:  # clients that vary the seed every time
                self._settings_for.clear()
            self._settings_for[key] = with_overrides(self.settings, {"model": model_settings}, source="the request")
        return self._settings_for[key]

    async def events(self, turn: PreparedTurn) -> AsyncIterator[Any]:
        """The turn's events, ending with TurnFinished or TurnFailed. The turn runs in its own
        task: when the consumer stops early (the client went away), the task is cancelled and
        unwinds on its own, closing its model request, instead of being torn down inside the
        server's cancelled response scope."""
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(self._run(turn, queue.put_nowait))
        held = None
        try:
            while (event := held or await queue.get()) is not _END:
                held = None
                if isinstance(event, TextDelta) and not queue.empty():
                    # The client is behind (a busy machine): send the text that piled up as one
                    # chunk rather than one chunk per token.
                    texts = [event.text]
                    while not queue.empty() and held is None:
                        more = queue.get_nowait()
                        if isinstance(more, TextDelta):
                            texts.append(more.text)
                        else:
                            held = more
                    event = TextDelta("".join(texts))
                yield event
        finally:
            task.cancel()

    async def _run(self, turn: PreparedTurn, put) -> None:
        from ..dialogue.turn import Dialogue

        try:
            async with self._slots:  # [serve] max_concurrent turns at once; more wait here
                info = self.info
                dialogue = Dialogue(
                    self.model, settings=turn.settings, registry=self.registry, prompts=self.prompts, approver=None,
                    store=self.store, session_id=turn.session_id, model_name=info.model_name,
                    model_accepts_images=info.vision, native_tools=info.native_tools, tool_selection=info.tool_selection,
                )  # fmt: skip
                if turn.request.system is not None:
                    dialogue.system_override = turn.request.system
                async for event in dialogue.turn(turn.request.text, turn.request.attachments):
                    put(event)
        except Exception as exc:  # noqa: BLE001 - a plugin's bug fails this turn, not the server
            put(TurnFailed(exc, session_id=turn.session_id))
        finally:
            put(_END)

