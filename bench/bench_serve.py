"""Benchmark: `assistant serve` throughput against the raw vLLM server it fronts, same prompts.

For each concurrency (default 1, 4, 16) the same N short prompts go, interleaved in one run,

  raw    straight to the vLLM server's /v1/chat/completions (the ceiling)
  serve  to `assistant serve` (a subprocess, as it is deployed) in front of that same server:
         auth, request parsing, a session saved per request, a Dialogue turn, the ChatClient,
         and the answer streamed back as OpenAI chunks

with the one load generator (streaming httpx requests, N at a time under a semaphore), and the
table reports requests/s and output tokens/s for both and serve/raw (goal: >= 90%), plus the
server process's CPU time per request and the machine's load average around each level.

Fairness:
  - no tools offered: every plugin is disabled and dialogue.system_prompt = '', so the model
    request `assistant serve` makes is the raw one (the user message, temperature 0, the same
    max_tokens); greedy decoding then gives both paths the same answers, which the token
    columns show;
  - each concurrency level starts with an untimed pass through each path, then the rounds
    alternate which path goes first; medians, and the ratio of the best (least disturbed) rounds.

Usage:  python bench/bench_serve.py [--model bundled:smollm2|FOLDER] [--items 32]
                                    [--max-tokens 32] [--concurrency 1,4,16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# The batch bench's prompts and engine settings, so the two benches measure the same work.
from bench_batch import _load, bench_settings, prompts  # noqa: E402

KEY = "bench-key"


async def run_level(url: str, model: str, texts: list[str], concurrency: int, max_tokens: int, headers: dict) -> tuple[float, int]:
    """(wall seconds, output tokens) for all prompts as streaming requests, `concurrency` at a time."""
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits, headers=headers) as http:

        async def one(text: str) -> int:
            body = {
                "model": model, "messages": [{"role": "user", "content": text}], "stream": True,
                "stream_options": {"include_usage": True}, "temperature": 0.0, "max_tokens": max_tokens,
            }  # fmt: skip
            tokens = 0
            async with sem, http.stream("POST", f"{url}/chat/completions", json=body) as resp:
                resp.raise_for_status()
                async for line in resp.aiter_lines():
                    if line.startswith("data:") and not line.endswith("[DONE]"):
                        chunk = json.loads(line[5:])
                        if "error" in chunk:
                            sys.exit(f"{url} failed mid-stream: {chunk['error']}")
                        if chunk.get("usage"):
                            tokens = chunk["usage"]["completion_tokens"]
            return tokens

        t0 = time.perf_counter()
        tokens = await asyncio.gather(*(one(t) for t in texts))
        return time.perf_counter() - t0, sum(tokens)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(engine_url: str, work: Path) -> tuple[subprocess.Popen, str]:
    """`assistant serve` in front of the engine, no plugins, no system prompt; returns (process, its /v1 URL)."""
    from assistant.plugin_api.registry import load_plugins

    every_plugin = sorted(load_plugins(data_root=work / "probe", enabled={"orders", "faq", "tickets", "handoff"}).plugins)
    env = dict(
        os.environ, XDG_CONFIG_HOME=str(work / "config"), XDG_STATE_HOME=str(work / "state"),
        ASSISTANT_PLUGINS__DISABLED=" ".join(every_plugin), ASSISTANT_DIALOGUE__SYSTEM_PROMPT="",
        ASSISTANT_SERVE__API_KEY=KEY, ASSISTANT_SERVE__MAX_CONCURRENT="64", PYTHONUNBUFFERED="1",
    )  # fmt: skip
    port = free_port()
    log = open(work / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--base-url", engine_url, "--port", str(port)],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            sys.exit(f"assistant serve exited {proc.returncode}: {(work / 'serve.log').read_text()}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            sys.exit("assistant serve did not become healthy in 120 s")
        time.sleep(0.2)
    card = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {KEY}"}).json()["data"][0]
    if card["assistant"]["tools"]:
        sys.exit(f"tools are still offered: {card['assistant']['tools']}")
    return proc, url + "/v1"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc; Linux only)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="bundled:smollm2", help="model.name of the engine: 'bundled:smollm2', a folder or a hub id")
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions per concurrency (medians reported)")
    args = ap.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]

    from assistant.model.engine import EngineManager
    from assistant.model.models import engine_device, resolve_model

    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    settings = bench_settings(args.model, args.max_tokens, work / "engine")
    texts = prompts(args.items)
    device = engine_device(settings)
    spec = resolve_model(settings, device, print)
    manager = EngineManager(settings)
    t0 = time.perf_counter()
    state = manager.start(spec, device, background=False)
    print(f"engine ready in {time.perf_counter() - t0:.1f} s: {state.served_name} at {state.base_url}", file=sys.stderr)
    serve = None
    rows = []
    try:
        serve, serve_url = start_serve(state.base_url, work)
        paths = {
            "raw": (state.base_url, state.served_name, {}),
            "serve": (serve_url, "assistant", {"Authorization": f"Bearer {KEY}"}),
        }
        for c in levels:
            load_before = _load()
            warm = texts[: max(2 * c, 4)]
            for url, model, headers in paths.values():  # untimed: vLLM's first batches of a size are slower
                asyncio.run(run_level(url, model, warm, c, args.max_tokens, headers))
            runs: dict[str, list] = {"raw": [], "serve": []}
            for r in range(args.rounds):
                for name in ("raw", "serve") if r % 2 == 0 else ("serve", "raw"):  # alternate who goes first
                    cpu = cpu_seconds(serve.pid)
                    wall, tokens = asyncio.run(run_level(*paths[name][:2], texts, c, args.max_tokens, paths[name][2]))
                    runs[name].append((wall, tokens, cpu_seconds(serve.pid) - cpu))
                print(
                    f"concurrency {c} round {r + 1}: raw {runs['raw'][-1][0]:.2f} s, serve {runs['serve'][-1][0]:.2f} s "
                    f"(load {_load()})", file=sys.stderr,
                )  # fmt: skip
            rows.append((c, runs, load_before, _load()))
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(timeout=30)
        manager.stop(state)
        shutil.rmtree(work, ignore_errors=True)

    print(f"\nmodel {state.served_name} ({device}); {args.items} prompts per level; max_tokens {args.max_tokens}; "
          f"temperature 0; no tools, no system prompt; {args.rounds} interleaved round(s) after an untimed warm-up "
          "pass per path and concurrency: medians, and the ratio of the best (least disturbed) rounds\n")  # fmt: skip
    print(
        "| concurrency | raw req/s | serve req/s | raw out tok/s | serve out tok/s | tokens raw/serve "
        "| serve/raw (median) | serve/raw (best) | serve CPU ms/req | load 1/5/15 min before -> after |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for c, runs, before, after in rows:
        raw, ours = runs["raw"], runs["serve"]
        raw_s, ours_s = statistics.median(r[0] for r in raw), statistics.median(r[0] for r in ours)
        raw_tok, ours_tok = statistics.median(r[1] for r in raw), statistics.median(r[1] for r in ours)
        serve_cpu = statistics.median(r[2] for r in ours) * 1000 / args.items
        print(
            f"| {c} | {args.items / raw_s:.2f} | {args.items / ours_s:.2f} | {raw_tok / raw_s:.1f} | {ours_tok / ours_s:.1f} "
            f"| {raw_tok:.0f}/{ours_tok:.0f} | {raw_s / ours_s:.0%} | {min(r[0] for r in raw) / min(r[0] for r in ours):.0%} "
            f"| {serve_cpu:.1f} | {before} -> {after} |"
        )
    print("\nPer-round seconds raw/serve: " + "; ".join(
        f"c={c} " + ", ".join(f"{a[0]:.2f}/{b[0]:.2f}" for a, b in zip(runs["raw"], runs["serve"])) for c, runs, _, _ in rows
    ))  # fmt: skip


if __name__ == "__main__":
    main()
