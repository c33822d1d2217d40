"""One MCP server, connected with the official SDK's `mcp.Client` over stdio or streamable HTTP.

The SDK's client is an async context manager built on anyio task groups, which must be entered
and left by one task. So each connection runs in a task of its own that enters the client,
lists the tools and then waits to be closed; tool calls from any task of the same event loop go
through the open session (it multiplexes concurrent requests). The server's stderr goes to a
temp file, so a server that fails to start or crashes is reported with the end of what it said.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from typing import Any

from ..errors import EXIT_MODEL, AssistantError
from .config import ServerConfig


class McpServerError(AssistantError):
    """An MCP server did not start, went away or broke the protocol (the chat goes on without it)."""

    exit_code = EXIT_MODEL


class McpConnection:
    def __init__(self, config: ServerConfig, *, startup_timeout: float, call_timeout: float) -> None:
        self.config = config
        self.startup_timeout = config.startup_timeout or startup_timeout
        self.call_timeout = config.call_timeout or call_timeout
        self.tools: list[Any] = []  # mcp.types.Tool, as listed at start
        self.started_s: float | None = None
        self._client: Any = None
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Future | None = None
        self._close = asyncio.Event()
        self._errlog = tempfile.TemporaryFile()  # the server's stderr (only its fileno is used)
        self._gone = False  # the server closed the connection (exited, crashed, or the HTTP session ended)

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> list[Any]:
        """Start the server and list its tools; McpServerError (with its stderr) if it fails or
        takes longer than the startup timeout."""
        t0 = time.perf_counter()
        self._ready = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._run(), name=f"mcp server {self.config.name}")
        try:
            self.tools = await asyncio.wait_for(asyncio.shield(self._ready), self.startup_timeout)
        except asyncio.TimeoutError:
            error = self._error(f"did not start within {self.startup_timeout:g} s",
                                f"check that it runs on its own (`assistant mcp test {self.config.name}`), or raise "
                                f"startup_timeout in [mcp.servers.{self.config.name}]")  # fmt: skip
            await self.aclose()
            raise error from None
        except asyncio.CancelledError:  # the turn was interrupted while the server started
            await self.aclose()
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the transport raised: say it plainly
            await asyncio.sleep(0.2)  # the last words on stderr of a server that just exited
            error = self._error(f"failed to start: {_reason(exc)}", self._start_hint())
            await self.aclose()
            raise error from None
        self.started_s = time.perf_counter() - t0
        return self.tools

    async def _run(self) -> None:
        from mcp import Client
        from mcp.types import Implementation

        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(stack)
                client = Client(transport, read_timeout_seconds=self.call_timeout,
                                client_info=Implementation(name="assistant", version=_version()))  # fmt: skip
                await stack.enter_async_context(client)
                tools, cursor = [], None
                while True:  # every page of the listing
                    page = await client.list_tools(cursor=cursor)
                    tools += page.tools
                    cursor = page.next_cursor
                    if not cursor:
                        break
                self._client = client
                self._ready.set_result(tools)
                await self._close.wait()
        except BaseException as exc:  # noqa: BLE001 - reported through start() or the next call
            if self._ready is not None and not self._ready.done():
                if isinstance(exc, Exception):
                    self._ready.set_exception(exc)
                else:
                    self._ready.cancel()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        c = self.config
        if c.url:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = await stack.enter_async_context(create_mcp_http_client(headers=dict(c.headers)))
            return streamable_http_client(c.url, http_client=http)
        from mcp.client.stdio import StdioServerParameters, stdio_client

        env = dict(c.env)
        # A server installed in the assistant's own environment is found without activating it.
        here = os.path.dirname(sys.executable)
        env.setdefault("PATH", here + os.pathsep + os.environ.get("PATH", ""))
        params = StdioServerParameters(command=c.command, args=list(c.args), env=env, cwd=c.cwd or None)
        return stdio_client(params, errlog=self._errlog)

    async def aclose(self) -> None:
        self._close.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            # A server that never finished its handshake has nothing to close politely.
            await asyncio.wait_for(asyncio.shield(task), 10 if self._client is not None else 0.01)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - closing: nothing left to report to
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    @property
    def alive(self) -> bool:
        return self._client is not None and self._task is not None and not self._task.done() and not self._gone

    # --- calls ------------------------------------------------------------------------------

    async def call(self, tool: str, arguments: dict) -> Any:
        """One `tools/call`; McpServerError when the server is gone or does not answer in time."""
        if not self.alive:
            raise self._error("is not running (it exited or crashed)", self._start_hint())
        try:
            return await asyncio.wait_for(self._client.call_tool(tool, arguments), self.call_timeout)
        except asyncio.TimeoutError:
            raise self._error(f"did not answer {tool} within {self.call_timeout:g} s",
                              f"raise call_timeout in [mcp.servers.{self.config.name}] if it is just slow") from None  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            from mcp import MCPError

            if not self.alive or "connection closed" in str(exc).lower():
                self._gone = True
                await asyncio.sleep(0.2)  # its last words on stderr
                raise self._error(f"went away during {tool}: {_reason(exc)}", self._start_hint()) from None
            if isinstance(exc, MCPError):  # a protocol-level error the server chose to send
                raise McpServerError(f"MCP server {self.config.name}: {tool} failed: {exc}") from None
            raise

    # --- reporting --------------------------------------------------------------------------

    def stderr_tail(self, lines: int = 15) -> str:
        try:  # only the end: a chatty server's log may be large
            fd = self._errlog.fileno()
            size = os.fstat(fd).st_size
            text = os.pread(fd, 8000, max(0, size - 8000)).decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _error(self, what: str, hint: str) -> McpServerError:
        tail = self.stderr_tail()
        detail = f"\n  its stderr ends with:\n    " + "\n    ".join(tail.splitlines()) if tail else ""
        return McpServerError(f"MCP server {self.config.name} ({self.config.describe()}) {what}{detail}", hint=hint)

    def _start_hint(self) -> str:
        if self.config.url:
            return "check the URL and headers (a token?) and that the server is up"
        return f"run `{self.config.describe()}` yourself to see why, or `assistant mcp test {self.config.name}`"


def _reason(exc: BaseException) -> str:
    """The innermost useful message (anyio wraps failures in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    if isinstance(exc, FileNotFoundError):
        text = f"command not found ({exc.filename or exc})"
    return text


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("assistant")
    except PackageNotFoundError:
        return "0"
