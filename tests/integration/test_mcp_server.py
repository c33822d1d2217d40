"""`assistant mcp serve` as another agent meets it: a real process with the customer-service
pack enabled, over stdio and streamable HTTP, driven by the official SDK's client. No model."""

from __future__ import annotations

import json
import queue
import re
import socket
import subprocess
import sys
import threading
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from .conftest import ASSISTANT, ROOT, cli_env

SERVE = [*ASSISTANT[1:], "mcp", "serve", "--set", 'plugins.enabled=["orders", "faq", "tickets", "handoff"]']
ANA = {"order_id": "A1001", "email": "ana.lima@example.com"}  # from plugins/support/data/orders_sample.sql
HELLO = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}


def params(tmp_path: Path, cache_dir: Path, *flags: str, **env: str) -> StdioServerParameters:
    env = cli_env(tmp_path, cache_dir, **env)
    return StdioServerParameters(command=sys.executable, args=[*SERVE, *flags], env=env, cwd=ROOT)


@asynccontextmanager
async def over_stdio(tmp_path: Path, cache_dir: Path, *flags: str, mode: str = "auto", **env: str):
    """A client on a fresh server process; the server's stderr lands in tmp_path/stderr.log."""
    with open(tmp_path / "stderr.log", "w") as log:
        async with Client(stdio_client(params(tmp_path, cache_dir, *flags, **env), errlog=log), mode=mode) as client:
            yield client


async def test_stdio_lists_the_pack_and_runs_its_tools_with_their_checks(tmp_path, cache_dir):
    # mode="legacy": the initialize handshake desktop hosts use today.
    async with over_stdio(tmp_path, cache_dir, "--allow-side-effects", mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"orders_lookup", "faq_answer", "tickets_create", "tickets_get", "handoff_request"} <= set(tools)
        lookup, create = tools["orders_lookup"], tools["tickets_create"]
        assert lookup.input_schema["required"] == ["order_id", "email"]
        assert lookup.input_schema["properties"]["tracking"]["type"] == "boolean"
        assert lookup.annotations.read_only_hint is True and lookup.title == "Orders: lookup"
        assert create.annotations.read_only_hint is False and create.annotations.destructive_hint is True
        assert set(create.input_schema["required"]) == {"subject", "description", "category"}

        found = await client.call_tool("orders_lookup", ANA)
        assert not found.is_error
        order = json.loads(found.content[0].text)
        assert order["verified"] is True and order["status"] == "delivered" and order["customer_first_name"] == "Ana"
        assert found.structured_content == order

        # The identity check lives in the tool, so it holds over MCP: nothing about the order leaks.
        refused = await client.call_tool("orders_lookup", {**ANA, "email": "someone.else@example.com"})
        assert not refused.is_error and refused.structured_content["verified"] is False
        assert "No order matches" in refused.content[0].text
        assert "Ana" not in refused.content[0].text and "dripper" not in refused.content[0].text

        invalid = await client.call_tool("orders_lookup", {"order_id": "A1001"})
        assert invalid.is_error and "email: Field required" in invalid.content[0].text

        raised = await client.call_tool("orders_lookup", {**ANA, "email": "not an address"})  # the tool raises
        assert raised.is_error and "ValueError: 'not an address' is not an email address" in raised.content[0].text

        ticket = await client.call_tool(
            "tickets_create",
            {"subject": "Teapot arrived broken", "description": "Spout snapped.", "category": "damaged_item",
             "order_id": "A1007"},
        )  # still serving after the failure
        assert not ticket.is_error and ticket.structured_content["ticket"] == "T-1001"
        said = ticket.content[1]
        assert said.text == "Your ticket number is T-1001." and said.annotations.audience == ["user"]
    log = (tmp_path / "stderr.log").read_text()
    assert "assistant MCP server: " in log and "tool orders_lookup failed: ValueError" in log


def test_stdout_carries_only_protocol_and_ask_means_deny_without_the_flag(tmp_path, cache_dir):
    """Raw JSON-RPC lines, as a host writes them: every line the server prints must be one."""
    p = params(tmp_path, cache_dir)
    lines = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": HELLO},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "tickets_create", "arguments": {}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
         "params": {"name": "orders_lookup", "arguments": {"order_id": 5}}},
    ]  # fmt: skip
    proc = subprocess.Popen([p.command, *p.args], env=p.env, cwd=p.cwd, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in lines))
        proc.stdin.flush()
        replies: dict = {}
        while len(replies) < 4 and (line := proc.stdout.readline()):
            message = json.loads(line)  # a stray print on stdout would fail here
            replies[message["id"]] = message
        proc.stdin.close()  # the host hangs up: the server ends, cleanly
        rest, stderr = proc.stdout.read(), proc.stderr.read()
        proc.wait()
    finally:
        watchdog.cancel()
    assert proc.returncode == 0 and rest == "", stderr
    assert set(replies) == {1, 2, 3, 4}
    assert replies[1]["result"]["serverInfo"]["name"] == "assistant"
    listed = {t["name"] for t in replies[2]["result"]["tools"]}
    assert "orders_lookup" in listed and "tickets_create" not in listed
    assert "--allow-side-effects" in replies[3]["error"]["message"]
    assert replies[4]["result"]["isError"] is True and "order_id" in replies[4]["result"]["content"][0]["text"]
    hidden = re.search(r"not exposed: (.*) \(\[approval\] side_effects = 'ask'", stderr)[1].split(", ")
    assert {"handoff_request", "tickets_create", "tickets_update"} <= set(hidden) and "orders_lookup" not in hidden


class Served:
    """`assistant mcp serve --http` in the background; its stderr read as it comes."""

    def __init__(self, argv: list[str], env: dict) -> None:
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stderr], daemon=True).start()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {pattern!r} on stderr within {timeout} s: {self.seen}") from None
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def http_server(tmp_path, cache_dir):
    # deny must win over --allow-side-effects; no --token: one is generated and printed.
    served = Served([sys.executable, *SERVE, "--http", "--port", "0", "--allow-side-effects"],
                    cli_env(tmp_path, cache_dir, ASSISTANT_APPROVAL__SIDE_EFFECTS="deny"))  # fmt: skip
    try:
        token = served.wait_for(r"token \(generated.*\): (\S+)")[1]
        url = served.wait_for(r"listening on (http://127\.0\.0\.1:\d+/mcp)")[1]
        yield url, token
    finally:
        served.stop()


async def test_streamable_http_needs_the_token_and_deny_hides_tools(http_server):
    url, token = http_server
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["orders_lookup"].annotations.read_only_hint is True
            assert tools["orders_lookup"].input_schema["required"] == ["order_id", "email"]
            assert not set(tools) & {"tickets_create", "tickets_update", "handoff_request"}
            with pytest.raises(MCPError, match=r"not exposed: \[approval\] side_effects = 'deny'"):
                await client.call_tool("tickets_create", {"subject": "s", "description": "d", "category": "other"})
            assert (await client.call_tool("orders_lookup", ANA)).structured_content["verified"] is True
    hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": HELLO}
    accept = {"Accept": "application/json, text/event-stream"}
    with httpx.Client(timeout=10) as http:
        for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"}):
            response = http.post(url, json=hello, headers={**accept, **auth})
            assert response.status_code == 401 and response.headers["www-authenticate"].startswith("Bearer")
        assert http.post(url, json=hello, headers={**accept, "Authorization": f"Bearer {token}"}).status_code == 200


async def test_a_port_in_use_is_a_clear_error(tmp_path):
    from assistant.errors import UsageError
    from assistant.mcp.server import ToolServer, serve_http
    from assistant.plugin_api.registry import PluginRegistry
    from assistant.settings import ApprovalSettings

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}") as err:
            await serve_http(ToolServer(PluginRegistry(), ApprovalSettings()).build(), "127.0.0.1", port, "t", print)
    assert "--port" in err.value.hint
