"""Long documents through `assistant ask` on a real vLLM server (the tiny random-weight VLM).

The document is over 50 times the model's context. With random weights the answers mean
nothing, so these tests check the mechanics against the server's own request counter: every
chunk is read (one request each), then one reduce, then the turn's answer; the cost estimate
and progress are shown; a repeated question is served from the cache; retrieve mode sends
only the closest passages.
"""

from __future__ import annotations

import json
import random
import re
import subprocess

import httpx
import pytest

from assistant.documents.loaders import load_document
from assistant.documents.tokens import tokenizer_counter

from .conftest import ASSISTANT, cli_env

pytestmark = pytest.mark.vllm

WORDS = ("kettle valve boiler thermostat pressure circuit relay fuse element gasket filter pump hose "
         "switch sensor timer display button cable socket plug panel cover screw bracket seal").split()


def write_long_document(path, paragraphs: int) -> None:
    rng = random.Random(7)
    parts = []
    for p in range(paragraphs):
        if p % 40 == 0:
            parts.append(f"## Section {p // 40 + 1}")
        sentences = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."
                     for _ in range(rng.randint(3, 6))]
        if p == paragraphs * 2 // 3:
            sentences.append("The service code for the Model K kettle is 7731.")
        parts.append(" ".join(sentences))
    path.write_text("# Service manual\n\n" + "\n\n".join(parts) + "\n")


def served_requests(base_url: str) -> float:
    metrics = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    return sum(float(m) for m in re.findall(r'^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))


@pytest.fixture(scope="module")
def long_doc(tmp_path_factory, tiny_vlm_dir):
    path = tmp_path_factory.mktemp("docs") / "manual.md"
    write_long_document(path, 1400)
    tokens = sum(tokenizer_counter(tiny_vlm_dir)([b.text for b in load_document(path).blocks]))
    return path, tokens


def ask(tmp_path, cache_dir, engine, doc, mode, *extra, json_output=True):
    cmd = [*ASSISTANT, "ask", "What is the service code of the Model K kettle?", "--attach", str(doc), "--read", mode,
           "--base-url", engine.base_url, *(["--json"] if json_output else []), "--temperature", "0", "--max-tokens", "16",
           "--set", "plugins.documents.map_max_tokens=48", "--set", "plugins.documents.answer_max_tokens=32",
           "--set", "plugins.documents.concurrency=16", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env=cli_env(tmp_path, cache_dir, HF_HUB_OFFLINE="1", ASSISTANT_PLUGINS__DOCUMENTS__MAX_READ_CHUNKS="2000"))


def test_read_all_reads_every_chunk_of_a_document_50_times_the_context(tmp_path, cache_dir, tiny_engine, long_doc):
    doc, tokens = long_doc
    context = httpx.get(tiny_engine.base_url + "/models", timeout=10).json()["data"][0]["max_model_len"]
    assert tokens >= 50 * context, f"the test document must be 50x the context ({tokens} tokens vs {context})"

    before = served_requests(tiny_engine.base_url)
    r = ask(tmp_path, cache_dir, tiny_engine, doc, "read-all", json_output=False)  # progress shows on stderr
    assert r.returncode == 0, r.stderr[-3000:]
    chunks = int(re.search(r"\[manual.md: text → documents: read all (\d+) parts of manual.md", r.stderr).group(1))
    assert chunks >= 50 * context // 2000  # chunks are at most 2000 tokens
    requests = served_requests(tiny_engine.base_url) - before
    assert chunks + 1 <= requests <= chunks + 3, (requests, chunks)  # every chunk, (reduce,) the answer
    # the cost estimate came before the reading, then progress
    estimate = r.stderr.index(f"{chunks} chunks, ~")
    assert "prompt tokens" in r.stderr[estimate:estimate + 200]
    assert re.search(r"read %d chunks in [0-9.]+ s" % chunks, r.stderr[estimate:])

    # The same question again: every chunk comes from the cache.
    before = served_requests(tiny_engine.base_url)
    again = ask(tmp_path, cache_dir, tiny_engine, doc, "read-all")
    assert again.returncode == 0, again.stderr[-3000:]
    title = json.loads(again.stdout)["attachments"][0]["title"]
    assert f"{chunks} cached" in title
    assert served_requests(tiny_engine.base_url) - before <= 3


def test_retrieve_mode_sends_only_the_closest_passages(tmp_path, cache_dir, tiny_engine, long_doc):
    doc, _ = long_doc
    before = served_requests(tiny_engine.base_url)
    r = ask(tmp_path, cache_dir, tiny_engine, doc, "retrieve", "--set", "plugins.documents.retrieve_k=3")
    assert r.returncode == 0, r.stderr[-3000:]
    (att,) = json.loads(r.stdout)["attachments"]
    assert att["title"] == "3 passages retrieved from manual.md"
    assert json.loads(r.stdout)["model"] == tiny_engine.served_name  # --base-url alone: the server names it
    assert served_requests(tiny_engine.base_url) - before == 1  # just the answer
    # the passage with the service code is among them (the question names it)
    session = json.loads(r.stdout)["session_id"]
    shown = subprocess.run([*ASSISTANT, "sessions", "show", session], capture_output=True, text=True,
                           env=cli_env(tmp_path, cache_dir), timeout=120).stdout
    assert "The service code for the Model K kettle is 7731." in shown


def test_the_model_calls_kb_search_on_a_real_server(tmp_path, cache_dir, tiny_engine):
    """A forced kb_search call from the real server runs against a real Chroma collection."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "returns.md").write_text("# Returns\n\n## Refunds\nRefunds are paid within 14 days.\n")
    env = cli_env(tmp_path, cache_dir, HF_HUB_OFFLINE="1")
    ingest = subprocess.run([*ASSISTANT, "kb", "ingest", str(docs)], capture_output=True, text=True, env=env, timeout=300)
    assert ingest.returncode == 0 and "1 added" in ingest.stdout, ingest.stderr
    # Random weights pick random arguments, sometimes none at all: try a few seeds until the
    # server's call has a query; then the search runs against the real collection (or names a
    # collection that does not exist and gets the error saying how to create it).
    calls = []
    for seed in range(7, 13):
        r = subprocess.run([*ASSISTANT, "ask", "When are refunds paid?", "--tool", "kb_search", "--base-url",
                            tiny_engine.base_url, "--json", "--temperature", "1", "--seed", str(seed), "--max-tokens", "300"],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        call = json.loads(r.stdout)["tool_calls"][0]
        assert call["name"] == "kb_search"
        calls.append(call)
        if "query" in call["arguments"] and not call.get("error"):
            break
    result = calls[-1].get("result") or ""
    assert "Passages" in result or "No passage" in result or "kb ingest" in result, calls
