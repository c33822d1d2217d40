"""The configured MCP servers as a tool provider of the plugin registry.

Nothing starts when the registry is built (`assistant --help`, `sessions list` never pay for a
server). The first turn that needs tools starts every enabled server at once, each with its own
timeout, and their tools join the registry as `<server>_<tool>`. A server that fails to start
is reported (with its stderr) as a load failure and the chat goes on without it; it is tried
again in the next process, not on every turn.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from ..errors import PluginError
from ..events import Progress
from ..plugin_api.registry import LoadFailure
from .config import ServerConfig, configured_servers


class McpTools:
    def __init__(self, mcp_settings: Any, data_root: Path) -> None:
        self.settings = mcp_settings
        self.data_root = data_root
        self.servers, self.config_errors = configured_servers(mcp_settings)
        self.connections: dict[str, Any] = {}  # name -> McpConnection, for the servers that started
        self._lock: asyncio.Lock | None = None
        self._done = False

    async def connect(self, registry: Any, emit: Callable[[Any], None] = lambda e: None) -> None:
        if self._done:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # concurrent first turns (batch, serve) start the servers once
            if self._done:
                return
            for name, error in self.config_errors:
                registry.failures.append(LoadFailure(name, "[mcp.servers]", error))
            if self.servers:
                names = ", ".join(s.name for s in self.servers)
                emit(Progress("mcp", f"starting MCP servers: {names}", 0.0))
                results = await asyncio.gather(*(self._start(s) for s in self.servers), return_exceptions=True)
                for server, outcome in zip(self.servers, results):
                    self._register(registry, server, outcome, emit)
            self._done = True

    async def _start(self, server: ServerConfig) -> Any:
        from .connection import McpConnection

        conn = McpConnection(server, startup_timeout=self.settings.startup_timeout, call_timeout=self.settings.call_timeout)
        await conn.start()
        return conn

    def _register(self, registry: Any, server: ServerConfig, outcome: Any, emit) -> None:
        from .tools import McpServerPlugin, build_specs

        source = f"MCP server ({server.transport}: {server.describe()})"
        if isinstance(outcome, BaseException):
            text = str(outcome)  # with its hint and the server's stderr
            registry.failures.append(LoadFailure(server.name, source, text))
            emit(Progress("mcp", f"left out: {text}", 1.0))
            return
        plugin = McpServerPlugin(server, self.data_root / f"mcp-{server.name}")
        try:
            registry.add(plugin, source, build_specs(plugin, server, outcome))
        except PluginError as exc:  # a name clash with a plugin or another server: that server is left out
            registry.failures.append(LoadFailure(server.name, source, str(exc)))
            emit(Progress("mcp", f"left out MCP server {server.name}: {exc}", 1.0))
            asyncio.ensure_future(outcome.aclose())
            return
        self.connections[server.name] = outcome
        emit(Progress("mcp", f"MCP server {server.name}: {len(outcome.tools)} tools ({outcome.started_s:.1f} s)", 1.0))

    async def aclose(self) -> None:
        conns, self.connections = list(self.connections.values()), {}
        await asyncio.gather(*(c.aclose() for c in conns), return_exceptions=True)
