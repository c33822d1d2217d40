"""The dialogue core: one turn in, a stream of events out.

Every front end (`ask`, batch, the TUI) drives a `Dialogue` and renders its events. The tool
loop is written here rather than with LangChain's agent executor because it must (a) stream
text while holding back text-written tool calls, (b) recover tool calls from small models'
text, (c) feed validation errors back exactly once, (d) ask for approval through the front end,
and (e) commit every step to the session store as it happens. LangChain supplies the tool
schemas and argument validation (see plugin_api/tools.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date
from typing import Any, AsyncIterator, Protocol, Sequence

from ..errors import AssistantError, AttachmentError
from ..events import (
    ApprovalDecided,
    AttachmentProcessed,
    AttachmentProduced,
    Completion,
    Progress,
    TextDelta,
    ToolCall,
    ToolCallFinished,
    ToolCallStarted,
    TurnFailed,
    TurnFinished,
    TurnStarted,
    Usage,
)
from ..model.images import image_bytes_to_data_uri
from ..plugin_api.contract import ToolContext
from ..plugin_api.registry import PluginRegistry
from ..plugin_api.tools import ArgumentError
from ..settings import Settings
from .approval import ApprovalPolicy, ApprovalRequest, Approver
from .guidance import answers_in_json, call_grammar, offered, rejects_structured_outputs, said_tool, same_call
from .toolcalls import ToolTextFilter, recover_tool_calls

_UNKNOWN = object()  # the model's context length, before anyone asked


def _conveys(answer: str, message: str) -> bool:
    """The answer has the message, or at least every reference in it (the tokens with digits:
    "T-1001", "H-20261203-1512-ab4d") — then the model said it in its own words."""
    refs = [w.strip(".,;:!?()[]\"'") for w in message.split() if any(ch.isdigit() for ch in w)]
    return message in answer or bool(refs) and all(r in answer for r in refs)


class ChatModel(Protocol):
    """What the loop needs from a model: the real ChatClient and assistant.testing's fakes."""

    def stream_chat(self, messages: list[dict], **kwargs: Any) -> AsyncIterator[TextDelta | Completion]: ...


class Dialogue:
    def __init__(
        self,
        model: ChatModel,
        *,
        settings: Settings,
        registry: PluginRegistry | None = None,
        prompts: Any = None,  # dialogue.prompts.PromptLibrary
        approver: Approver | None = None,
        store: Any = None,  # sessions.SessionStore
        session_id: str | None = None,
        model_name: str = "",
        model_accepts_images: bool | None = None,
        native_tools: bool = True,
        tool_selection: str = "model",
    ) -> None:
        self.model = model
        self.settings = settings
        self.registry = registry or PluginRegistry()
        self.prompts = prompts
        self.policy = ApprovalPolicy(settings.approval, approver)
        self.store = store
        self.session_id = session_id
        self.model_name = model_name
        self.model_accepts_images = model_accepts_images
        # False when the server has no tool-call parser (e.g. the bundled SmolLM2): tools are then
        # described in the system prompt and the loop recovers the calls from the text.
        self.native_tools = native_tools
        # "guided": fewer tools per turn and server-constrained calls, for small models (guidance.py).
        self.tool_selection = tool_selection
        self._grammar_ok = True
        self._offered: list | None = None  # guided: the tools offered in this step
        self._reminder: str | None = None  # guided: a one-off nudge sent after the history, never kept
        self.system_override: str | None = None  # e.g. `ask --system`, replaces the template
        self.history: list[dict] = store.history(session_id) if (store and session_id) else []
        self._context_len: Any = _UNKNOWN
        self._count: Any = None

    # --- public ------------------------------------------------------------------------

    async def turn(self, text: str, attachments: Sequence[Any] = (), *, force_tool: str | None = None) -> AsyncIterator[Any]:
        """Run one turn. `force_tool` makes the first model call use that tool (native tools only)."""
        started = time.perf_counter()
        partial: list[str] = []
        try:
            if self.store is not None and self.session_id is None:
                self.session_id = self.store.create_session(model=self.model_name, title=text.strip()[:60])
            yield TurnStarted(self.session_id)
            box: list = []
            async for event in self._with_events(lambda emit: self._user_message(text, attachments, emit), box):
                yield event
            user_msg, kept = box[0]
            if self.registry.providers:  # MCP servers start on the first turn, not before
                async for event in self._with_events(self.registry.connect, []):
                    yield event
            shas = [self.store.add_attachment(a.read_bytes(), mime=a.mime, filename=a.filename) for a in kept] if self.store else []
            self._commit(user_msg, attachments=shas)
            if force_tool and force_tool not in self.registry.tools:
                from ..errors import UsageError

                raise UsageError(f"no tool named {force_tool!r}", hint="`assistant plugins list` shows the tools")
            async for event in self._loop(started, partial, force_tool):
                yield event
        except AssistantError as exc:
            yield TurnFailed(exc, "".join(partial), self.session_id)

    # --- the user's message and attachments --------------------------------------------

    async def _user_message(self, text: str, attachments: Sequence[Any], emit) -> tuple[dict, list]:
        """The user's message with attachments resolved; also the attachments to keep as files."""
        if not attachments:
            return {"role": "user", "content": text}, []
        from .attachments import route_attachments

        # Routing fails for every unhandled file at once, before any request is made.
        routes = route_attachments(
            list(attachments), model_accepts_images=self.model_accepts_images, consumers=self.registry.consumers()
        )
        images, extra_text, kept = [], [], []
        for route in routes:
            att = route.attachment
            if route.target == "model":  # stored with the message itself, as the image part
                images.append(image_bytes_to_data_uri(att.read_bytes(), att.filename, self.settings.model.max_image_side))
                emit(AttachmentProcessed(att.filename, att.kind, "model"))
                continue
            kept.append(att)
            if route.target == "inline-text":
                body = att.read_bytes().decode("utf-8", errors="replace")
                extra_text.append(f"[{att.filename}]\n{body}")
                emit(AttachmentProcessed(att.filename, att.kind, "inline-text"))
            else:
                name = route.target.split(":", 1)[1]
                plugin = self.registry.plugins[name]
                await plugin.ensure_setup()
                out = await plugin.handle_attachment(att, self._context(name, emit, text))
                title = out.title or att.filename
                extra_text.append(f"[{title}]\n{out.text}")
                emit(AttachmentProcessed(att.filename, att.kind, name, title, out.text))
        full = "\n\n".join(extra_text + [text])
        if not images:
            return {"role": "user", "content": full}, kept
        parts = [{"type": "image_url", "image_url": {"url": u}} for u in images] + [{"type": "text", "text": full}]
        return {"role": "user", "content": parts}, kept

    async def _with_events(self, work, box: list) -> AsyncIterator[Any]:
        """Run `work(emit)` and yield what it emits while it runs (progress from a plugin that
        may be working in a thread); its return value is appended to `box`."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def emit(event: Any) -> None:  # callable from any thread
            loop.call_soon_threadsafe(queue.put_nowait, event)

        task = asyncio.ensure_future(work(emit))
        try:
            while not task.done():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    yield getter.result()
                else:
                    getter.cancel()
            await asyncio.sleep(0)  # let call_soon_threadsafe callbacks land
            while not queue.empty():
                yield queue.get_nowait()
            box.append(task.result())
        finally:
            if not task.done():
                task.cancel()

    # --- the model / tool loop ---------------------------------------------------------

    def _system(self) -> list[dict]:
        if self.system_override is not None:
            return [{"role": "system", "content": self.system_override}]
        name = self.settings.dialogue.system_prompt
        if not name or self.prompts is None:
            return []
        import json

        # Guided with a server-side parser: the chat template lists the tools already.
        guided = self.tool_selection == "guided"
        specs = self._offered if (guided and self._offered is not None) else self.registry.tools.values()
        tools = [] if guided and self.native_tools else [
            {"name": s.name, "description": s.description, "parameters": json.dumps(s.schema)} for s in specs
        ]
        content = self.prompts.render(
            name, date=date.today().isoformat(), tools=tools, attachments_note="", text_tool_calls=not self.native_tools,
            guided=guided and bool(self.registry.tools),
        )
        return [{"role": "system", "content": content}]

    async def _messages(self, tools: list[dict] | None) -> tuple[list[dict], str]:
        """The system prompt and as much of the history as fits the model's context, and a note
        when older turns were left out (see fit.py)."""
        system = self._system()
        context = await self._context_tokens() if self.settings.dialogue.fit_history else None
        reminder = [{"role": "user", "content": self._reminder}] if self._reminder else []
        if not context:
            return system + self.history + reminder, ""
        from .fit import fit_history, message_tokens

        count = self._counter()
        fixed = sum(message_tokens(system, count)) + self._tool_tokens(tools)
        kept, dropped = fit_history(self.history, context - self.settings.model.max_tokens - fixed - 16, count)
        note = (f"left out the {dropped} oldest of {len(self.history)} messages to fit the model's {context:,}-token "
                "context (the session keeps them)") if dropped else ""
        return system + kept + reminder, note

    async def _context_tokens(self) -> int | None:
        """The served model's context window (vLLM reports it), asked once; None if unknown."""
        if self._context_len is _UNKNOWN:
            ask = getattr(self.model, "context_length", None)
            try:
                self._context_len = await ask() if ask else None
            except AssistantError:  # the chat request that follows reports the server's trouble
                self._context_len = None
        return self._context_len

    def _counter(self):
        if self._count is None:
            from ..documents.tokens import ratio_counter, tokenizer_counter

            folder = getattr(getattr(self.model, "config", None), "tokenizer_folder", "")
            # The model's own tokenizer when its files are local; else ~3 characters a token, on the safe side.
            self._count = (tokenizer_counter(folder) if folder else None) or ratio_counter(3.0)
        return self._count

    def _tool_tokens(self, tools: list[dict] | None) -> int:
        """What the tool schemas sent with a request cost in tokens (an estimate)."""
        return sum(self._counter()([json.dumps(tools)])) if tools else 0

    async def _stream(self, messages: list[dict], tools: list[dict] | None, choice: dict | None,
                      extra: dict | None = None) -> AsyncIterator[Any]:  # fmt: skip
        """One model call; a context overflow names the tool schemas when they are part of it."""
        from ..errors import ContextTooLong, RequestRejected

        m = self.settings.model
        kwargs = dict(tools=tools, tool_choice=choice, temperature=m.temperature, max_tokens=m.max_tokens,
                      seed=None if m.seed < 0 else m.seed)  # fmt: skip
        try:
            try:
                async for event in self.model.stream_chat(messages, **kwargs, **({"extra": extra} if extra else {})):
                    yield event
            except RequestRejected as exc:
                if not extra or not rejects_structured_outputs(exc):
                    raise
                # Not vLLM: no call grammar, for this request and the rest of the conversation.
                self._grammar_ok = False
                yield Progress("tools", "the server has no structured outputs: tool calls are not constrained", 1.0)
                async for event in self.model.stream_chat(messages, **kwargs):
                    yield event
        except ContextTooLong as exc:
            if tools:  # ~10 tools are ~2k tokens: on a 4k model that is half the room
                exc.hint = (f"{len(tools)} tool schemas go with every request (~{self._tool_tokens(tools):,} tokens): "
                            "disable plugins you do not use ([plugins] disabled = [...], see `assistant plugins list`); or "
                            + (exc.hint or ""))
            raise

    async def _loop(self, started: float, partial: list[str], force_tool: str | None) -> AsyncIterator[Any]:
        d, m = self.settings.dialogue, self.settings.model
        usage = Usage()
        retries_left = d.tool_argument_retries
        tools_on = bool(self.registry.tools)
        n_calls = 0
        told = ""
        ran: list[tuple[str, str]] = []  # (name, arguments) of the calls run in this turn
        say: list[str] = []  # ToolOutput.say of this turn's calls: shown to the user word for word
        named: str | None = None  # guided: a tool the model said it would use, called next
        nudged = False
        for step in range(1, d.max_steps + 1):
            offer_tools = tools_on and step < d.max_steps
            filt = ToolTextFilter()
            completion: Completion | None = None
            partial.clear()
            tools, choice = None, None
            extra = None
            guided = self.tool_selection == "guided"
            self._offered = offered(self.registry.tools.values(), self.history) if offer_tools and guided else None
            if offer_tools and self.native_tools:
                tools = [spec.openai() for spec in (self._offered if guided else self.registry.tools.values())] or None
                forced = force_tool if (force_tool and step == 1) else named
                if forced:
                    choice = {"type": "function", "function": {"name": forced}}
                    if guided:
                        tools = [self.registry.tools[forced].openai()]
                    # strict: the server constrains the arguments to the schema (vLLM honours it).
                    tools = [dict(t, function={**t["function"], "strict": True}) if t["function"]["name"] == forced else t for t in tools]
            if offer_tools and guided and not choice and self._offered and self._grammar_ok:
                # Without a parser the tools are in the system prompt, and the grammar still holds.
                extra = {"structured_outputs": {"structural_tag": call_grammar([s.openai() for s in self._offered])}}
            messages, note = await self._messages(tools)
            if note and note != told:
                told = note
                yield Progress("context", note, 1.0)
            async for event in self._stream(messages, tools, choice, extra):
                if isinstance(event, TextDelta):
                    partial.append(event.text)
                    shown = filt.feed(event.text) if offer_tools and d.recover_text_tool_calls else event.text
                    if shown:
                        yield TextDelta(shown)
                elif isinstance(event, Completion):
                    completion = event
                else:
                    yield event  # progress from the request itself
            assert completion is not None
            usage = Usage(usage.prompt_tokens + completion.usage.prompt_tokens, usage.completion_tokens + completion.usage.completion_tokens)
            calls, text = list(completion.tool_calls), completion.text
            if offer_tools and not calls and d.recover_text_tool_calls:
                _, calls = recover_tool_calls(text, set(self.registry.tools))
            if self.tool_selection == "guided" and any(same_call((c.name, c.arguments), done) for c in calls for done in ran):
                tools_on = False  # the same call again: its result is already there, so answer
                continue
            rest = filt.finish(consumed=bool(calls)) if offer_tools and d.recover_text_tool_calls else ""
            if rest:
                yield TextDelta(rest)
            if not calls and offer_tools and guided and self.native_tools and not nudged and not ran and self._offered:
                # "I'll use the utilities_calculate function...": the model described the call
                # instead of making it. Make it, with that tool named (and its schema enforced).
                named = said_tool(text, [s.name for s in self._offered])
                if named:
                    nudged = True
                    yield Progress("tools", f"the model named {named} without calling it: calling it", 1.0)
                    continue
            named = None
            if not calls and guided and ran and not self._reminder and answers_in_json(text, self.history):
                # JSON instead of an answer that uses the result: ask once more, in words.
                self._reminder = "Answer my question in plain words, using the tool result above. Do not write a tool call."
                tools_on = False
                continue
            self._reminder = None
            if not calls:
                told_user = [m for m in say if not _conveys(text, m)]
                if told_user:  # what a tool said the user must see, and the answer left out
                    extra_text = "\n\n".join(told_user)
                    text = f"{text.rstrip()}\n\n{extra_text}" if text.strip() else extra_text
                    yield TextDelta(("\n\n" if text != extra_text else "") + extra_text)
                self._commit({"role": "assistant", "content": text}, usage=completion.usage, timings=completion.timings)
                yield TurnFinished(
                    text, usage, step, time.perf_counter() - started, self.session_id, n_calls, completion.finish_reason
                )
                return
            message_id = self._commit(
                {
                    "role": "assistant",
                    # Always a string: text-only chat templates concatenate content.
                    "content": text,
                    "tool_calls": [
                        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
                    ],
                },
                usage=completion.usage,
                timings=completion.timings,
            )
            for call in calls:
                n_calls += 1
                ran.append((call.name, call.arguments))
                result, valid = None, True
                async for event in self._run_tool(call, message_id):
                    if isinstance(event, tuple):
                        result, valid, said = event
                        if said and said not in say:
                            say.append(said)
                    else:
                        yield event
                if not valid:
                    if retries_left > 0:
                        retries_left -= 1
                    else:
                        tools_on = False  # the retry was used: the next step must answer in words
        # Unreachable in practice: the last step offers no tools, so it always answers.
        yield TurnFinished("".join(partial), usage, d.max_steps, time.perf_counter() - started, self.session_id, n_calls)

    async def _run_tool(self, call: ToolCall, message_id: int | None) -> AsyncIterator[Any]:
        """Yields events, then one (result text, arguments were valid, text for the user) tuple."""
        spec = self.registry.tools.get(call.name)
        started = time.perf_counter()
        risk, decision, error = (spec.risk.value if spec else "unknown"), "none", None
        said = ""
        if spec is None:
            known = ", ".join(sorted(self.registry.tools)) or "none"
            result = error = f"There is no tool named {call.name!r}. Available tools: {known}."
            valid = False
            yield ToolCallStarted(call.id, call.name, {}, risk)
        else:
            try:
                kwargs = spec.parse_arguments(call.arguments)
                valid = True
            except ArgumentError as exc:
                kwargs, valid = None, False
                error = str(exc)
                result = self._retry_message(spec, error)
            yield ToolCallStarted(call.id, call.name, kwargs if kwargs is not None else {"_raw": call.arguments}, risk)
            if valid:
                allowed, decision = await self.policy.decide(
                    ApprovalRequest(call.id, call.name, spec.plugin.name, risk, kwargs)
                )
                yield ApprovalDecided(call.id, call.name, allowed, decision)
                if not allowed:
                    result = error = f"The tool {call.name} was not run: {decision.replace('-', ' ')}."
                else:
                    box: list = []
                    async for event in self._with_events(lambda emit: self._invoke(spec, kwargs, emit), box):
                        yield event
                    result, files, said = box[0]
                    if result.startswith("error:"):
                        error = result
                    for event in self._save_files(files, call.name):
                        yield event
        duration = time.perf_counter() - started
        self._commit({"role": "tool", "tool_call_id": call.id, "name": call.name, "content": result})
        if self.store is not None and self.session_id:
            self.store.record_tool_call(
                self.session_id, message_id=message_id, call_id=call.id, name=call.name, arguments=call.arguments,
                result=None if error else result, error=error, risk=risk, decision=decision, duration_s=duration,
            )  # fmt: skip
        yield ToolCallFinished(call.id, call.name, result, error, duration)
        yield (result, valid, said)

    async def _invoke(self, spec: Any, kwargs: dict, emit) -> tuple[str, Any, str]:
        ctx = self._context(spec.plugin.name, emit)
        try:
            await spec.plugin.ensure_setup()
            text, output = await spec.call(kwargs, ctx)
            return text, (output.files if output else ()), (output.say if output else "")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a tool's failure is information for the model
            return f"error: {type(exc).__name__}: {exc}", (), ""

    def _save_files(self, files: Sequence[Any], tool: str) -> list[AttachmentProduced]:
        events = []
        for f in files:
            if self.store is not None:
                sha = self.store.add_attachment(f.data, mime=f.mime, filename=f.filename)
                path = str(self.store.attachment_path(sha))
            else:
                out_dir = self.settings.paths.state() / "outputs"
                out_dir.mkdir(parents=True, exist_ok=True)
                # Unique per call: concurrent turns (batch) may produce files with one name.
                import uuid

                target = out_dir / f"{uuid.uuid4().hex[:8]}-{f.filename}"
                target.write_bytes(f.data)
                path = str(target)
            events.append(AttachmentProduced(path, f.mime, f.filename, f.title, tool))
        return events

    def _retry_message(self, spec: Any, error: str) -> str:
        import json

        if self.prompts is not None:
            try:
                return self.prompts.render("tool_retry", tool=spec.name, error=error, schema=json.dumps(spec.schema))
            except AssistantError:
                pass
        return f"The arguments for {spec.name} were invalid: {error}. Call it again with arguments matching: {json.dumps(spec.schema)}"

    def _context(self, plugin: str, emit, turn_text: str = "") -> ToolContext:
        return ToolContext(plugin, self.session_id, self.registry.plugins[plugin].data_dir, emit, self.model, turn_text, self.store)

    def _commit(self, message: dict, *, attachments: Sequence[str] = (), usage: Usage | None = None, timings: Any = None) -> int | None:
        """Append to the history and, when sessions are on, commit it before going on."""
        self.history.append(message)
        if self.store is None or not self.session_id:
            return None
        return self.store.add_message(
            self.session_id,
            message["role"],
            message.get("content"),
            tool_calls=message.get("tool_calls"),
            tool_call_id=message.get("tool_call_id"),
            name=message.get("name"),
            attachments=list(attachments),
            usage=None if usage is None else {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
            timings=None if timings is None else {"ttft_s": timings.time_to_first_token_s, "total_s": timings.total_s},
        )


__all__ = ["AttachmentError", "ChatModel", "Dialogue"]
