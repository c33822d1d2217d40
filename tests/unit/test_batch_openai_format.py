"""OpenAI Batch files in and out: request lines become items, records go out as OpenAI Batch
output lines (with the record inside, so a run resumes from them), per-item sampling applies."""

from __future__ import annotations

import base64
import io
import json

import pytest
from PIL import Image

from assistant.batch.inputs import BatchInputError, read_items
from assistant.batch.output import ResultsFile
from assistant.batch.pool import Pool
from assistant.batch.report import BatchProgress, BatchStats
from assistant.batch.runner import BatchOptions, BatchRunner

from .test_batch_runner import EchoModel, settings_for, target


def png_data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# Written as a user of the OpenAI Batch API would (the documented request shape).
REQUESTS = [
    {"custom_id": "req-1", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "Be brief."},
                                                    {"role": "user", "content": "What is 2+2?"}], "max_tokens": 50}},
    {"custom_id": "req-2", "method": "POST", "url": "/v1/chat/completions",
     "body": {"model": "x", "temperature": 0, "seed": 7,
              "messages": [{"role": "user", "content": [{"type": "text", "text": "Name a colour."}]}]}},
]


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_request_lines_become_items(tmp_path):
    rows = REQUESTS + [{"custom_id": "img", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "What colour?"}, {"type": "image_url", "image_url": {"url": png_data_url()}}]}]}}]
    items = {i.id: i for i in read_items(write(tmp_path / "in.jsonl", rows))}
    assert items["req-1"].question == "What is 2+2?" and items["req-1"].system == "Be brief." and items["req-1"].openai
    assert items["req-1"].model_settings == {"max_tokens": 50}
    assert items["req-2"].model_settings == {"temperature": 0, "seed": 7} and items["req-2"].system is None
    with open(items["img"].attachments[0], "rb") as fh:
        assert fh.read(4) == b"\x89PNG"  # the data: URL, written to a file the item attaches


@pytest.mark.parametrize("row, message", [
    ({"custom_id": "a", "method": "GET", "url": "/v1/models", "body": {"messages": [{"role": "user", "content": "x"}]}}, "only POST"),
    ({"custom_id": "b", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "and?"}]}}, "one user message"),
    ({"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {"tools": [{"type": "function"}],
        "messages": [{"role": "user", "content": "x"}]}}, "its own 'tools'"),
    ({"custom_id": "d", "method": "POST", "url": "/v1/chat/completions", "body": {"messages": [{"role": "user", "content": "x"}],
        "temperature": "hot"}}, "body.temperature must be a number"),
])  # fmt: skip
def test_bad_request_lines_are_named_with_their_line(tmp_path, row, message):
    with pytest.raises(BatchInputError, match=f"line 2: OpenAI Batch request: .*{message}"):
        read_items(write(tmp_path / "in.jsonl", [REQUESTS[0], row]))


async def run(tmp_path, items, model, **kw):
    results = ResultsFile(tmp_path / "out.jsonl", openai=True).open(print)
    runner = BatchRunner(items, results, settings_for(tmp_path), options=BatchOptions(),
                         progress=BatchProgress(BatchStats(0, 0, 0), quiet=True), **kw)  # fmt: skip
    try:
        await runner.run(Pool([target(model)], cooldown=1))
    finally:
        results.close()
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()], runner


async def test_output_lines_are_openai_batch_output_and_resume_reads_them(tmp_path):
    items = read_items(write(tmp_path / "in.jsonl", REQUESTS))
    model = EchoModel(answers={"Name a colour.": RuntimeError("boom")})
    lines, _ = await run(tmp_path, items, model)
    by_id = {line["custom_id"]: line for line in lines}
    ok = by_id["req-1"]
    assert ok["id"].startswith("batch_req_") and ok["error"] is None and ok["response"]["status_code"] == 200
    body = ok["response"]["body"]
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["content"].startswith("answer to What is 2+2?")
    assert body["usage"]["total_tokens"] == 15 and ok["assistant"]["id"] == "req-1"
    failed = by_id["req-2"]
    assert failed["response"] is None and failed["error"]["message"] and failed["assistant"]["error"]
    # The per-item sampling reached the model; the batch's own settings apply elsewhere.
    sent = {r["messages"][-1]["content"] if isinstance(r["messages"][-1]["content"], str) else "": r for r in model.requests}
    assert sent["What is 2+2?"]["max_tokens"] == 50
    # Resume: the finished item is skipped, the failed one runs again, from the OpenAI-format file.
    again = ResultsFile(tmp_path / "out.jsonl", openai=True).open(print)
    try:
        runner = BatchRunner(items, again, settings_for(tmp_path), options=BatchOptions())
        assert [i.id for i in runner.todo] == ["req-2"]
    finally:
        again.close()


async def test_a_bad_sampling_value_is_that_items_error(tmp_path):
    rows = [dict(REQUESTS[0], custom_id="neg", body={**REQUESTS[0]["body"], "temperature": -1})]
    items = read_items(write(tmp_path / "in.jsonl", rows))
    lines, _ = await run(tmp_path, items, EchoModel())
    assert lines[0]["error"] and "temperature" in lines[0]["error"]["message"]
