"""`assistant serve` as a subprocess in front of a real vLLM server (the tiny random-weight VLM),
driven by the official openai client: answers, streams, auth, concurrent conversations, sessions."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time

import httpx
import openai
import pytest

from .conftest import ASSISTANT, ROOT, cli_env

pytestmark = pytest.mark.vllm

KEY = "integration-key"
# Seeded sampling: the random model's answers are the same every run, and long enough to stream.
SAMPLING = dict(temperature=1.0, seed=7, max_tokens=24)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_engine, cache_dir, tmp_path_factory):
    """`assistant serve` on a free loopback port, with a key, until the module's tests are done."""
    tmp = tmp_path_factory.mktemp("serve")
    # Only the utilities plugin: short prompts keep the random model quick.
    env = cli_env(tmp, cache_dir, ASSISTANT_PLUGINS__DISABLED="speech imagegen notes documents kb", ASSISTANT_SERVE__API_KEY=KEY)
    port = free_port()
    log = open(tmp / "serve.log", "w+")
    proc = subprocess.Popen(
        ASSISTANT + ["serve", "--base-url", tiny_engine.base_url, "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"assistant serve exited {proc.returncode}:\n{(tmp / 'serve.log').read_text()}"
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "assistant serve did not become healthy in 120 s"
        time.sleep(0.3)
    yield url + "/v1", env, proc, tmp / "serve.log"
    proc.terminate()
    try:
        assert proc.wait(timeout=30) == 0, (tmp / "serve.log").read_text()  # SIGTERM is a clean shutdown
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def client(base_url: str, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=300)


def test_models_and_a_non_streaming_answer(served, tiny_engine):
    base_url, env, _, _ = served
    oa = client(base_url)
    (model,) = oa.models.list().data
    assert model.id == "assistant" and model.model_extra["assistant"]["backed_by"] == tiny_engine.served_name
    raw = oa.chat.completions.with_raw_response.create(model="assistant", messages=[{"role": "user", "content": "Say something."}], **SAMPLING)
    answer = raw.parse()
    ext = answer.model_extra["assistant"]
    assert isinstance(answer.choices[0].message.content, str) and answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    assert ext["session_id"] == raw.headers["X-Assistant-Session"] and ext["steps"] >= 1


def test_streaming_arrives_in_chunks_and_ends_properly(served):
    base_url, _, _, _ = served
    stream = client(base_url).chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "Tell me a story."}], stream=True,
        # A long answer: text that piles up while the client is behind goes out as one chunk, so a
        # short one may arrive whole on a busy machine.
        stream_options={"include_usage": True}, **{**SAMPLING, "max_tokens": 256},
    )  # fmt: skip
    pieces, finish, usage, events = [], None, None, []
    for c in stream:
        if c.choices:
            if c.choices[0].delta.content:
                pieces.append(c.choices[0].delta.content)
            finish = c.choices[0].finish_reason or finish
        if c.model_extra.get("assistant"):
            events.append(c.model_extra["assistant"]["event"])
        usage = c.usage or usage
    assert len(pieces) >= 2, pieces
    assert finish in ("stop", "length") and usage.completion_tokens >= len(pieces) - 1
    assert events[0] == "session" and events[-1] == "turn_finished"


def test_a_wrong_key_is_rejected(served):
    base_url, _, _, _ = served
    with pytest.raises(openai.AuthenticationError):
        client(base_url, "wrong-key").chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.AuthenticationError):
        client(base_url, "wrong-key").models.list()


def test_concurrent_conversations_get_their_own_sessions_and_continue_by_header(served):
    base_url, env, proc, log = served

    async def conversations():
        async with openai.AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=300) as oa:

            async def first(question):
                raw = await oa.chat.completions.with_raw_response.create(
                    model="assistant", messages=[{"role": "user", "content": question}], **SAMPLING
                )
                return raw.headers["X-Assistant-Session"], raw.parse()

            (sid_a, a), (sid_b, b) = await asyncio.gather(first("Question A about apples."), first("Question B about boats."))
            follow = await oa.chat.completions.create(
                model="assistant", extra_headers={"X-Assistant-Session": sid_a}, **SAMPLING,
                messages=[{"role": "user", "content": "Question A about apples."},
                          {"role": "assistant", "content": a.choices[0].message.content},
                          {"role": "user", "content": "And pears?"}],
            )  # fmt: skip
            return sid_a, sid_b, a, b, follow

    sid_a, sid_b, a, b, follow = asyncio.run(conversations())
    assert sid_a != sid_b
    for answer, sid in ((a, sid_a), (b, sid_b)):
        assert answer.model_extra["assistant"]["session_id"] == sid and isinstance(answer.choices[0].message.content, str)
    assert follow.model_extra["assistant"]["session_id"] == sid_a

    def saved(sid):
        out = subprocess.run(ASSISTANT + ["sessions", "export", sid, "--format", "json"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return [(m["role"], m["content"]) for m in json.loads(out.stdout)["messages"] if m["role"] in ("user", "assistant")]

    conversation_a = saved(sid_a)
    assert [r for r, _ in conversation_a] == ["user", "assistant", "user", "assistant"]
    assert conversation_a[0][1] == "Question A about apples." and conversation_a[2][1] == "And pears?"
    assert [c for _, c in saved(sid_b)][0] == "Question B about boats."
    assert proc.poll() is None, log.read_text()


def test_a_client_that_disconnects_mid_stream_leaves_the_server_serving(served):
    base_url, _, proc, log = served
    with httpx.Client(timeout=120) as http:
        body = {"model": "assistant", "messages": [{"role": "user", "content": "A long story, please."}], "stream": True,
                "temperature": 1.0, "seed": 3, "max_tokens": 400}  # fmt: skip
        with http.stream("POST", base_url + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp:
            assert resp.status_code == 200
            for line in resp.iter_lines():
                if '"content":"' in line and '"content":""' not in line:
                    break  # the first text: hang up
    again = client(base_url).chat.completions.create(model="assistant", messages=[{"role": "user", "content": "hi"}], **SAMPLING)
    assert again.choices[0].finish_reason in ("stop", "length") and proc.poll() is None, log.read_text()
