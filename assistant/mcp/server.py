"""`assistant mcp serve`: the enabled plugins' tools, offered to other agents over MCP.

Every tool of the plugin registry is listed under its registry name (`orders_lookup`), with
its JSON schema, description and annotations (`readOnlyHint` from the tool's risk level). A
call is validated by the tool's own argument model and run exactly as the dialogue runs it
(`Plugin.ensure_setup` on first use, then `ToolSpec.call`), so checks that live in a tool,
such as the orders plugin's identity check, hold for MCP callers too. A tool's failure, or
arguments that do not fit, come back as an `isError` result the calling model can act on; the
server keeps serving.

Approval. Nobody sits at this end to answer an 'ask', so the `[approval]` levels decide what
is exposed, once, at start-up:
  - 'auto': listed and callable;
  - 'deny': neither listed nor callable, whatever the flags;
  - 'ask': becomes `[approval] non_interactive` (deny by default, so tools with side effects
    are left out), except that `--allow-side-effects` exposes the side-effect tools at 'ask':
    the calling agent's host then asks its user, guided by the annotations (`readOnlyHint=false`
    and `destructiveHint=true` on every side-effect tool, since the risk level cannot tell an
    additive change from a destructive one).
Tools that [mcp.servers] bring into the chat are not served again: only the plugins' own.

Transports: stdio (stdout carries only protocol messages; warnings go to stderr, and the SDK
points fd 1 at stderr while serving) and streamable HTTP, on 127.0.0.1 by default, where every
request needs `Authorization: Bearer <token>` (a token is generated when none is given) and a
non-loopback address needs an explicit token.

Tools run with `session_id=None` and no model: tools that count per conversation (the orders
plugin's failed identity checks) count per server process, and tools that need the model
(documents_read) say so in their error.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import ipaddress
import json
import secrets
import sys
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from .. import __version__
from ..errors import UsageError
from ..events import Progress
from ..plugin_api.contract import OutputFile, Risk, ToolContext, ToolOutput
from ..plugin_api.registry import PluginRegistry
from ..plugin_api.tools import ArgumentError, ToolSpec
from ..settings import ApprovalSettings, Settings

SERVER_NAME = "assistant"
HTTP_PATH = "/mcp"
LOOPBACK_NAMES = ("localhost",)

Write = Callable[[str], Any]


def _stderr(text: str) -> None:
    sys.stderr.write(text)  # looked up per call: tests and the stdio transport swap sys.stderr
    sys.stderr.flush()


# --- what is exposed -----------------------------------------------------------------------


def exposure(risk: Risk, approval: ApprovalSettings, allow_side_effects: bool) -> str:
    """Why a tool of this risk level is not exposed over MCP; "" when it is (see the docstring)."""
    level = approval.read_only if risk is Risk.READ_ONLY else approval.side_effects
    if level == "auto":
        return ""
    if level == "deny":
        return f"[approval] {risk.value} = 'deny'"
    if approval.non_interactive == "auto" or (allow_side_effects and risk is Risk.SIDE_EFFECTS):
        return ""
    if risk is Risk.READ_ONLY:
        return "[approval] read_only = 'ask' and non_interactive = 'deny'; set read_only = 'auto' to expose it"
    return ("[approval] side_effects = 'ask' and non_interactive = 'deny'; "
            "restart with --allow-side-effects to let the calling host ask its user")  # fmt: skip


def tool_title(spec: ToolSpec) -> str:
    """orders_lookup -> "Orders: lookup"."""
    action = spec.name.removeprefix(f"{spec.plugin.name}_").replace("_", " ")
    return f"{spec.plugin.name.replace('_', ' ').capitalize()}: {action}"


def tool_annotations(spec: ToolSpec) -> types.ToolAnnotations:
    title = tool_title(spec)
    if spec.risk is Risk.READ_ONLY:
        return types.ToolAnnotations(title=title, read_only_hint=True)
    return types.ToolAnnotations(title=title, read_only_hint=False, destructive_hint=True)


def mcp_tool(spec: ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name, title=tool_title(spec), description=spec.description, input_schema=spec.schema,
        annotations=tool_annotations(spec),
    )  # fmt: skip


# --- results -------------------------------------------------------------------------------


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def file_content(f: OutputFile, tool: str) -> types.ImageContent | types.EmbeddedResource:
    """An image as image content (the calling model can look at it); any other file embedded."""
    data = base64.b64encode(f.data).decode("ascii")
    if f.mime.startswith("image/"):
        return types.ImageContent(data=data, mime_type=f.mime)
    uri = f"assistant://{tool}/{quote(f.filename)}"
    if f.mime.startswith("text/") or f.mime in ("application/json", "application/xml"):
        try:
            return types.EmbeddedResource(
                resource=types.TextResourceContents(uri=uri, mime_type=f.mime, text=f.data.decode("utf-8"))
            )
        except UnicodeDecodeError:
            pass  # mislabelled: send the bytes as they are
    return types.EmbeddedResource(resource=types.BlobResourceContents(uri=uri, mime_type=f.mime, blob=data))


def tool_result(text: str, output: ToolOutput | None, tool: str) -> types.CallToolResult:
    content: list[Any] = [types.TextContent(text=text)]
    if output is not None:
        if output.say:  # words the user must see (a ticket number): addressed to the user
            content.append(types.TextContent(text=output.say, annotations=types.Annotations(audience=["user"])))
        content.extend(file_content(f, tool) for f in output.files)
    # Tools that return a dict come back as JSON text; hosts that read structured content get it too.
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return types.CallToolResult(content=content, structured_content=parsed if isinstance(parsed, dict) else None)


# --- the server ----------------------------------------------------------------------------


@dataclass
class ToolServer:
    """The MCP request handlers over one plugin registry."""

    registry: PluginRegistry
    approval: ApprovalSettings
    allow_side_effects: bool = False
    write_err: Write = _stderr

    def __post_init__(self) -> None:
        self.hidden = {
            name: why for name, spec in self.registry.tools.items()
            if (why := exposure(spec.risk, self.approval, self.allow_side_effects))
        }  # fmt: skip
        self.tools = {name: spec for name, spec in self.registry.tools.items() if name not in self.hidden}

    def build(self) -> Server:
        return Server(
            SERVER_NAME, version=__version__, title="assistant plugins",
            instructions="Tools of the assistant's enabled plugins. Tools with readOnlyHint=false change something: "
                         "ask the user before calling them.",
            get_tool_input_schema=lambda name: self.tools[name].schema if name in self.tools else None,
            on_list_tools=self.list_tools, on_call_tool=self.call_tool,
        )  # fmt: skip

    async def list_tools(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[mcp_tool(spec) for spec in self.tools.values()])

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        name = params.name
        spec = self.tools.get(name)
        if spec is None:
            # A protocol error, not a tool result: that is how MCP answers a call to an unknown tool.
            why = self.hidden.get(name)
            known = ", ".join(self.tools) or "none"
            raise MCPError(
                types.INVALID_PARAMS,
                f"tool {name!r} is not exposed: {why}" if why else f"no tool named {name!r}; tools: {known}",
            )
        try:
            kwargs = spec.parse_arguments(params.arguments or {})
        except ArgumentError as exc:
            return error_result(f"invalid arguments for {name}: {exc}. "
                                "Call it again with arguments matching its input schema.")  # fmt: skip
        progress = _ProgressRelay(ctx.session)
        try:
            text, output = await progress.around(self._run(spec, kwargs, progress.emit))
        except Exception as exc:  # noqa: BLE001 - a tool's failure is information for the caller, not a crash
            self.write_err(f"warning: tool {name} failed: {type(exc).__name__}: {exc}\n")
            return error_result(f"error: {type(exc).__name__}: {exc}")
        return tool_result(text, output, name)

    async def _run(self, spec: ToolSpec, kwargs: dict, emit: Callable[[Any], None]) -> tuple[str, ToolOutput | None]:
        plugin = spec.plugin
        await plugin.ensure_setup()  # lazily, on the first call, as in the dialogue
        return await spec.call(kwargs, ToolContext(plugin.name, None, plugin.data_dir, emit))


class _ProgressRelay:
    """A tool's Progress events (possibly from a worker thread) as MCP progress notifications.
    Only events with a fraction are sent (as percent), and only rising ones: MCP requires the
    value to increase. The SDK drops them when the caller asked for no progress."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.last = -1.0

    def emit(self, event: Any) -> None:  # callable from any thread
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def around(self, work):
        forwarder = asyncio.ensure_future(self._forward())
        try:
            return await work
        finally:
            # Queued behind the events already scheduled, so none is lost.
            self.loop.call_soon(self.queue.put_nowait, None)
            await forwarder

    async def _forward(self) -> None:
        while (event := await self.queue.get()) is not None:
            if not isinstance(event, Progress) or event.fraction is None:
                continue
            value = round(100 * event.fraction, 1)
            if value > self.last:
                self.last = value
                try:
                    await self.session.report_progress(value, 100, event.message)
                except Exception:  # noqa: BLE001 - a lost progress note must not fail the call
                    pass


# --- transports ----------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


class BearerAuth:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <token>`, else 401."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token.encode()

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        value = next((v for k, v in headers if k.lower() == b"authorization"), b"")
        scheme, _, credential = value.strip().partition(b" ")
        # Constant time: how much of a guessed token matched must not show in the timing.
        return hmac.compare_digest(credential.strip(), self.token) and scheme.lower() == b"bearer"

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.authorized(scope.get("headers", [])):
            message = "send the server's token as `Authorization: Bearer <token>`"
            body = json.dumps({"error": "unauthorized", "message": message}).encode()
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="assistant-mcp"'),
            ]})  # fmt: skip
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


async def serve_stdio(server: Server) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Server, host: str, port: int, token: str, announce: Write) -> None:
    import uvicorn

    from ..serve.cli import listen

    # Bound here, before uvicorn starts, so port 0's real port is known and printed (and with
    # TCP_NODELAY: without it a reply written in two pieces waits ~40 ms for a delayed ACK).
    sock = listen(host, port)
    bound = sock.getsockname()[1]
    app = BearerAuth(server.streamable_http_app(streamable_http_path=HTTP_PATH, host=host), token)
    shown = f"[{host}]" if ":" in host else host
    announce(f"MCP server (streamable HTTP) listening on http://{shown}:{bound}{HTTP_PATH}\n")
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3)
    await uvicorn.Server(config).serve(sockets=[sock])


def http_token(host: str, token: str | None) -> tuple[str, bool]:
    """The token HTTP clients must send, and whether it was generated here."""
    if token is not None and not token.strip():
        raise UsageError("the token is empty", hint="pass a long random string, or leave --token out to get one")
    if token:
        return token.strip(), False
    if not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without a token: anyone who can reach it could call the tools",
            hint="pass --token (a long random string) or set $ASSISTANT_MCP_TOKEN; or keep --host 127.0.0.1",
        )
    return secrets.token_urlsafe(32), True


def run_server(
    settings: Settings, *, transport: str = "stdio", host: str = "127.0.0.1", port: int = 0,
    token: str | None = None, allow_side_effects: bool = False,
) -> int:  # fmt: skip
    """Serve the enabled plugins' tools until the client hangs up (stdio) or the process is stopped (HTTP)."""
    from ..runtime import load_registry, report_plugin_failures

    if transport not in ("stdio", "http"):
        raise UsageError(f"unknown MCP transport {transport!r}", hint="use stdio (the default) or http (--http)")
    if transport == "http":
        token, generated = http_token(host, token)
    with contextlib.redirect_stdout(sys.stderr):  # a plugin printing as it loads must not corrupt stdio
        registry = load_registry(settings)
    report_plugin_failures(registry, _stderr)
    tools = ToolServer(registry, settings.approval, allow_side_effects)
    _stderr(f"assistant MCP server: {len(tools.tools)} tools ({', '.join(tools.tools) or 'none'})\n")
    for why in dict.fromkeys(tools.hidden.values()):
        _stderr(f"  not exposed: {', '.join(n for n, w in tools.hidden.items() if w == why)} ({why})\n")
    server = tools.build()
    if transport == "stdio":
        asyncio.run(serve_stdio(server))
        return 0
    if generated:
        _stderr(f"token (generated; send `Authorization: Bearer <token>`): {token}\n")
    asyncio.run(serve_http(server, host, port, token, _stderr))
    return 0


__all__ = ["BearerAuth", "ToolServer", "exposure", "http_token", "mcp_tool", "run_server", "tool_annotations",
           "tool_result"]
