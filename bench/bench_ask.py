"""Benchmark: `assistant ask` against the same request sent straight to the same vLLM server.

Prints a table. Everything is measured in one run, interleaved, so the ratios hold on a noisy
machine even when the absolute numbers move:

  engine start-up   cold (empty vLLM cache dir) and warm (second start), via `assistant engine start`
  per request       time to first token and decode tokens/s for
                      raw     one streaming httpx request straight to the server
                      client  the assistant's ChatClient in-process (what every front end uses)
                      ask     `assistant ask --json` as a subprocess (includes Python start-up)

Usage:  python bench/bench_ask.py [--model bundled:smollm2|FOLDER] [--runs 5] [--max-tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.model.client import ChatClient, ClientConfig  # noqa: E402

PROMPT = "Explain in a few sentences why the sky is blue."
PLUGINS = ["utilities", "notes", "speech", "imagegen"]


def assistant(args: list[str], env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def start_engine(env: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = assistant(["engine", "start"], env)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"engine start failed:\n{out.stderr[-3000:]}")
    status = json.loads(assistant(["engine", "status", "--json"], env).stdout)
    return elapsed, status


async def raw_request(base_url: str, model: str, max_tokens: int) -> tuple[float, float, int]:
    """TTFT, decode tokens/s and completion tokens for one plain streaming request."""
    body = {
        "model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True,
        "stream_options": {"include_usage": True}, "temperature": 0, "max_tokens": max_tokens,
    }  # fmt: skip
    async with httpx.AsyncClient(timeout=300) as http:
        t0 = time.perf_counter()
        first = None
        tokens = 0
        async with http.stream("POST", f"{base_url}/chat/completions", json=body) as resp:
            async for line in resp.aiter_lines():
                if not line.startswith("data:") or line.endswith("[DONE]"):
                    continue
                chunk = json.loads(line[5:])
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
                if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or []):
                    first = first or time.perf_counter()
        end = time.perf_counter()
    return first - t0, (tokens - 1) / (end - first), tokens


async def client_request(base_url: str, model: str, max_tokens: int) -> tuple[float, float, int]:
    async with ChatClient(ClientConfig(base_url=base_url, model=model)) as client:
        done = await client.chat([{"role": "user", "content": PROMPT}], temperature=0, max_tokens=max_tokens)
    return done.timings.time_to_first_token_s, done.timings.tokens_per_s(done.usage.completion_tokens), done.usage.completion_tokens


def ask_request(env: dict, max_tokens: int) -> tuple[float, float, int, float]:
    t0 = time.perf_counter()
    # The same request as the raw path: no system prompt and no tools (plugins off), so the
    # difference is the assistant's own overhead (CLI start, dialogue loop, session saving).
    same_request = ["--set", "dialogue.system_prompt=''", "--set", f"plugins.disabled={json.dumps(PLUGINS)}"]
    out = assistant(["ask", "--json", "--temperature", "0", "--max-tokens", str(max_tokens), *same_request, PROMPT], env)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(f"ask failed:\n{out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    t = data["timings"]
    return t["time_to_first_token_s"], t["tokens_per_s"], data["usage"]["completion_tokens"], wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:smollm2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=128)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-ask-"))
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", XDG_STATE_HOME=str(work / "state"),
        XDG_CONFIG_HOME=str(work / "config"), VLLM_CACHE_ROOT=str(work / "vllm-cache"),
        ASSISTANT_MODEL__NAME=args.model,
    )  # fmt: skip
    assistant(["models", "prepare"], env)  # conversion is not part of start-up timing

    # A killed benchmark must not leave its background engine running.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rows: dict[str, list[tuple]] = {"raw": [], "client": [], "ask": []}
    try:
        cold, _ = start_engine(env)
        assistant(["engine", "stop"], env)
        warm, status = start_engine(env)
        base_url, model = status["base_url"], status["served_name"]
        print(f"engine start: cold {cold:.1f} s, warm {warm:.1f} s", file=sys.stderr)
        asyncio.run(raw_request(base_url, model, 8))  # one warm-up request
        for _ in range(args.runs):
            rows["raw"].append(asyncio.run(raw_request(base_url, model, args.max_tokens)))
            rows["client"].append(asyncio.run(client_request(base_url, model, args.max_tokens)))
            rows["ask"].append(ask_request(env, args.max_tokens))
    finally:
        assistant(["engine", "stop"], env)

    med = {k: [statistics.median(col) for col in zip(*v)] for k, v in rows.items()}
    print(f"\nmodel {model}; {args.runs} interleaved runs; max_tokens {args.max_tokens}; medians\n")
    print(f"| {'path':8} | {'TTFT ms':>8} | {'decode tok/s':>12} | {'tokens':>6} | {'TTFT vs raw':>11} | {'tok/s vs raw':>12} |")
    print(f"|{'-' * 10}|{'-' * 10}|{'-' * 14}|{'-' * 8}|{'-' * 13}|{'-' * 14}|")
    for name in ("raw", "client", "ask"):
        ttft, tps, toks = med[name][:3]
        print(
            f"| {name:8} | {ttft * 1000:8.1f} | {tps:12.1f} | {toks:6.0f} | "
            f"{ttft / med['raw'][0]:10.2f}x | {tps / med['raw'][1]:11.2f}x |"
        )
    print(f"\n`assistant ask` whole command (Python start-up, reuse check, request): {med['ask'][3]:.2f} s median")
    print("\n| engine start-up (assistant engine start) | seconds |\n|---|---|")
    print(f"| cold (empty vLLM cache dir) | {cold:.1f} |\n| warm (second start) | {warm:.1f} |")


if __name__ == "__main__":
    main()
