"""`assistant serve`'s ASGI app on scripted models: OpenAI shapes, the extension field, sessions,
content parts, errors, auth and concurrency. No sockets: httpx drives the app in-process."""

from __future__ import annotations

import asyncio
import base64
import io
import json

import httpx
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from PIL import Image

from assistant.errors import EngineUnreachable, ServerError, UsageError
from assistant.events import Completion, TextDelta, Timings, Usage
from assistant.plugin_api.registry import load_plugins
from assistant.serve.app import create_app
from assistant.serve.backend import Backend, BackendInfo, SharedModel
from assistant.serve.cli import auth_key, is_loopback
from assistant.sessions import SessionStore
from assistant.settings import ServeSettings, load_settings, parse_assignments
from assistant.testing.fake_model import ScriptedModel, call
from assistant_plugins.utilities import Utilities

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Server:
    """The app around a scripted model, with an httpx client that talks to it in-process."""

    def __init__(self, tmp_path, model, *pairs, api_key=KEY, vision=True, tools=True):
        self.settings = load_settings(
            overrides=parse_assignments([f"paths.state_dir='{tmp_path / 'state'}'", "dialogue.system_prompt=''", *pairs]),
            environ={},
        )
        registry = load_plugins(extra=[Utilities] if tools else [], include_entry_points=False, data_root=tmp_path / "plugins")
        self.store = SessionStore(tmp_path / "sessions.db", tmp_path / "attachments")
        self.model = model
        info = BackendInfo("fake-model", "http://fake/v1", False, 4096, vision)
        self.backend = Backend(SharedModel(model, 4096), self.settings, info, registry=registry, prompts=None, store=self.store)
        headers = AUTH if api_key else {}
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(self.backend, api_key=api_key)),
                                      base_url="http://serve.test", headers=headers)  # fmt: skip

    async def chat(self, messages, headers=None, **body):
        return await self.http.post("/v1/chat/completions", json={"model": "assistant", "messages": messages, **body}, headers=headers)

    async def stream(self, messages, **body) -> list:
        resp = await self.chat(messages, stream=True, **body)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: "):] for line in resp.text.split("\n\n") if line]
        assert all(line.startswith("data: ") for line in resp.text.split("\n\n") if line)
        assert events[-1] == "[DONE]"
        return [json.loads(e) for e in events[:-1]], resp


@pytest.fixture
def make(tmp_path):
    servers = []

    def build(model, *pairs, **kw):
        servers.append(Server(tmp_path / f"s{len(servers)}", model, *pairs, **kw))
        return servers[-1]

    yield build
    for s in servers:
        s.store.close()


def user(text):
    return {"role": "user", "content": text}


def png_data_url(size=(32, 24), color=(200, 30, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def b64_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


# --- the OpenAI shapes -----------------------------------------------------------------------


async def test_models_lists_the_assistant_and_what_backs_it(make):
    s = make(ScriptedModel())
    resp = await s.http.get("/v1/models")
    assert resp.status_code == 200
    (card,) = resp.json()["data"]
    assert card["id"] == "assistant" and card["object"] == "model" and card["max_model_len"] == 4096
    assert card["assistant"]["backed_by"] == "fake-model" and "utilities_calculate" in card["assistant"]["tools"]
    assert (await s.http.get("/v1/models/assistant")).json()["id"] == "assistant"
    missing = await s.http.get("/v1/models/gpt-4")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"


async def test_non_streaming_completion_is_openai_shaped_and_saved_as_a_session(make):
    s = make(ScriptedModel("Paris is the capital."))
    resp = await s.chat([user("Capital of France?")])
    assert resp.status_code == 200, resp.text
    body = resp.json()
    parsed = ChatCompletion.model_validate(body)  # what the official client does with it
    assert parsed.choices[0].message.content == "Paris is the capital." and parsed.choices[0].finish_reason == "stop"
    assert parsed.model == "assistant" and parsed.usage.completion_tokens > 0
    ext = parsed.model_extra["assistant"]
    assert ext["session_id"] == resp.headers["X-Assistant-Session"] and ext["steps"] == 1 and ext["tool_calls"] == []
    saved = s.store.history(ext["session_id"])
    assert saved == [user("Capital of France?"), {"role": "assistant", "content": "Paris is the capital."}]


class PacedModel:
    """Streams `words` with a pause before each, like tokens arriving from a real server."""

    def __init__(self, *words, pause=0.01):
        self.words, self.pause = words, pause

    async def stream_chat(self, messages, **kwargs):
        for word in self.words:
            await asyncio.sleep(self.pause)
            yield TextDelta(word)
        yield Completion("".join(self.words), "stop", Usage(5, len(self.words)), Timings(0.001, 0.01), "paced")


async def test_streaming_sends_text_in_chunks_then_finish_usage_and_done(make):
    s = make(PacedModel("one ", "two ", "three ", "four"))
    chunks, resp = await s.stream([user("count")], stream_options={"include_usage": True})
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
    assert chunks[0]["choices"] == [] and chunks[0]["assistant"] == {
        "event": "session", "session_id": resp.headers["X-Assistant-Session"], "backed_by": "fake-model",
    }  # fmt: skip
    assert chunks[1]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    texts = [c["choices"][0]["delta"]["content"] for c in chunks[2:] if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(texts) == 4 and "".join(texts) == "one two three four"
    finished = [c for c in chunks if c.get("assistant", {}).get("event") == "turn_finished"]
    assert finished and finished[0]["assistant"]["steps"] == 1
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0
    assert len({c["id"] for c in chunks}) == 1


async def test_text_that_piles_up_faster_than_it_is_sent_goes_out_in_fewer_chunks(make):
    s = make(ScriptedModel("one two three four five six"))  # all deltas at once, no pause
    chunks, _ = await s.stream([user("count")])
    texts = [c["choices"][0]["delta"]["content"] for c in chunks[2:] if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert "".join(texts) == "one two three four five six" and len(texts) < 6


async def test_usage_chunk_only_when_asked(make):
    s = make(ScriptedModel("hi"))
    chunks, _ = await s.stream([user("x")])
    assert not any("usage" in c for c in chunks) and chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_length_finish_reason_is_passed_on(make):
    from assistant.testing.fake_model import Reply

    s = make(ScriptedModel(Reply("cut off", finish_reason="length")))
    assert (await s.chat([user("x")])).json()["choices"][0]["finish_reason"] == "length"


# --- tools -------------------------------------------------------------------------------------


async def test_a_server_side_tool_call_is_reported_in_the_extension_field(make):
    s = make(ScriptedModel(call("utilities_calculate", {"expression": "17 * 23"}), "It is 391."))
    resp = await s.chat([user("What is 17 * 23?")])
    body = resp.json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "It is 391."}
    (tc,) = body["assistant"]["tool_calls"]
    assert tc["name"] == "utilities_calculate" and tc["arguments"] == {"expression": "17 * 23"}
    assert "391" in tc["result"] and tc["error"] is None and tc["decision"] == "auto" and tc["id"]
    assert body["assistant"]["steps"] == 2
    # The tool result went back to the model in the second request.
    assert s.model.requests[1]["messages"][-1]["role"] == "tool" and "391" in s.model.requests[1]["messages"][-1]["content"]


async def test_streamed_tool_call_events_travel_in_empty_choice_chunks(make):
    s = make(ScriptedModel(call("utilities_calculate", {"expression": "2+2"}), "Four."))
    chunks, _ = await s.stream([user("2+2?")])
    events = [c["assistant"] for c in chunks if "assistant" in c]
    assert [e["event"] for e in events] == ["session", "tool_call_started", "tool_call", "turn_finished"]
    assert all(c["choices"] == [] for c in chunks if "assistant" in c)
    assert events[2]["name"] == "utilities_calculate" and "4" in events[2]["result"] and events[2]["decision"] == "auto"
    assert events[3]["tool_calls"][0]["id"] == events[2]["id"]


async def test_side_effect_tools_follow_the_non_interactive_policy(make, tmp_path):
    from assistant.plugin_api import Plugin, Risk, tool

    class Mailer(Plugin):
        name = "mailer"
        description = "sends mail"

        @tool(risk=Risk.SIDE_EFFECTS)
        def send(self, to: str) -> str:
            """Send a mail.

            Args:
                to: the address
            """
            raise AssertionError("must not run: nobody approved it")

    s = make(ScriptedModel(call("mailer_send", {"to": "a@b.c"}), "I could not send it."))
    s.backend.registry = load_plugins(extra=[Mailer], include_entry_points=False, data_root=tmp_path / "p")
    (tc,) = (await s.chat([user("mail a@b.c")])).json()["assistant"]["tool_calls"]
    assert tc["decision"] == "denied-by-policy" and "not run" in tc["error"]


async def test_client_side_tools_are_refused_unless_tool_choice_is_none(make):
    s = make(ScriptedModel("fine"))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    resp = await s.chat([user("weather?")], tools=tools)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "client_tools_not_supported" and err["type"] == "invalid_request_error" and "tool_choice" in err["message"]
    assert (await s.chat([user("weather?")], tools=tools, tool_choice="none")).status_code == 200
    assert s.model.requests[0].get("tools") != tools  # the client's tools are never sent to the model


# --- conversations ---------------------------------------------------------------------------------


async def test_earlier_messages_seed_a_new_session_and_system_overrides_the_prompt(make):
    s = make(ScriptedModel("c-answer"))
    messages = [{"role": "system", "content": "Be brief."}, user("a"), {"role": "assistant", "content": "b"}, user("c")]
    resp = await s.chat(messages)
    sent = s.model.requests[0]["messages"]
    assert sent == [{"role": "system", "content": "Be brief."}, user("a"), {"role": "assistant", "content": "b"}, user("c")]
    saved = s.store.history(resp.headers["X-Assistant-Session"])
    assert [m["content"] for m in saved] == ["a", "b", "c", "c-answer"]


async def test_a_session_header_continues_the_saved_history_and_ignores_the_resent_messages(make):
    s = make(ScriptedModel("first answer", "second answer"))
    first = await s.chat([user("first question")])
    sid = first.headers["X-Assistant-Session"]
    # A client resends the whole list; with a session only the last message counts.
    resent = [user("first question"), {"role": "assistant", "content": "EDITED BY CLIENT"}, user("second question")]
    second = await s.chat(resent, headers={"X-Assistant-Session": sid})
    assert second.status_code == 200 and second.json()["assistant"]["session_id"] == sid
    assert s.model.requests[1]["messages"] == [
        user("first question"), {"role": "assistant", "content": "first answer"}, user("second question"),
    ]  # fmt: skip
    assert len(s.store.history(sid)) == 4
    # session_id in the body (the openai client's extra_body) works the same.
    s.model.replies.append("third answer")
    third = await s.chat([user("third question")], session_id=sid)
    assert third.json()["assistant"]["session_id"] == sid and len(s.store.history(sid)) == 6


async def test_unknown_or_conflicting_sessions_are_clear_errors(make):
    s = make(ScriptedModel())
    resp = await s.chat([user("x")], headers={"X-Assistant-Session": "20200101-000000-abcdef"})
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "session_not_found"
    resp = await s.chat([user("x")], headers={"X-Assistant-Session": "a"}, session_id="b")
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "session_id"


async def test_the_last_message_must_be_the_users(make):
    s = make(ScriptedModel())
    resp = await s.chat([user("x"), {"role": "assistant", "content": "prefill"}])
    assert resp.status_code == 400 and "last message" in resp.json()["error"]["message"]
    resp = await s.chat([user("x"), {"role": "tool", "tool_call_id": "1", "content": "r"}, user("y")])
    assert resp.status_code == 400 and "tool" in resp.json()["error"]["message"]


# --- content parts -------------------------------------------------------------------------------


async def test_image_parts_become_image_attachments_for_the_model(make):
    s = make(ScriptedModel("a red square"))
    earlier = {"role": "user", "content": [{"type": "text", "text": "and this?"}, {"type": "image_url", "image_url": {"url": png_data_url(color=(0, 0, 255))}}]}
    last = {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": png_data_url()}}]}
    resp = await s.chat([earlier, {"role": "assistant", "content": "blue"}, last])
    assert resp.status_code == 200, resp.text
    sent = s.model.requests[0]["messages"]
    for message in (sent[0], sent[-1]):
        kinds = [p["type"] for p in message["content"]]
        assert kinds == ["image_url", "text"] and message["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert sent[-1]["content"][1]["text"] == "What is this?"
    assert resp.json()["assistant"]["attachments"] == [{"filename": "image1.png", "kind": "image", "handled_by": "model", "title": ""}]


async def test_file_parts_are_read_like_ask_attach(make):
    s = make(ScriptedModel("It says hello."))
    part = {"type": "file", "file": {"file_data": b64_url("text/plain", b"hello from the file\n"), "filename": "notes.txt"}}
    resp = await s.chat([{"role": "user", "content": [part, {"type": "text", "text": "What does it say?"}]}])
    assert resp.status_code == 200, resp.text
    content = s.model.requests[0]["messages"][-1]["content"]
    assert "[notes.txt]\nhello from the file" in content and content.endswith("What does it say?")
    assert resp.json()["assistant"]["attachments"][0]["handled_by"] == "inline-text"


@pytest.mark.parametrize(
    "part, code",
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,!!not base64!!"}}, "invalid_base64"),
        ({"type": "image_url", "image_url": {"url": b64_url("image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)}}, "invalid_image"),
        ({"type": "image_url", "image_url": {"url": b64_url("image/png", b"%PDF-1.4 not an image")}}, "invalid_image"),
        ({"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}, "image_url_not_allowed"),
        ({"type": "file", "file": {"file_data": b64_url("application/octet-stream", bytes(range(256)) * 4), "filename": "x.bin"}}, "invalid_value"),
        ({"type": "file", "file": {"file_id": "file-abc"}}, "invalid_value"),
        ({"type": "video_url", "video_url": {"url": "x"}}, "invalid_value"),
    ],
)
async def test_bad_or_unsupported_attachments_are_400s_before_any_model_request(make, part, code):
    s = make(ScriptedModel())
    resp = await s.chat([{"role": "user", "content": [{"type": "text", "text": "look"}, part]}], stream=True)
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert err["code"] == code and err["type"] == "invalid_request_error" and err["message"]
    assert s.model.requests == []


async def test_images_to_a_text_only_model_are_refused_with_what_to_do(make):
    s = make(ScriptedModel(), vision=False)
    resp = await s.chat([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": png_data_url()}}]}])
    assert resp.status_code == 400 and "does not take images" in resp.json()["error"]["message"]


async def test_a_file_in_an_earlier_message_without_a_session_says_to_use_one(make):
    s = make(ScriptedModel())
    part = {"type": "file", "file": {"file_data": b64_url("text/plain", b"x"), "filename": "a.txt"}}
    resp = await s.chat([{"role": "user", "content": [part]}, {"role": "assistant", "content": "ok"}, user("more?")])
    assert resp.status_code == 400 and "X-Assistant-Session" in resp.json()["error"]["message"]


# --- request options ------------------------------------------------------------------------------


async def test_sampling_options_reach_the_model_and_bad_ones_are_400(make):
    s = make(ScriptedModel("ok"))
    await s.chat([user("x")], temperature=0.2, max_completion_tokens=7, max_tokens=99, seed=3)
    sent = s.model.requests[0]
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.2, 7, 3)
    for bad in ({"temperature": -1}, {"max_tokens": 0}, {"seed": "x"}, {"n": 2}, {"stream": "yes"}):
        resp = await s.chat([user("x")], **bad)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == next(iter(bad)), bad
    bad_json = await s.http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]["message"]


# --- failures -------------------------------------------------------------------------------------


class BreaksMidAnswer:
    """Streams some text, then the server dies."""

    async def stream_chat(self, messages, **kwargs):
        yield TextDelta("partial ")
        raise ServerError("the server failed mid-answer: engine died")


async def test_a_model_error_is_a_502_and_the_server_keeps_serving(make):
    s = make(ScriptedModel(EngineUnreachable("cannot connect to the model server", hint="start it"), "back again"))
    resp = await s.chat([user("x")])
    assert resp.status_code == 502
    err = resp.json()["error"]
    assert err["type"] == "server_error" and err["code"] == "model_error" and "start it" in err["message"]
    assert (await s.chat([user("y")])).json()["choices"][0]["message"]["content"] == "back again"


async def test_a_failure_mid_stream_is_an_error_chunk_then_done(make):
    s = make(BreaksMidAnswer())
    chunks, _ = await s.stream([user("x")])
    assert chunks[2]["choices"][0]["delta"]["content"] == "partial "
    assert chunks[-1]["error"]["code"] == "model_error" and "engine died" in chunks[-1]["error"]["message"]


async def test_a_plugin_bug_is_a_500_not_a_crash(make):
    def boom(messages, tools):
        raise RuntimeError("bug in a plugin")

    s = make(ScriptedModel(boom, "fine"))
    resp = await s.chat([user("x")])
    assert resp.status_code == 500 and "RuntimeError: bug in a plugin" in resp.json()["error"]["message"]
    assert (await s.chat([user("y")])).status_code == 200


# --- auth -----------------------------------------------------------------------------------------


async def test_every_v1_route_needs_the_key_and_health_does_not(make):
    s = make(ScriptedModel("ok"))
    s.http.headers.pop("Authorization")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        for resp in (await s.http.get("/v1/models", headers=headers), await s.chat([user("x")], headers=headers),
                     await s.http.get("/v1/nothing-here", headers=headers)):  # fmt: skip
            assert resp.status_code == 401, (headers, resp.text)
            assert resp.json()["error"]["code"] == "invalid_api_key" and "Bearer" in resp.json()["error"]["message"]
    assert s.model.requests == []
    assert (await s.http.get("/health")).json() == {"status": "ok"}
    assert (await s.http.get("/v1/models", headers=AUTH)).status_code == 200
    assert (await s.chat([user("x")], headers=AUTH)).status_code == 200
    assert (await s.http.get("/v1/nothing-here", headers=AUTH)).json()["error"]["code"] == "not_found"


async def test_without_a_key_the_app_serves_openly(make):
    s = make(ScriptedModel("ok"), api_key=None)
    assert (await s.chat([user("x")])).status_code == 200


def test_auth_policy_refuses_an_open_server_anywhere_but_loopback():
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2", "[::1]"):
        assert is_loopback(host) and auth_key(ServeSettings(host=host), no_auth=True) is None
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        assert not is_loopback(host)
        with pytest.raises(UsageError, match="only allowed on a loopback"):
            auth_key(ServeSettings(host=host, api_key="k"), no_auth=True)
    with pytest.raises(UsageError, match="no API key") as exc:
        auth_key(ServeSettings(host="127.0.0.1"), no_auth=False)
    assert "ASSISTANT_SERVE__API_KEY" in exc.value.hint and "--no-auth" in exc.value.hint
    assert auth_key(ServeSettings(host="0.0.0.0", api_key="k"), no_auth=False) == "k"


def test_serve_without_a_key_exits_2_before_any_engine_starts(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ASSISTANT_SERVE__API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "no API key is set" in capsys.readouterr().err
    assert main(["serve", "--host", "0.0.0.0", "--no-auth", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "only allowed on a loopback" in capsys.readouterr().err
    assert not (tmp_path / "state" / "assistant" / "engine").exists()


def test_the_cli_stays_light_until_serve_runs(tmp_path):
    """`assistant --help` and `assistant serve --help` import neither the ASGI stack nor the dialogue."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from assistant.cli import main\n"
        "for argv in (['--help'], ['serve', '--help']):\n"
        "    try: main(argv)\n"
        "    except SystemExit: pass\n"
        "heavy = ('starlette', 'uvicorn', 'fastapi', 'assistant.dialogue', 'assistant.serve.app')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--no-auth" in out.stdout and out.stdout.splitlines()[-1] == "[]"


def test_a_taken_port_is_a_usage_error():
    from assistant.serve.cli import listen

    first = listen("127.0.0.1", 0)
    try:
        with pytest.raises(UsageError, match="cannot listen") as exc:
            listen("127.0.0.1", first.getsockname()[1])
        assert "--port" in exc.value.hint
    finally:
        first.close()


# --- concurrency and cancellation ------------------------------------------------------------------


class SlowModel:
    """Answers after `delay`; records the most requests in flight and whether a stream was cancelled."""

    def __init__(self, delay=0.05):
        self.delay, self.in_flight, self.most, self.cancelled = delay, 0, 0, 0

    async def stream_chat(self, messages, **kwargs):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            yield TextDelta("thinking ")
            await asyncio.sleep(self.delay)
            text = "answer to " + messages[-1]["content"]
            yield TextDelta(text)
            yield Completion("thinking " + text, "stop", Usage(3, 3), Timings(0.001, self.delay), "slow")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1


async def test_max_concurrent_bounds_the_turns_in_flight_and_each_gets_its_own_session(make):
    model = SlowModel()
    s = make(model, "serve.max_concurrent=2")
    answers = await asyncio.gather(*(s.chat([user(f"q{i}")]) for i in range(6)))
    assert model.most == 2
    assert [a.json()["choices"][0]["message"]["content"] for a in answers] == [f"thinking answer to q{i}" for i in range(6)]
    assert len({a.headers["X-Assistant-Session"] for a in answers}) == 6


async def test_a_consumer_that_stops_early_cancels_the_turn_and_frees_its_slot(make):
    model = SlowModel(delay=30)
    s = make(model, "serve.max_concurrent=1")
    from assistant.serve.messages import ChatRequest

    turn = s.backend.prepare(ChatRequest("hello"))
    events = s.backend.events(turn)
    async for event in events:
        if isinstance(event, TextDelta):
            break  # the client went away after the first text
    await events.aclose()
    for _ in range(100):
        if model.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert model.cancelled == 1 and model.in_flight == 0
    model.delay = 0
    assert (await s.chat([user("next")])).status_code == 200  # the one slot is free again


# --- the official openai client ----------------------------------------------------------------


async def test_the_openai_client_reads_answers_streams_extension_events_and_errors(make):
    import openai

    s = make(ScriptedModel(call("utilities_calculate", {"expression": "6*7"}), "It is 42.", "Still 42.", ServerError("the server failed: engine died")))

    def client(key=KEY):
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=s.http._transport.app))
        return openai.AsyncOpenAI(base_url="http://serve.test/v1", api_key=key, http_client=http, max_retries=0)

    oa = client()
    raw = await oa.chat.completions.with_raw_response.create(model="assistant", messages=[user("6*7?")])
    answer = raw.parse()
    sid = raw.headers["X-Assistant-Session"]
    assert answer.choices[0].message.content == "It is 42." and answer.model_extra["assistant"]["session_id"] == sid
    assert answer.model_extra["assistant"]["tool_calls"][0]["result"].endswith("42")
    stream = await oa.chat.completions.create(
        model="assistant", messages=[user("again?")], stream=True, extra_headers={"X-Assistant-Session": sid},
        stream_options={"include_usage": True},
    )  # fmt: skip
    text, extensions, usage = "", [], None
    async for c in stream:
        if c.choices:
            text += c.choices[0].delta.content or ""
        if (c.model_extra or {}).get("assistant"):
            extensions.append(c.model_extra["assistant"]["event"])
        usage = c.usage or usage
    assert text == "Still 42." and extensions == ["session", "turn_finished"] and usage.completion_tokens > 0
    with pytest.raises(openai.APIError, match="engine died"):
        async for _ in await oa.chat.completions.create(model="assistant", messages=[user("x")], stream=True):
            pass
    with pytest.raises(openai.AuthenticationError):
        await client("wrong").models.list()
    with pytest.raises(openai.BadRequestError, match="client_tools_not_supported|runs its own tools"):
        await oa.chat.completions.create(
            model="assistant", messages=[user("x")], tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]
        )


def test_the_listening_socket_sends_small_writes_at_once():
    """TCP_NODELAY, inherited by accepted connections: without it each streamed chunk (and each
    MCP reply written in two pieces) waited for the client's delayed ACK, ~40 ms on loopback."""
    import socket

    from assistant.serve.cli import listen

    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()
