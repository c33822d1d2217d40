"""The chat client against scripted HTTP responses (no sockets)."""

import json

import httpx
import pytest

from assistant.errors import (
    ContextTooLong,
    EngineUnreachable,
    ImagesNotSupported,
    RequestRejected,
    ServerError,
    StreamInterrupted,
)
from assistant.events import Completion, TextDelta
from assistant.model.client import ChatClient, ClientConfig


def sse(*chunks, done=True) -> bytes:
    lines = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()


def text_chunk(text, finish=None):
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 3}}


class Script:
    """Answers requests in order; records what was sent."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


def client(script, **cfg):
    config = ClientConfig(base_url="http://engine.test/v1", model="m", max_retries=cfg.pop("max_retries", 2), **cfg)
    return ChatClient(config, transport=httpx.MockTransport(script))


MSG = [{"role": "user", "content": "hi"}]


async def test_streams_text_then_one_completion_with_usage():
    script = Script(httpx.Response(200, content=sse(text_chunk("Hel"), text_chunk("lo", "stop"), USAGE)))
    async with client(script) as c:
        events = [e async for e in c.stream_chat(MSG, temperature=0, max_tokens=5, seed=1)]
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    done = events[-1]
    assert isinstance(done, Completion) and done.text == "Hello" and done.finish_reason == "stop"
    assert done.usage.prompt_tokens == 11 and done.usage.completion_tokens == 3
    assert done.timings.time_to_first_token_s is not None
    body = json.loads(script.requests[0].content)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["max_tokens"], body["seed"], body["model"]) == (0, 5, 1, "m")


async def test_tool_call_deltas_are_assembled():
    chunks = [
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get_", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "weather", "arguments": '{"city":'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ' "Oslo"}'}}]}, "finish_reason": "tool_calls"}]},
    ]
    script = Script(httpx.Response(200, content=sse(*chunks)))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    async with client(script) as c:
        done = await c.chat(MSG, tools=tools, tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert done.finish_reason == "tool_calls"
    assert [(t.id, t.name, json.loads(t.arguments)) for t in done.tool_calls] == [("c1", "get_weather", {"city": "Oslo"})]
    assert json.loads(script.requests[0].content)["tool_choice"]["function"]["name"] == "get_weather"


async def test_context_too_long_is_classified_by_param_not_text():
    err = {"error": {"message": "whatever wording", "type": "BadRequestError", "param": "input_tokens", "code": 400}}
    async with client(Script(httpx.Response(400, json=err))) as c:
        with pytest.raises(ContextTooLong) as exc:
            await c.chat(MSG)
    assert "max_tokens" in str(exc.value)  # the hint says what to do


async def test_other_400_is_rejected_and_not_retried():
    script = Script(httpx.Response(400, json={"error": {"message": "bad field", "param": None}}))
    async with client(script) as c:
        with pytest.raises(RequestRejected) as exc:
            await c.chat(MSG)
    assert not isinstance(exc.value, ContextTooLong) and "bad field" in str(exc.value)
    assert len(script.requests) == 1


async def test_400_on_image_request_hints_at_vision_setting():
    img = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]
    async with client(Script(httpx.Response(400, json={"error": {"message": "not multimodal"}}))) as c:
        with pytest.raises(RequestRejected, match="model.vision"):
            await c.chat(img)


async def test_images_refused_before_any_request_when_model_is_text_only():
    script = Script()
    img = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]
    async with client(script, vision=False) as c:
        with pytest.raises(ImagesNotSupported):
            await c.chat(img)
    assert script.requests == []


async def test_503_before_output_is_retried_then_succeeds():
    script = Script(
        httpx.Response(503, json={"error": {"message": "busy"}}),
        httpx.Response(503, json={"error": {"message": "busy"}}),
        httpx.Response(200, content=sse(text_chunk("ok", "stop"))),
    )
    async with client(script) as c:
        done = await c.chat(MSG)
    assert done.text == "ok" and len(script.requests) == 3


async def test_500_is_not_retried():
    script = Script(httpx.Response(500, json={"error": {"message": "boom"}}))
    async with client(script) as c:
        with pytest.raises(ServerError, match="boom"):
            await c.chat(MSG)
    assert len(script.requests) == 1


async def test_connection_refused_retries_then_says_how_to_start_an_engine():
    script = Script(*[httpx.ConnectError("refused")] * 3)
    async with client(script, max_retries=2) as c:
        with pytest.raises(EngineUnreachable, match="assistant engine start"):
            await c.chat(MSG)
    assert len(script.requests) == 3


async def test_stream_without_done_keeps_partial_text():
    script = Script(httpx.Response(200, content=sse(text_chunk("par"), text_chunk("tial"), done=False)))
    async with client(script) as c:
        with pytest.raises(StreamInterrupted) as exc:
            await c.chat(MSG)
    assert exc.value.partial_text == "partial"


class BreakingStream(httpx.AsyncByteStream):
    async def __aiter__(self):
        yield sse(text_chunk("one "), done=False)
        raise httpx.RemoteProtocolError("peer closed connection")


async def test_transport_error_mid_stream_is_stream_interrupted_not_retried():
    script = Script(httpx.Response(200, stream=BreakingStream()))
    async with client(script) as c:
        with pytest.raises(StreamInterrupted) as exc:
            await c.chat(MSG)
    assert exc.value.partial_text == "one " and len(script.requests) == 1


async def test_error_event_inside_stream():
    script = Script(httpx.Response(200, content=sse(text_chunk("a"), {"error": {"message": "engine died"}})))
    async with client(script) as c:
        with pytest.raises(ServerError, match="engine died"):
            await c.chat(MSG)


async def test_model_name_is_discovered_from_server():
    script = Script(
        httpx.Response(200, json={"data": [{"id": "served-x"}]}),
        httpx.Response(200, content=sse(text_chunk("ok", "stop"))),
    )
    config = ClientConfig(base_url="http://engine.test/v1")
    async with ChatClient(config, transport=httpx.MockTransport(script)) as c:
        done = await c.chat(MSG)
    assert done.model == "served-x"
    assert script.requests[0].url.path == "/v1/models"
