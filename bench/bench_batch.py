"""Benchmark: `assistant batch` throughput against the same prompts sent straight to the same vLLM.

For each concurrency (default 1, 4, 16) the same N prompts go, interleaved in one run,

  raw    plain streaming httpx requests, N at a time under a semaphore (the ceiling)
  batch  the batch runner in-process: a Dialogue turn per item, the ChatClient, the records
         appended and fsynced to a JSONL file, the progress accounting (what `assistant batch` does
         after start-up)

and the table reports requests/s and output tokens/s for both and batch/raw (goal: >= 90%),
plus the client-side CPU time per request of each path (this process only; the engine is
another process), the TCP connections each path opened (at most the concurrency when
connections are reused) and the machine's load average around each concurrency level.

Fairness, because on 2 CPU cores the engine's speed swings with anything else that runs:
  - the two paths send byte-identical request bodies: checked before the engine starts, by
    sending both through a recording transport (the run stops if they differ). The body is the
    user message only (dialogue.system_prompt = '' and no plugins: no system prompt, no tools),
    temperature 0, the same max_tokens, and "ignore_eos": true so every answer is exactly
    max_tokens long (the batch runner adds it to every model call as its --extra-body);
  - each concurrency level starts with an untimed pass at that concurrency (vLLM's first
    batches of a new size are slower), then the rounds alternate which path goes first;
  - medians over the rounds, and the ratio of the best (least disturbed) round of each path.

Usage:  python bench/bench_batch.py [--model tiny|bundled:smollm2|FOLDER] [--items 32]
                                    [--max-tokens 64] [--concurrency 1,4,16] [--rounds 3]
The tiny model is the tests' random-weight VLM (built into .cache/test-models/ if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.batch.inputs import BatchItem  # noqa: E402
from assistant.batch.output import ResultsFile  # noqa: E402
from assistant.batch.pool import Pool, Target  # noqa: E402
from assistant.batch.runner import BatchOptions, BatchRunner  # noqa: E402
from assistant.model.client import ChatClient, ClientConfig  # noqa: E402
from assistant.plugin_api.registry import PluginRegistry  # noqa: E402
from assistant.settings import load_settings  # noqa: E402

TEST_CACHE = ROOT / ".cache" / "test-models"
EXTRA_BODY = {"ignore_eos": True}


class CountingTransport(httpx.AsyncHTTPTransport):
    """The default transport, counting the TCP connections it opens (a client that leaves a
    response unread cannot reuse its connection: that shows here as one per request)."""

    opened: set[int]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.opened = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.opened.update(id(c) for c in self._pool.connections)  # private, but this is only a diagnostic
        return response


def prompts(n: int) -> list[str]:
    return [f"Question {i}: write a few sentences about the number {i}." for i in range(n)]


def bench_settings(model_name: str, max_tokens: int, work: Path):
    return load_settings(
        overrides={
            "model": {"name": model_name, "temperature": 0.0, "max_tokens": max_tokens},
            "dialogue": {"system_prompt": ""},
            "engine": {"cpu_kv_cache_gib": 1},
            "paths": {"state_dir": str(work / "state"), "cache_dir": str(TEST_CACHE / "assistant-cache")},
        },
        environ={},
    )


def raw_body(model: str, text: str, max_tokens: int) -> dict:
    """What the batch path sends for one item (check_identical_requests holds the two equal)."""
    return {
        "model": model, "messages": [{"role": "user", "content": text}], "stream": True,
        "stream_options": {"include_usage": True}, "temperature": 0.0, "max_tokens": max_tokens, **EXTRA_BODY,
    }  # fmt: skip


async def raw_run(
    base_url: str, model: str, texts: list[str], concurrency: int, max_tokens: int, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[float, int, int]:
    """(wall seconds, output tokens, connections opened) for all prompts as plain streaming requests."""
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    counting = CountingTransport(limits=limits)
    async with httpx.AsyncClient(timeout=600, transport=transport or counting) as http:

        async def one(text: str) -> int:
            tokens = 0
            async with sem, http.stream("POST", f"{base_url}/chat/completions", json=raw_body(model, text, max_tokens)) as resp:
                resp.raise_for_status()
                async for line in resp.aiter_lines():
                    if line.startswith("data:") and not line.endswith("[DONE]"):
                        chunk = json.loads(line[5:])
                        if chunk.get("usage"):
                            tokens = chunk["usage"]["completion_tokens"]
            return tokens

        t0 = time.perf_counter()
        tokens = await asyncio.gather(*(one(t) for t in texts))
        return time.perf_counter() - t0, sum(tokens), len(counting.opened)


def batch_run(
    settings, base_url: str, model: str, texts: list[str], concurrency: int, work: Path,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[float, int, int]:  # fmt: skip
    """(wall seconds, output tokens, connections opened) for the same prompts through the batch runner."""
    items = [BatchItem(id=f"b{i}", question=t, line=i + 1) for i, t in enumerate(texts)]
    out = work / f"out-{time.monotonic_ns()}.jsonl"
    results = ResultsFile(out).open(print)
    config = ClientConfig(base_url=base_url, model=model, max_retries=0)
    counting = CountingTransport()
    runner = BatchRunner(
        items, results, settings, registry=PluginRegistry(), prompts=None,
        options=BatchOptions(concurrency=concurrency, extra_body=dict(EXTRA_BODY)),
    )  # fmt: skip
    try:
        target = Target(base_url, lambda: ChatClient(config, transport=transport or counting), model, None, False)
        stats = asyncio.run(runner.run(Pool([target])))
    finally:
        results.close()
    if stats.failed:
        bad = next(r for r in map(json.loads, out.read_text().splitlines()) if r["error"])
        sys.exit(f"batch items failed: {bad['error']}")
    return stats.elapsed(), stats.completion_tokens, len(counting.opened)


def check_identical_requests(settings, model: str, texts: list[str], max_tokens: int, work: Path) -> list[bytes]:
    """Send the prompts down both paths into a recording transport; the request bodies (bytes,
    in prompt order) must be equal. Returns them; exits if they differ."""
    sent: dict[str, list[bytes]] = {"raw": [], "batch": []}
    answer = (
        'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"length"}]}\n\n'
        'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\ndata: [DONE]\n\n'
    ).encode()

    def recorder(path: str) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            sent[path].append(request.content)
            return httpx.Response(200, content=answer, headers={"content-type": "text/event-stream"})

        return httpx.MockTransport(handle)

    url = "http://bench.invalid/v1"
    asyncio.run(raw_run(url, model, texts, 1, max_tokens, transport=recorder("raw")))
    batch_run(settings, url, model, texts, 1, work, transport=recorder("batch"))
    if sent["raw"] != sent["batch"]:
        diff = next((r, b) for r, b in zip(sent["raw"], sent["batch"]) if r != b) if len(sent["raw"]) == len(sent["batch"]) else None
        sys.exit(f"the raw and batch paths send different requests: {diff or (len(sent['raw']), len(sent['batch']))}")
    return sent["raw"]


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (the tests' VLM), 'bundled:smollm2', or a folder/hub id")
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions per concurrency (medians reported)")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    from assistant.model.engine import EngineManager
    from assistant.model.models import engine_device, resolve_model

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    model_name = args.model
    if model_name == "tiny":
        from assistant.testing.tiny_vlm import build_tiny_vlm

        model_name = str(build_tiny_vlm(TEST_CACHE / "tiny-vlm"))
    settings = bench_settings(model_name, args.max_tokens, work)
    texts = prompts(args.items)
    device = engine_device(settings)
    spec = resolve_model(settings, device, print)
    bodies = check_identical_requests(settings, spec.served_name, texts, args.max_tokens, work)
    print(f"raw and batch send byte-identical requests ({len(bodies)} checked), e.g. {bodies[0].decode()}", file=sys.stderr)
    manager = EngineManager(settings)
    t0 = time.perf_counter()
    state = manager.start(spec, device, background=False)
    print(f"engine ready in {time.perf_counter() - t0:.1f} s: {state.served_name} at {state.base_url}", file=sys.stderr)
    rows = []
    try:
        for c in levels:
            load_before = _load()
            warm = texts[: max(2 * c, 4)]
            asyncio.run(raw_run(state.base_url, state.served_name, warm, c, args.max_tokens))  # untimed
            raw, ours = [], []
            for r in range(args.rounds):
                order = ("raw", "batch") if r % 2 == 0 else ("batch", "raw")  # alternate who goes first
                for path in order:
                    cpu = time.process_time()
                    if path == "raw":
                        wall, tokens, conns = asyncio.run(raw_run(state.base_url, state.served_name, texts, c, args.max_tokens))
                        raw.append((wall, tokens, time.process_time() - cpu, conns))
                    else:
                        wall, tokens, conns = batch_run(settings, state.base_url, state.served_name, texts, c, work)
                        ours.append((wall, tokens, time.process_time() - cpu, conns))
                print(
                    f"concurrency {c} round {r + 1}: raw {raw[-1][0]:.2f} s, batch {ours[-1][0]:.2f} s (load {_load()})",
                    file=sys.stderr,
                )
            rows.append((c, raw, ours, load_before, _load()))
    finally:
        manager.stop(state)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmodel {state.served_name} ({device}); {args.items} prompts; max_tokens {args.max_tokens} "
          f"with ignore_eos; temperature 0; {args.rounds} interleaved round(s) after an untimed warm-up pass per "
          "concurrency: medians, and the ratio of the best (least disturbed) runs\n")  # fmt: skip
    print(
        "| concurrency | raw req/s | batch req/s | raw out tok/s | batch out tok/s | tokens raw/batch "
        "| batch/raw (median) | batch/raw (best) | client CPU ms/req raw | client CPU ms/req batch "
        "| connections raw/batch | load 1/5/15 min before -> after |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for c, raw, ours, before, after in rows:
        raw_s, ours_s = statistics.median(r[0] for r in raw), statistics.median(r[0] for r in ours)
        raw_cpu, ours_cpu = (statistics.median(r[2] for r in runs) * 1000 / args.items for runs in (raw, ours))
        raw_tok, ours_tok = raw[0][1], ours[0][1]
        print(
            f"| {c} | {args.items / raw_s:.2f} | {args.items / ours_s:.2f} | {raw_tok / raw_s:.1f} | "
            f"{ours_tok / ours_s:.1f} | {raw_tok}/{ours_tok} | {raw_s / ours_s:.0%} | "
            f"{min(r[0] for r in raw) / min(r[0] for r in ours):.0%} | {raw_cpu:.1f} | {ours_cpu:.1f} | "
            f"{max(r[3] for r in raw)}/{max(r[3] for r in ours)} | {before} -> {after} |"
        )


if __name__ == "__main__":
    main()
