"""The MCP client against real server processes: the test server written with the SDK's
MCPServer (tests/mcp_servers/shop_server.py) over stdio and streamable HTTP, and the third-party
`mcp-server-time` from the registry. No model here: tests/integration/test_mcp_on_vllm.py drives
the same tools through a real vLLM server."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.plugin_api.contract import ToolContext
from assistant.runtime import load_registry
from assistant.settings import load_settings

from ..conftest import ROOT

SHOP = str(ROOT / "tests" / "mcp_servers" / "shop_server.py")


def shop(*extra: str, **table) -> dict:
    return {"command": sys.executable, "args": [SHOP, *extra], **table}


def settings_with(tmp_path: Path, servers: dict, **mcp):
    return load_settings(overrides={"paths": {"state_dir": str(tmp_path)}, "mcp": {"servers": servers, **mcp}}, environ={})


async def call(registry, name: str, **arguments):
    spec = registry.tools[name]
    ctx = ToolContext(spec.plugin.name, None, spec.plugin.data_dir, lambda e: None)
    return await spec.call(spec.parse_arguments(arguments), ctx)


async def test_servers_start_in_parallel_and_their_tools_join_the_registry(tmp_path):
    settings = settings_with(tmp_path, {"shop": shop(env={"SHOP_CODE": "${SHOP_TEST_CODE:-W7}"}), "time": {"command": "mcp-server-time"}})
    registry = load_registry(settings)
    assert "shop_stock_level" not in registry.tools  # nothing starts before the first use
    events = []
    try:
        await registry.connect(events.append)
        assert {"shop_stock_level", "shop_reserve_item", "shop_swatch", "time_get_current_time", "time_convert_time"} <= set(registry.tools)
        assert "utilities_calculate" in registry.tools  # beside the plugins' tools
        assert registry.tools["shop_stock_level"].risk.value == "read_only"
        assert registry.tools["shop_reserve_item"].risk.value == "side_effects"
        assert registry.tools["time_get_current_time"].schema["properties"]["timezone"]["type"] == "string"
        text, _ = await call(registry, "shop_stock_level", item="dripper")
        assert text == "dripper: 12 in stock (warehouse code W7)"  # ${VAR:-default} expanded into its env
        text, _ = await call(registry, "time_get_current_time", timezone="Asia/Tokyo")
        assert json.loads(text)["timezone"] == "Asia/Tokyo"
        _, output = await call(registry, "shop_swatch", colour="blue")
        assert output.files[0].mime == "image/png" and output.files[0].data[:4] == b"\x89PNG"
        assert any("MCP server shop: 5 tools" in e.message for e in events)
    finally:
        await registry.aclose()


async def test_a_server_that_fails_to_start_or_hangs_is_reported_and_the_rest_work(tmp_path):
    settings = settings_with(tmp_path, {"shop": shop(), "broken": shop("--crash-on-start"), "stuck": shop("--hang", startup_timeout=4),
                                        "missing": {"command": "no-such-mcp-server-xyz"}})  # fmt: skip
    registry = load_registry(settings)
    t0 = time.perf_counter()
    try:
        await registry.connect()
        assert time.perf_counter() - t0 < 25  # in parallel: the hang costs its timeout once
        failures = {f.name: f.error for f in registry.failures}
        assert "cannot open stock.db: permission denied" in failures["broken"]  # its stderr, quoted
        assert "did not start within 4 s" in failures["stuck"] and "startup_timeout" in failures["stuck"]
        assert "missing" in failures
        assert "shop_stock_level" in registry.tools
    finally:
        await registry.aclose()


async def test_a_crash_mid_call_and_a_raising_tool_are_clear_errors(tmp_path):
    from assistant.mcp.connection import McpServerError
    from assistant.mcp.tools import McpToolError

    registry = load_registry(settings_with(tmp_path, {"shop": shop()}))
    try:
        await registry.connect()
        with pytest.raises(McpToolError):
            await call(registry, "shop_boom")
        with pytest.raises(McpServerError, match="went away during crash") as crashed:
            await call(registry, "shop_crash")
        assert "crashing on purpose" in str(crashed.value)
        with pytest.raises(McpServerError, match="is not running"):
            await call(registry, "shop_stock_level", item="kettle")
    finally:
        await registry.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_shop():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, SHOP, "--http", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    proc.wait(10)


async def test_streamable_http_server(tmp_path, http_shop):
    registry = load_registry(settings_with(tmp_path, {"web": {"url": http_shop, "headers": {"X-Test": "1"}}}))
    try:
        await registry.connect()
        assert not registry.failures, registry.failures
        text, _ = await call(registry, "web_stock_level", item="grinder")
        assert text.startswith("grinder: 3 in stock")
    finally:
        await registry.aclose()


def test_mcp_test_and_plugins_list_commands(tmp_path, http_shop):
    config = tmp_path / "c.toml"
    config.write_text(f'[mcp.servers.shop]\ncommand = {json.dumps(sys.executable)}\nargs = [{json.dumps(SHOP)}]\n'
                      f'[mcp.servers.web]\nurl = "{http_shop}"\n[mcp.servers.broken]\ncommand = {json.dumps(sys.executable)}\n'
                      f'args = [{json.dumps(SHOP)}, "--crash-on-start"]\n')  # fmt: skip
    env = {"XDG_CONFIG_HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "assistant", "--config", str(config), *args], env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    out = run("mcp", "test", "--json", "shop", "web", "broken", "--call", "stock_level", "--args", '{"item": "dripper"}')
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert out.returncode == 3  # one server failed
    assert rows["shop"]["ok"] and rows["shop"]["call"]["result"].startswith("dripper: 12")
    assert rows["web"]["ok"] and {t["name"] for t in rows["web"]["tools"]} >= {"web_stock_level", "web_reserve_item"}
    assert not rows["broken"]["ok"] and "permission denied" in rows["broken"]["error"]
    listed = json.loads(run("plugins", "list", "--json").stdout)
    by_name = {p["name"]: p for p in listed["plugins"]}
    assert {t["name"]: t["risk"] for t in by_name["shop"]["tools"]}["shop_reserve_item"] == "side_effects"
    assert by_name["web"]["source"].startswith("MCP server (http:")
    assert [f["name"] for f in listed["failures"]] == ["broken"]
    doctor = run("plugins", "doctor", "--no-model")
    assert "✓ shop: 5 tools from the MCP server" in doctor.stdout and "✗ broken: failed to load" in doctor.stdout


async def test_batch_items_call_mcp_tools_and_side_effects_follow_the_policy(tmp_path):
    """Batch (like ask and the TUI) runs turns through the same registry: MCP tools are called
    by concurrent items, and a side-effect MCP tool is denied with nobody to ask."""
    from assistant.batch.inputs import BatchItem
    from assistant.batch.output import ResultsFile
    from assistant.batch.pool import Pool, Target
    from assistant.batch.report import BatchProgress, BatchStats
    from assistant.batch.runner import BatchOptions, BatchRunner
    from assistant.testing.fake_model import ScriptedModel, call as tool_call

    log = tmp_path / "reservations.log"
    settings = settings_with(tmp_path, {"shop": shop(env={"SHOP_LOG": str(log)})})
    registry = load_registry(settings)

    def responder(messages, tools):
        last = messages[-1]
        if last["role"] == "tool":
            return f"The shop says: {last['content']}"
        question = last["content"] if isinstance(last["content"], str) else last["content"][-1]["text"]
        item = question.split()[-1].rstrip("?")
        if question.startswith("Reserve"):
            return tool_call("shop_reserve_item", {"item": item, "quantity": 1})
        return tool_call("shop_stock_level", {"item": item})

    model = ScriptedModel(responder=responder)
    items = [BatchItem(f"q{n}", f"How many {item}?", n + 1) for n, item in enumerate(["dripper", "kettle", "grinder"])]
    items.append(BatchItem("r1", "Reserve one dripper", 4))
    results = ResultsFile(tmp_path / "out.jsonl").open(print)
    runner = BatchRunner(items, results, settings, options=BatchOptions(), registry=registry,
                         progress=BatchProgress(BatchStats(0, 0, 0), quiet=True))  # fmt: skip
    try:
        await runner.run(Pool([Target("http://fake/v1", lambda: model, "fake", False)], cooldown=1))
    finally:
        results.close()
        await registry.aclose()
    recs = {r["id"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())}
    assert recs["q0"]["tool_calls"][0]["name"] == "shop_stock_level" and "dripper: 12 in stock" in recs["q0"]["answer"]
    assert "kettle: 0 in stock" in recs["q1"]["answer"] and "grinder: 3 in stock" in recs["q2"]["answer"]
    reserve = recs["r1"]["tool_calls"][0]
    assert reserve["name"] == "shop_reserve_item" and reserve["decision"] == "denied-by-policy"
    assert not log.exists()  # the server never ran it
