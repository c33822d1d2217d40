"""Benchmark: a tool call through MCP against the same tool as a plugin, in one run.

The tool is the built-in calculator (`utilities_calculate`). Paths, interleaved round by round:

  plugin      the registry's ToolSpec called in-process, as the dialogue calls a plugin tool
  mcp-stdio   the same tool served by `assistant mcp serve` (a subprocess), called through the
              assistant's MCP client ([mcp.servers.calc], stdio): `calc_utilities_calculate`
  mcp-http    the same, with `assistant mcp serve --http` (streamable HTTP on 127.0.0.1, token)

and, for each path, a whole dialogue turn around the call (a scripted model: call, then answer)
so the loop's own cost per call shows too. No model server is involved: this measures what MCP
adds to a call, not the model. Server start-up (and the client's handshake) is reported apart.

Usage:  python bench/bench_mcp.py [--calls 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.dialogue.turn import Dialogue  # noqa: E402
from assistant.events import TurnFinished  # noqa: E402
from assistant.plugin_api.contract import ToolContext  # noqa: E402
from assistant.runtime import load_registry  # noqa: E402
from assistant.settings import load_settings  # noqa: E402
from assistant.testing.fake_model import ScriptedModel, call  # noqa: E402

ONLY_UTILITIES = ["notes", "documents", "kb", "imagegen", "speech"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(state: Path, servers: dict | None = None):
    return load_settings(overrides={"paths": {"state_dir": str(state)}, "plugins": {"disabled": ONLY_UTILITIES},
                                    "dialogue": {"system_prompt": ""}, "mcp": {"servers": servers or {}}},
                         environ={})  # fmt: skip


async def time_calls(registry, name: str, n: int) -> list[float]:
    spec = registry.tools[name]
    ctx = ToolContext(spec.plugin.name, None, spec.plugin.data_dir, lambda e: None)
    out = []
    for i in range(n):
        kwargs = spec.parse_arguments({"expression": f"{i} * 7 + 3"})
        t = time.perf_counter()
        text, _ = await spec.call(kwargs, ctx)
        out.append(time.perf_counter() - t)
        assert text.endswith(str(i * 7 + 3)), text
    return out


async def time_turns(settings, registry, name: str, n: int) -> list[float]:
    out = []
    for i in range(n):
        model = ScriptedModel(call(name, {"expression": f"{i} + 1"}), "done")
        dialogue = Dialogue(model, settings=settings, registry=registry)
        t = time.perf_counter()
        async for event in dialogue.turn("calc"):
            if isinstance(event, TurnFinished):
                assert event.tool_calls == 1
        out.append(time.perf_counter() - t)
    return out


def ms(values: list[float], q: float) -> str:
    values = sorted(values)
    return f"{values[min(len(values) - 1, int(q * len(values)))] * 1000:.2f}"


async def main_async(args) -> int:
    state = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    serve = [sys.executable, "-m", "assistant", "--set", f"plugins.disabled={ONLY_UTILITIES!r}".replace("'", '"'),
             "--set", f"paths.state_dir='{state / 'server'}'", "mcp", "serve"]  # fmt: skip
    port, token = _free_port(), secrets.token_urlsafe(16)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    http = subprocess.Popen(serve + ["--http", "--port", str(port), "--token", token], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    plugin_settings = settings_for(state / "plugin")
    stdio_settings = settings_for(state / "stdio", {"calc": {"command": serve[0], "args": serve[1:], "read_only": ["*"]}})
    http_settings = settings_for(state / "http", {"calc": {"url": f"http://127.0.0.1:{port}/mcp",
                                                           "headers": {"Authorization": f"Bearer {token}"}}})  # fmt: skip
    paths = {"plugin": (plugin_settings, "utilities_calculate"), "mcp-stdio": (stdio_settings, "calc_utilities_calculate"),
             "mcp-http": (http_settings, "calc_utilities_calculate")}  # fmt: skip
    registries, startup = {}, {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # the HTTP server is up when its port answers
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.2)
        for label, (settings, _tool) in paths.items():
            t = time.perf_counter()
            reg = load_registry(settings)
            await reg.connect()
            if reg.failures:
                raise SystemExit(f"{label}: {reg.failures[0].error}")
            startup[label] = time.perf_counter() - t
            registries[label] = reg
        calls = {label: [] for label in paths}
        turns = {label: [] for label in paths}
        for label, (settings, tool) in paths.items():  # warm-up, untimed
            await time_calls(registries[label], tool, 10)
        for r in range(args.rounds):
            order = list(paths) if r % 2 == 0 else list(reversed(paths))
            for label in order:
                settings, tool = paths[label]
                calls[label] += await time_calls(registries[label], tool, args.calls)
                turns[label] += await time_turns(settings, registries[label], tool, max(20, args.calls // 4))
    finally:
        for reg in registries.values():
            await reg.aclose()
        http.terminate()
        http.wait(10)
    base = statistics.median(calls["plugin"])
    base_turn = statistics.median(turns["plugin"])
    print(f"tool: utilities_calculate; {args.rounds} rounds x {args.calls} calls per path; cpu: {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print()
    print("| path | call p50 ms | call p95 ms | vs plugin (p50) | turn p50 ms | turn vs plugin | start-up s |")
    print("|---|---|---|---|---|---|---|")
    for label in paths:
        c, t = calls[label], turns[label]
        start = "-" if label == "plugin" else f"{startup[label]:.2f}"
        print(f"| {label} | {ms(c, 0.5)} | {ms(c, 0.95)} | {statistics.median(c) / base:.1f}x | {ms(t, 0.5)} | "
              f"{statistics.median(t) / base_turn:.2f}x | {start} |")  # fmt: skip
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
