"""Async client for an OpenAI-compatible chat server (vLLM's, or any other).

Written on httpx rather than the openai SDK: we need exact control over which failures are
retried (only those where the request never reached the model), over partial output when a
stream breaks, and over error classification by status code and vLLM's structured `param`
field rather than by message text. It also keeps `assistant ask` start-up light.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx

from ..errors import (
    ContextTooLong,
    EngineUnreachable,
    ImagesNotSupported,
    RequestRejected,
    RequestTimedOut,
    ServerError,
    StreamInterrupted,
)
from ..events import Completion, TextDelta, Timings, ToolCall, Usage

# vLLM reports which request field failed validation in `error.param`; these mean the
# prompt plus the requested output do not fit the context window.
_CONTEXT_PARAMS = {"input_tokens", "input_text", "max_tokens", "max_completion_tokens", "max_model_len"}
_RETRYABLE_STATUS = {502, 503, 504}


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    api_key: str = ""
    model: str = ""  # empty: ask the server
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    max_retries: int = 2
    vision: bool | None = None  # None: unknown, let the server decide
    tokenizer_folder: str = ""  # the served model's local folder, when known: exact token counts offline


def _has_images(messages: list[dict]) -> bool:
    for m in messages:
        content = m.get("content")
        if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            return True
    return False


class ChatClient:
    def __init__(self, config: ClientConfig, *, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        # Plain http (the local engine) needs no certificates: loading them costs ~20-50 ms per
        # client. Redirects are not followed, so this cannot downgrade an https request.
        plain = config.base_url.lower().startswith("http://")
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/") + "/", headers=headers, timeout=timeout, transport=transport,
            verify=not plain,
        )
        self._model = config.model

    async def __aenter__(self) -> "ChatClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- small endpoints -------------------------------------------------------------

    async def list_models(self) -> list[dict[str, Any]]:
        resp = await self._send("GET", "models")
        return resp.json().get("data", [])

    async def model_name(self, models: list[dict[str, Any]] | None = None) -> str:
        """The configured model, else the first one the server lists (`models`: a listing in hand)."""
        if not self._model:
            models = await self.list_models() if models is None else models
            if not models:
                raise RequestRejected("the server lists no models", hint="check the server's --model flag")
            self._model = models[0]["id"]
        return self._model

    async def context_length(self) -> int | None:
        """The served model's context window (vLLM lists it as max_model_len), if the server says."""
        models = await self.list_models()  # one listing answers both questions
        name = await self.model_name(models)
        for m in models:
            if m.get("id") == name and m.get("max_model_len"):
                return int(m["max_model_len"])
        return None

    async def tokenize(self, text: str) -> int:
        """Token count of `text` for the served model (vLLM's /tokenize, served beside /v1)."""
        root = self.config.base_url.rstrip("/").removesuffix("/v1")
        body = {"model": await self.model_name(), "prompt": text, "add_special_tokens": False}
        resp = await self._http.post(root + "/tokenize", json=body)
        resp.raise_for_status()
        return int(resp.json()["count"])

    # --- chat ------------------------------------------------------------------------

    async def stream_chat(
        self,
        messages: list[dict],
        *,
        tools: list[dict] | None = None,
        tool_choice: str | dict | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> AsyncIterator[TextDelta | Completion]:
        """Yield TextDelta as text arrives, then exactly one Completion."""
        if self.config.vision is False and _has_images(messages):
            raise ImagesNotSupported(
                f"the model {self._model or '(served model)'} cannot take images",
                hint="remove the image, or switch to a vision-language model (model.name)",
            )
        body: dict[str, Any] = {
            "model": await self.model_name(),
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if tools:
            body["tools"] = tools
            if tool_choice is not None:
                body["tool_choice"] = tool_choice
        for key, value in (("temperature", temperature), ("max_tokens", max_tokens), ("seed", seed)):
            if value is not None:
                body[key] = value
        body.update(extra or {})

        started = time.perf_counter()
        first: float | None = None
        text_parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = Usage()
        finish: str | None = None
        done = False
        async with self._stream("POST", "chat/completions", body, images=_has_images(messages)) as resp:
            try:
                async for data in _sse_data(resp):
                    if data == "[DONE]" or done:
                        # Read on to the end of the body (the server ends it right after [DONE]):
                        # a response left unread closes its connection instead of returning it to
                        # the pool, which cost every request a new TCP connection.
                        done = True
                        continue
                    chunk = json.loads(data)
                    if "error" in chunk:  # vLLM reports engine failures inside the stream
                        err = chunk["error"]
                        raise ServerError(f"the server failed mid-answer: {err.get('message', err)}")
                    if chunk.get("usage"):
                        u = chunk["usage"]
                        usage = Usage(u.get("prompt_tokens") or 0, u.get("completion_tokens") or 0)
                    for choice in chunk.get("choices") or []:
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            first = first or time.perf_counter()
                            text_parts.append(delta["content"])
                            yield TextDelta(delta["content"])
                        for tc in delta.get("tool_calls") or []:
                            first = first or time.perf_counter()
                            slot = calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "arguments": ""})
                            fn = tc.get("function") or {}
                            slot["id"] = tc.get("id") or slot["id"]
                            slot["name"] += fn.get("name") or ""
                            slot["arguments"] += fn.get("arguments") or ""
                        finish = choice.get("finish_reason") or finish
            except (httpx.TransportError, json.JSONDecodeError) as exc:
                raise StreamInterrupted(
                    f"the answer stream broke after {len(''.join(text_parts))} characters ({exc.__class__.__name__})",
                    partial_text="".join(text_parts),
                    hint="the server may have crashed or restarted: check `assistant engine status` "
                    "and its log, then ask again",
                ) from None
        if not done:
            raise StreamInterrupted(
                "the answer stream ended before the server said it was finished",
                partial_text="".join(text_parts),
                hint="the server may have crashed: check `assistant engine status` and its log, then ask again",
            )
        end = time.perf_counter()
        yield Completion(
            text="".join(text_parts),
            finish_reason=finish,
            usage=usage,
            timings=Timings(None if first is None else first - started, end - started),
            model=body["model"],
            tool_calls=tuple(
                ToolCall(c["id"] or f"call_{i}", c["name"], c["arguments"]) for i, c in sorted(calls.items())
            ),
        )

    async def chat(self, messages: list[dict], **kwargs: Any) -> Completion:
        async for event in self.stream_chat(messages, **kwargs):
            if isinstance(event, Completion):
                return event
        raise AssertionError("stream_chat always ends with a Completion")

    # --- transport -------------------------------------------------------------------

    async def _send(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        async with self._stream(method, path, body) as resp:
            await resp.aread()
            return resp

    def _stream(self, method: str, path: str, body: dict | None, *, images: bool = False):
        return _RetryingStream(self, method, path, body, images)


class _RetryingStream:
    """Open a response, retrying only failures where the model never saw the request."""

    def __init__(self, client: ChatClient, method: str, path: str, body: dict | None, images: bool):
        self.c, self.method, self.path, self.body, self.images = client, method, path, body, images
        self._cm = None

    async def __aenter__(self) -> httpx.Response:
        cfg = self.c.config
        url = cfg.base_url.rstrip("/") + "/" + self.path
        for attempt in range(cfg.max_retries + 1):
            last_try = attempt == cfg.max_retries
            try:
                self._cm = self.c._http.stream(self.method, self.path, json=self.body)
                resp = await self._cm.__aenter__()
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                self._cm = None
                if last_try:
                    raise EngineUnreachable(
                        f"cannot connect to the model server at {url} ({exc.__class__.__name__})",
                        hint="start one with `assistant engine start`, or fix model.base_url",
                    ) from None
            except httpx.TimeoutException:
                # The request was sent: the model may be working on it, so never retry.
                raise RequestTimedOut(
                    f"the server at {url} did not answer within {cfg.read_timeout:.0f} s",
                    hint="raise model.read_timeout, or check the server's load and log",
                ) from None
            else:
                if resp.status_code < 400:
                    return resp
                await resp.aread()
                await self._cm.__aexit__(None, None, None)
                self._cm = None
                if resp.status_code not in _RETRYABLE_STATUS or last_try:
                    raise _classify(resp, url, self.images)
            await asyncio.sleep(min(0.5 * 2**attempt, 4.0))
        raise AssertionError("unreachable")

    async def __aexit__(self, *exc: object) -> None:
        if self._cm is not None:
            await self._cm.__aexit__(*exc)


def _classify(resp: httpx.Response, url: str, images: bool) -> Exception:
    try:
        err = resp.json().get("error") or {}
    except ValueError:
        err = {}
    if not isinstance(err, dict):
        err = {"message": str(err)}
    message = err.get("message") or resp.text[:500] or resp.reason_phrase
    param = err.get("param")
    status = resp.status_code
    if status == 400 and param in _CONTEXT_PARAMS:
        return ContextTooLong(
            f"the request does not fit the model's context window: {message}",
            status=status,
            hint="shorten the input or the history, or lower model.max_tokens "
            "(or raise engine.max_model_len if the model supports it)",
        )
    if status in (401, 403):
        return RequestRejected(
            f"the server at {url} refused the credentials (HTTP {status})",
            status=status,
            hint="set model.api_key (or ASSISTANT_MODEL__API_KEY) to the server's key",
        )
    if status == 404:
        return RequestRejected(
            f"not found at {url}: {message}",
            status=status,
            hint="check model.base_url (it usually ends in /v1) and model.served_name",
        )
    if 400 <= status < 500:
        hint = "check the request; the server's message above says what it refused"
        if images:
            hint = "if the served model cannot take images, set model.vision = 'no' or use a vision model"
        return RequestRejected(f"the server rejected the request (HTTP {status}): {message}", status=status, hint=hint)
    return ServerError(
        f"the server failed (HTTP {status}): {message}",
        hint="see the server log (`assistant engine logs` for the local engine) and try again",
    )


async def _sse_data(resp: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of a server-sent-events stream."""
    async for line in resp.aiter_lines():
        if line.startswith("data:"):
            yield line[5:].strip()
