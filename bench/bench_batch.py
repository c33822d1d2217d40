"""Benchmark: `assistant batch` throughput against the same prompts sent straight to the same vLLM.

For each concurrency (default 1, 4, 16) the same N prompts go, interleaved in one run,

  raw    plain streaming httpx requests, N at a time under a semaphore (the ceiling)
  batch  the batch runner in-process: a Dialogue turn per item, the ChatClient, the records
         appended and fsynced to a JSONL file, the progress accounting (what `assistant batch` does
         after start-up)

and the table reports requests/s and output tokens/s for both and batch/raw (goal: >= 90%),
plus the client-side CPU time per request of each path (this process only; the engine is
another process). On a shared, busy machine the wall-clock ratios swing with other load; the
CPU column is what says whether the batch path itself could ever be the bottleneck.

Both paths send identical requests: the user message only (dialogue.system_prompt = '' and no
plugins, so no system prompt and no tools), temperature 0, the same fixed max_tokens, and
"ignore_eos": true so every answer is exactly max_tokens long. The Dialogue does not pass
request extras itself; the batch runner adds them (its --extra-body) to every model call.

Usage:  python bench/bench_batch.py [--model tiny|bundled:smollm2|FOLDER] [--items 32]
                                    [--max-tokens 64] [--concurrency 1,4,16] [--rounds 1]
The tiny model is the tests' random-weight VLM (built into .cache/test-models/ if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
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
from assistant.model.engine import EngineManager  # noqa: E402
from assistant.model.models import engine_device, resolve_model  # noqa: E402
from assistant.plugin_api.registry import PluginRegistry  # noqa: E402
from assistant.settings import load_settings  # noqa: E402

TEST_CACHE = ROOT / ".cache" / "test-models"


def prompts(n: int) -> list[str]:
    return [f"Question {i}: write a few sentences about the number {i}." for i in range(n)]


async def raw_run(base_url: str, model: str, texts: list[str], concurrency: int, max_tokens: int) -> tuple[float, int]:
    """(wall seconds, output tokens) for all prompts as plain streaming requests."""
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=600, limits=limits) as http:

        async def one(text: str) -> int:
            body = {
                "model": model, "messages": [{"role": "user", "content": text}], "stream": True,
                "stream_options": {"include_usage": True}, "temperature": 0.0, "max_tokens": max_tokens,
                "ignore_eos": True,
            }  # fmt: skip
            tokens = 0
            async with sem, http.stream("POST", f"{base_url}/chat/completions", json=body) as resp:
                resp.raise_for_status()
                async for line in resp.aiter_lines():
                    if line.startswith("data:") and not line.endswith("[DONE]"):
                        chunk = json.loads(line[5:])
                        if chunk.get("usage"):
                            tokens = chunk["usage"]["completion_tokens"]
            return tokens

        t0 = time.perf_counter()
        tokens = await asyncio.gather(*(one(t) for t in texts))
        return time.perf_counter() - t0, sum(tokens)


def batch_run(settings, base_url: str, model: str, texts: list[str], concurrency: int, work: Path) -> tuple[float, int]:
    """(wall seconds, output tokens) for the same prompts through the batch runner."""
    items = [BatchItem(id=f"b{i}", question=t, line=i + 1) for i, t in enumerate(texts)]
    out = work / f"out-{time.monotonic_ns()}.jsonl"
    results = ResultsFile(out).open(print)
    config = ClientConfig(base_url=base_url, model=model, max_retries=0)
    runner = BatchRunner(
        items, results, settings, registry=PluginRegistry(), prompts=None,
        options=BatchOptions(concurrency=concurrency, extra_body={"ignore_eos": True}),
    )  # fmt: skip
    try:
        stats = asyncio.run(runner.run(Pool([Target(base_url, lambda: ChatClient(config), model, None, False)])))
    finally:
        results.close()
    if stats.failed:
        bad = next(r for r in map(json.loads, out.read_text().splitlines()) if r["error"])
        sys.exit(f"batch items failed: {bad['error']}")
    return stats.elapsed(), stats.completion_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (the tests' VLM), 'bundled:smollm2', or a folder/hub id")
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved repetitions per concurrency (medians reported)")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    model_name = args.model
    if model_name == "tiny":
        from assistant.testing.tiny_vlm import build_tiny_vlm

        model_name = str(build_tiny_vlm(TEST_CACHE / "tiny-vlm"))
    settings = load_settings(
        overrides={
            "model": {"name": model_name, "temperature": 0.0, "max_tokens": args.max_tokens},
            "dialogue": {"system_prompt": ""},
            "engine": {"cpu_kv_cache_gib": 1},
            "paths": {"state_dir": str(work / "state"), "cache_dir": str(TEST_CACHE / "assistant-cache")},
        },
        environ={},
    )
    device = engine_device(settings)
    spec = resolve_model(settings, device, print)
    manager = EngineManager(settings)
    t0 = time.perf_counter()
    state = manager.start(spec, device, background=False)
    print(f"engine ready in {time.perf_counter() - t0:.1f} s: {state.served_name} at {state.base_url}", file=sys.stderr)
    texts = prompts(args.items)
    rows = []
    try:
        asyncio.run(raw_run(state.base_url, state.served_name, texts[:2], 2, 4))  # warm-up
        for c in levels:
            raw, ours = [], []
            for r in range(args.rounds):
                order = ("raw", "batch") if r % 2 == 0 else ("batch", "raw")  # alternate who goes first
                for path in order:
                    cpu = time.process_time()
                    if path == "raw":
                        wall, tokens = asyncio.run(raw_run(state.base_url, state.served_name, texts, c, args.max_tokens))
                        raw.append((wall, tokens, time.process_time() - cpu))
                    else:
                        wall, tokens = batch_run(settings, state.base_url, state.served_name, texts, c, work)
                        ours.append((wall, tokens, time.process_time() - cpu))
                print(f"concurrency {c} round {r + 1}: raw {raw[-1][0]:.2f} s, batch {ours[-1][0]:.2f} s", file=sys.stderr)
            rows.append((c, raw, ours))
    finally:
        manager.stop(state)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmodel {state.served_name} ({device}); {args.items} prompts; max_tokens {args.max_tokens} "
          f"with ignore_eos; temperature 0; {args.rounds} interleaved round(s): medians, and the ratio of the "
          "best (least disturbed) runs\n")  # fmt: skip
    print(
        "| concurrency | raw req/s | batch req/s | raw out tok/s | batch out tok/s | tokens raw/batch "
        "| batch/raw (median) | batch/raw (best) | client CPU ms/req raw | client CPU ms/req batch |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c, raw, ours in rows:
        raw_s, ours_s = statistics.median(r[0] for r in raw), statistics.median(r[0] for r in ours)
        raw_cpu, ours_cpu = (statistics.median(r[2] for r in runs) * 1000 / args.items for runs in (raw, ours))
        raw_tok, ours_tok = raw[0][1], ours[0][1]
        print(
            f"| {c} | {args.items / raw_s:.2f} | {args.items / ours_s:.2f} | {raw_tok / raw_s:.1f} | "
            f"{ours_tok / ours_s:.1f} | {raw_tok}/{ours_tok} | {raw_s / ours_s:.0%} | "
            f"{min(r[0] for r in raw) / min(r[0] for r in ours):.0%} | {raw_cpu:.1f} | {ours_cpu:.1f} |"
        )


if __name__ == "__main__":
    main()
