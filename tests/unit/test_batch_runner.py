"""The batch runner on fake models: concurrency, failures, resume, scoring, endpoints, options."""

from __future__ import annotations

import asyncio
import json

import pytest
from PIL import Image

from assistant.batch.inputs import BatchItem, read_items
from assistant.batch.output import ResultsFile
from assistant.batch.pool import Pool, Target
from assistant.batch.report import BatchProgress, BatchStats
from assistant.batch.runner import AllEndpointsDown, BatchOptions, BatchRunner
from assistant.errors import EngineUnreachable, RequestRejected
from assistant.events import Completion, TextDelta, Timings, Usage
from assistant.plugin_api import Plugin, Risk, tool
from assistant.plugin_api.registry import load_plugins
from assistant.settings import load_settings, parse_assignments
from assistant.testing.fake_model import ScriptedModel, call


class EchoModel:
    """A fake server: answers `answers[question]` (text or an exception to raise), else
    "answer to QUESTION", after `delay` seconds; records requests and the most in flight."""

    def __init__(self, delay: float = 0.0, answers: dict | None = None, name: str = "fake-model"):
        self.delay, self.answers, self.name = delay, answers or {}, name
        self.requests: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.closed = False

    async def stream_chat(self, messages, **kwargs):
        self.requests.append({"messages": messages, **kwargs})
        question = _text(messages[-1]["content"])
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            answer = self.answers.get(question, f"answer to {question}")
            if isinstance(answer, BaseException):
                raise answer
            for word in answer.split(" "):
                yield TextDelta(word + " ")
            yield Completion(answer, "stop", Usage(10, 5), Timings(0.001, 0.002), self.name)
        finally:
            self.in_flight -= 1

    async def aclose(self):
        self.closed = True


class DeadModel:
    """A server that refuses connections."""

    def __init__(self):
        self.requests = 0

    async def stream_chat(self, messages, **kwargs):
        self.requests += 1
        raise EngineUnreachable("cannot connect to the model server at http://dead/v1 (ConnectError)", hint="start it")
        yield  # an async generator, like the real client


def _text(content) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return content


def settings_for(tmp_path, *pairs):
    return load_settings(
        overrides=parse_assignments([f"paths.state_dir='{tmp_path / 'state'}'", "dialogue.system_prompt=''", *pairs]),
        environ={},
    )


def target(model, url="http://fake/v1", vision=True):
    return Target(url, lambda: model, "fake-model", vision)


def items(n, **kw):
    return [BatchItem(id=f"q{i}", question=f"question {i}", line=i, **kw) for i in range(1, n + 1)]


async def run(tmp_path, its, *targets, settings=None, cooldown=30.0, retry_failed=True, registry=None, **options):
    results = ResultsFile(tmp_path / "out.jsonl").open(print)
    stats0 = BatchStats(0, 0, 0)
    notes: list[str] = []
    progress = BatchProgress(stats0, quiet=False)
    progress.note = notes.append  # type: ignore[method-assign]
    runner = BatchRunner(
        its, results, settings or settings_for(tmp_path), options=BatchOptions(**options),
        retry_failed=retry_failed, registry=registry, progress=progress,
    )  # fmt: skip
    try:
        stats = await runner.run(Pool(list(targets), cooldown=cooldown))
    finally:
        results.close()
    return stats, records(tmp_path), notes


def records(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


# --- records, concurrency, failures --------------------------------------------------------------


async def test_every_item_gets_a_complete_record(tmp_path):
    model = EchoModel()
    stats, recs, _ = await run(tmp_path, items(3), target(model))
    assert (stats.done, stats.failed, stats.skipped, stats.requests) == (3, 0, 0, 3)
    assert sorted(r["id"] for r in recs) == ["q1", "q2", "q3"]
    r = next(r for r in recs if r["id"] == "q2")
    assert r["answer"] == "answer to question 2" and r["question"] == "question 2"
    assert r["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    assert r["error"] is None and r["attempts"] == 1 and r["tool_calls"] == [] and r["citations"] == []
    assert r["model"] == "fake-model" and r["endpoint"] == "http://fake/v1" and r["steps"] == 1
    assert r["finish_reason"] == "stop"
    assert 0 <= r["ttft_s"] <= r["latency_s"] and r["session_id"] is None and "score" not in r
    assert model.closed  # the pool closes its clients


async def test_concurrency_limit_is_respected(tmp_path):
    model = EchoModel(delay=0.02)
    stats, recs, _ = await run(tmp_path, items(20), target(model), concurrency=4)
    assert model.max_in_flight == 4 and stats.done == 20 and len(recs) == 20


async def test_items_are_independent_turns_with_their_own_system_prompt(tmp_path):
    model = EchoModel()
    its = items(3)
    its[0] = BatchItem("q1", "question 1", 1, system="Answer in French.")
    await run(tmp_path, its, target(model), system="Be brief.", concurrency=1)
    for req in model.requests:  # no history: the system prompt and this item's question only
        assert [m["role"] for m in req["messages"]] == ["system", "user"]
    systems = {_text(r["messages"][-1]["content"]): r["messages"][0]["content"] for r in model.requests}
    assert systems == {"question 1": "Answer in French.", "question 2": "Be brief.", "question 3": "Be brief."}


class Shop(Plugin):
    name = "shop"
    description = "A test shop"

    @tool
    def price(self, item: str) -> dict:
        """Price of an item.

        Args:
            item: Item name.
        """
        if item == "boom":
            raise RuntimeError("database is down")
        return {"item": item, "price": 3}

    @tool(risk=Risk.SIDE_EFFECTS)
    def order(self, item: str) -> str:
        """Place an order.

        Args:
            item: Item name.
        """
        return f"ordered {item}"

    async def handle_attachment(self, attachment, ctx):
        raise RuntimeError("the audio decoder crashed")


Shop.consumes = frozenset({"audio"})


async def test_failures_become_that_items_error_and_the_rest_finishes(tmp_path):
    (tmp_path / "cat.png").write_bytes(_png())
    (tmp_path / "broken.png").write_bytes(_png()[:40])
    (tmp_path / "voice.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40)
    registry = load_plugins(extra=[Shop], include_entry_points=False, data_root=tmp_path)
    model = EchoModel(answers={"rejected": RequestRejected("the server rejected the request (HTTP 400): bad", hint="fix it")})
    its = [
        BatchItem("ok", "fine", 1),
        BatchItem("rejected", "rejected", 2),
        BatchItem("image", "what is this?", 3, attachments=(str(tmp_path / "cat.png"),)),
        BatchItem("broken", "and this?", 4, attachments=(str(tmp_path / "broken.png"),)),
        BatchItem("missing", "and this?", 5, attachments=(str(tmp_path / "nope.png"),)),
        BatchItem("plugin", "transcribe", 6, attachments=(str(tmp_path / "voice.wav"),)),
    ]
    stats, recs, notes = await run(tmp_path, its, target(model), registry=registry)
    by_id = {r["id"]: r for r in recs}
    assert (stats.done, stats.failed) == (2, 4) and len(recs) == 6
    assert by_id["ok"]["error"] is None and by_id["image"]["error"] is None
    assert by_id["image"]["attachments"] == [{"filename": "cat.png", "kind": "image", "handled_by": "model"}]
    image_request = next(r for r in model.requests if _text(r["messages"][-1]["content"]) == "what is this?")
    assert image_request["messages"][-1]["content"][0]["type"] == "image_url"
    assert by_id["rejected"]["error"] == {
        "type": "RequestRejected", "message": "the server rejected the request (HTTP 400): bad", "hint": "fix it"
    }  # fmt: skip
    assert by_id["rejected"]["answer"] is None and by_id["rejected"]["attempts"] == 1  # not retried: it reached the model
    assert by_id["broken"]["error"]["type"] == "AttachmentError" and "not a readable image" in by_id["broken"]["error"]["message"]
    assert by_id["missing"]["error"]["type"] == "AttachmentError" and "does not exist" in by_id["missing"]["error"]["message"]
    assert by_id["plugin"]["error"]["type"] == "RuntimeError" and by_id["plugin"]["error"]["hint"]
    assert len(model.requests) == 3  # ok, rejected, image: the broken attachments never reached the model
    assert sum("failed:" in n for n in notes) == 4


async def test_tool_calls_are_recorded_with_the_policys_decision(tmp_path):
    registry = load_plugins(extra=[Shop], include_entry_points=False, data_root=tmp_path)
    model = ScriptedModel(
        call("shop_price", {"item": "tea"}, call_id="c1"),
        call("shop_order", {"item": "tea"}, call_id="c2"),  # side effects: "ask" -> non-interactive deny
        call("shop_price", {"item": "boom"}, call_id="c3"),
        "Tea costs 3.",
    )
    _, (rec,), _ = await run(tmp_path, items(1), target(model), registry=registry, concurrency=1)
    assert rec["error"] is None and rec["answer"] == "Tea costs 3." and rec["steps"] == 4
    c1, c2, c3 = rec["tool_calls"]
    assert (c1["name"], c1["arguments"], c1["decision"], c1["error"]) == ("shop_price", {"item": "tea"}, "auto", None)
    assert json.loads(c1["result"]) == {"item": "tea", "price": 3}
    assert (c2["name"], c2["decision"], c2["result"]) == ("shop_order", "denied-by-policy", c2["error"])
    assert "was not run" in c2["error"]
    assert c3["error"].startswith("error: RuntimeError: database is down")
    assert "tools" in model.requests[0] and rec["usage"]["completion_tokens"] > 0


async def test_approval_policy_can_allow_side_effects_in_batch(tmp_path):
    registry = load_plugins(extra=[Shop], include_entry_points=False, data_root=tmp_path)
    model = ScriptedModel(call("shop_order", {"item": "tea"}), "Ordered.")
    settings = settings_for(tmp_path, "approval.non_interactive='auto'")
    _, (rec,), _ = await run(tmp_path, items(1), target(model), registry=registry, settings=settings)
    assert rec["tool_calls"][0]["decision"] == "approved-by-policy" and rec["tool_calls"][0]["result"] == "ordered tea"


async def test_sessions_are_saved_only_when_asked(tmp_path):
    from assistant.runtime import open_store

    settings = settings_for(tmp_path)
    _, recs, _ = await run(tmp_path, items(2), target(EchoModel()), settings=settings)
    assert all(r["session_id"] is None for r in recs) and not (tmp_path / "state" / "sessions.db").exists()

    store = open_store(settings)
    results = ResultsFile(tmp_path / "saved.jsonl").open(print)
    runner = BatchRunner(items(2), results, settings, store=store)
    await runner.run(Pool([target(EchoModel())]))
    results.close()
    ids = [r["session_id"] for r in map(json.loads, (tmp_path / "saved.jsonl").read_text().splitlines())]
    assert all(ids) and len(set(ids)) == 2
    assert [m["role"] for m in store.history(ids[0])] == ["user", "assistant"]
    store.close()


# --- resume --------------------------------------------------------------------------------------


async def test_resume_skips_done_items_and_retries_failed_ones(tmp_path):
    flaky = EchoModel(answers={"question 2": RequestRejected("overloaded")})
    stats, _, _ = await run(tmp_path, items(4), target(flaky))
    assert (stats.done, stats.failed) == (3, 1)

    fixed = EchoModel()
    stats, recs, _ = await run(tmp_path, items(5), target(fixed))  # one new item in the input too
    assert (stats.skipped, stats.to_run, stats.done) == (3, 2, 2)
    assert sorted(_text(r["messages"][-1]["content"]) for r in fixed.requests) == ["question 2", "question 5"]
    assert [r["id"] for r in recs].count("q2") == 2 and recs[-1]["attempts"] in (1, 2)
    assert next(r for r in recs[4:] if r["id"] == "q2")["attempts"] == 2  # cumulative over runs

    again = EchoModel()
    stats, _, _ = await run(tmp_path, items(5), target(again))
    assert stats.to_run == 0 and stats.skipped == 5 and again.requests == []


async def test_no_retry_failed_leaves_failed_items_alone(tmp_path):
    await run(tmp_path, items(2), target(EchoModel(answers={"question 1": RequestRejected("no")})))
    model = EchoModel()
    stats, _, _ = await run(tmp_path, items(2), target(model), retry_failed=False)
    assert stats.skipped == 2 and model.requests == []


async def test_a_torn_last_line_is_repaired_and_that_item_runs_again(tmp_path, capsys):
    await run(tmp_path, items(3), target(EchoModel()), concurrency=1)
    path = tmp_path / "out.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    torn_id = json.loads(lines[-1])["id"]
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:25])  # a hard kill mid-write
    model = EchoModel()
    stats, recs, _ = await run(tmp_path, items(3), target(model))
    assert "incomplete line" in capsys.readouterr().out
    assert stats.to_run == 1 and [r["id"] for r in recs] == ["q1", "q2", "q3"] and recs[-1]["id"] == torn_id


# --- scoring -------------------------------------------------------------------------------------


async def test_scores_in_records_for_every_mode(tmp_path):
    answers = {"capital?": "The capital is Paris.", "sum?": "It is 42.", "exact?": "Paris", "judge me": "Lyon"}
    model = EchoModel(answers=answers)
    its = [
        BatchItem("n", "capital?", 1, expected=("the capital is paris",)),  # default mode: normalized
        BatchItem("c", "capital?", 2, expected=("paris",), match="contains"),
        BatchItem("r", "sum?", 3, expected=(r"\b42\b",), match="regex"),
        BatchItem("e", "exact?", 4, expected=("paris",), match="exact"),
        BatchItem("none", "no expectation", 5),
    ]
    _, recs, _ = await run(tmp_path, its, target(model))
    by_id = {r["id"]: r for r in recs}
    assert by_id["n"]["score"] == {"mode": "normalized", "correct": True} and by_id["n"]["expected"] == "the capital is paris"
    assert by_id["c"]["score"]["correct"] is True and by_id["r"]["score"]["correct"] is True
    assert by_id["e"]["score"] == {"mode": "exact", "correct": False}
    assert "score" not in by_id["none"] and "expected" not in by_id["none"]


async def test_judge_asks_the_same_model_greedily_and_parses_the_verdict(tmp_path):
    class Judging(EchoModel):
        def __init__(self, verdicts):
            super().__init__(name="judge-model")
            self.verdicts = verdicts

        async def stream_chat(self, messages, **kwargs):
            content = _text(messages[-1]["content"])
            if "Answer to grade:" in content:
                self.requests.append({"messages": messages, **kwargs})
                verdict = self.verdicts[content.split("Question: ")[1].split("\n")[0]]
                yield Completion(verdict, "stop", Usage(50, 1), Timings(0.001, 0.002), self.name)
                return
            async for event in super().stream_chat(messages, **kwargs):
                yield event

    model = Judging({"q yes": "Yes.", "q no": "No", "q unsure": "Hmm, hard to say"})
    its = [
        BatchItem("y", "q yes", 1, expected=("Paris",), match="judge"),
        BatchItem("n", "q no", 2, expected=("Paris",), match="judge"),
        BatchItem("u", "q unsure", 3, expected=("Paris", "paris"), match="judge"),
    ]
    settings = settings_for(tmp_path, "model.seed=11")
    stats, recs, _ = await run(tmp_path, its, target(model), settings=settings)
    by_id = {r["id"]: r for r in recs}
    assert by_id["y"]["score"]["correct"] is True and by_id["y"]["score"]["verdict"] == "Yes."
    assert by_id["n"]["score"]["correct"] is False
    assert by_id["u"]["score"]["correct"] is None and by_id["u"]["error"] is None
    assert by_id["y"]["score"]["usage"] == {"prompt_tokens": 50, "completion_tokens": 1}
    judge_requests = [r for r in model.requests if "Answer to grade:" in _text(r["messages"][-1]["content"])]
    assert len(judge_requests) == 3
    assert all(r["temperature"] == 0 and r["seed"] == 11 and r["max_tokens"] <= 64 for r in judge_requests)
    prompt = next(_text(r["messages"][-1]["content"]) for r in judge_requests if "Question: q yes" in _text(r["messages"][-1]["content"]))
    assert "Reference answer: Paris" in prompt and "Answer to grade: answer to q yes" in prompt
    assert stats.requests == 6  # 3 answers + 3 judge calls


async def test_a_failed_judge_call_fails_the_item_so_resume_retries_it(tmp_path):
    class BrokenJudge(EchoModel):
        async def stream_chat(self, messages, **kwargs):
            if "Answer to grade:" in _text(messages[-1]["content"]):
                raise RequestRejected("judge refused", hint="h")
            async for event in super().stream_chat(messages, **kwargs):
                yield event

    _, (rec,), _ = await run(tmp_path, [BatchItem("j", "q", 1, expected=("a",), match="judge")], target(BrokenJudge()))
    assert rec["error"]["message"] == "the judge request failed: judge refused" and rec["answer"] == "answer to q"


# --- endpoints -----------------------------------------------------------------------------------


async def test_items_spread_over_endpoints_least_busy_first(tmp_path):
    fast, slow = EchoModel(delay=0.005), EchoModel(delay=0.05)
    stats, recs, _ = await run(tmp_path, items(24), target(fast, "http://a/v1"), target(slow, "http://b/v1"), concurrency=4)
    assert stats.done == 24
    per = {url: sum(r["endpoint"] == url for r in recs) for url in ("http://a/v1", "http://b/v1")}
    # The slower server holds its items longer, so it is less often the least busy one.
    assert per["http://a/v1"] > per["http://b/v1"] >= 2, per


async def test_a_dead_endpoint_is_taken_out_and_its_items_go_to_the_other(tmp_path):
    dead, live = DeadModel(), EchoModel(delay=0.01)
    stats, recs, notes = await run(
        tmp_path, items(12), target(dead, "http://dead/v1"), target(live, "http://live/v1"), concurrency=4
    )
    assert (stats.done, stats.failed) == (12, 0)
    assert {r["endpoint"] for r in recs} == {"http://live/v1"} and len(live.requests) == 12
    assert 1 <= dead.requests <= 4  # only items picked before it was known to be down tried it
    retried = [r for r in recs if r["attempts"] == 2]
    assert len(retried) == dead.requests
    assert sum("http://dead/v1 is unreachable: taken out for 30 s" in n for n in notes) == 1


async def test_a_dead_endpoint_comes_back_after_its_cooldown(tmp_path):
    now = [0.0]
    pool = Pool([target(EchoModel(), "http://a/v1"), target(EchoModel(), "http://b/v1")], cooldown=10, clock=lambda: now[0])
    pool.open()
    a, b = pool.slots
    assert pool.mark_down(a) == 10 and pool.pick() is b and pool.pick() is b
    assert pool.mark_down(a) is None  # already down: the same outage, not a second failure
    now[0] = 10.5
    assert pool.pick(avoid={"http://b/v1"}) is a
    assert pool.mark_down(a) == 20  # failed again: longer
    assert pool.mark_down(b) == 10 and pool.pick() is None and pool.down() == ["http://a/v1", "http://b/v1"]
    pool.mark_up(a)
    assert pool.pick() is a


async def test_when_every_endpoint_is_down_the_batch_stops_keeping_finished_records(tmp_path):
    model = EchoModel(answers={"question 3": EngineUnreachable("cannot connect")})
    with pytest.raises(AllEndpointsDown, match="every endpoint is unreachable"):
        await run(tmp_path, items(5), target(model), concurrency=1)
    done = [r["id"] for r in records(tmp_path)]
    assert done == ["q1", "q2"]  # q3 is not recorded as failed: it runs again on resume


# --- options -------------------------------------------------------------------------------------


async def test_deterministic_options_and_extra_body_are_sent_with_every_request(tmp_path):
    model = EchoModel()
    settings = settings_for(tmp_path, "model.temperature=0", "model.seed=1234", "model.max_tokens=7")
    await run(tmp_path, items(3), target(model), settings=settings, extra_body={"ignore_eos": True})
    assert len(model.requests) == 3
    for req in model.requests:
        assert (req["temperature"], req["seed"], req["max_tokens"]) == (0.0, 1234, 7)
        assert req["extra"] == {"ignore_eos": True}


async def test_without_a_seed_none_is_sent(tmp_path):
    model = EchoModel()
    await run(tmp_path, items(1), target(model))
    assert model.requests[0]["seed"] is None and "extra" not in model.requests[0]


async def test_items_from_a_file_end_to_end(tmp_path):
    (tmp_path / "in.jsonl").write_text('{"id": "a", "question": "2+2?", "expected": "4"}\n')
    its = read_items(tmp_path / "in.jsonl")
    _, (rec,), _ = await run(tmp_path, its, target(EchoModel(answers={"2+2?": "4"})))
    assert rec["score"] == {"mode": "normalized", "correct": True} and rec["finished_at"].endswith("+00:00")


def _png() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()
