"""`assistant mcp add|list|remove|test|import|serve`: MCP servers for the chat, and the
assistant's own tools served over MCP."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import EXIT_MODEL, UsageError
from ..settings import Settings, user_config_path

EPILOG = """\
examples:
  assistant mcp add time -- mcp-server-time --local-timezone Europe/Berlin
  assistant mcp add docs --url https://example.com/mcp --header 'Authorization=Bearer ${DOCS_TOKEN}'
  assistant mcp import ~/.config/Claude/claude_desktop_config.json
  assistant mcp test time
  assistant mcp serve --http --port 8766          (another agent calls this assistant's tools)
Servers are [mcp.servers.NAME] tables in config.toml; ${VAR} is read from the environment when
the server starts. Their tools are offered as NAME_tool, read-only only when the server marks them
readOnlyHint (else they go through [approval] side_effects); override with read_only = [...].
"""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("mcp", parents=[common], help="MCP servers: add, list, test them; serve the assistant's tools over MCP",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    msub = p.add_subparsers(dest="mcp_command", metavar="ACTION", required=True)
    file_help = "config file to edit (default: the user config, `assistant config path`)"

    add = msub.add_parser("add", parents=[common], help="add a server: NAME -- COMMAND ARGS..., or NAME --url URL")
    add.add_argument("name")
    add.add_argument("server_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...", help="after --: the command that starts a stdio server")
    add.add_argument("--url", help="a streamable HTTP server instead of a command")
    add.add_argument("--header", action="append", default=[], metavar="KEY=VALUE", help="HTTP header (repeatable); ${VAR} allowed")
    add.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment for the command (repeatable)")
    add.add_argument("--cwd", help="working folder for the command")
    add.add_argument("--read-only", action="append", default=[], metavar="TOOL",
                     help="treat this tool as read-only even without readOnlyHint ('*': all; repeatable)")  # fmt: skip
    add.add_argument("--replace", action="store_true", help="overwrite a server of that name")
    add.add_argument("--file", type=Path, help=file_help)

    rm = msub.add_parser("remove", parents=[common], help="remove a server from the config file")
    rm.add_argument("name")
    rm.add_argument("--file", type=Path, help=file_help)

    imp = msub.add_parser("import", parents=[common], help='import servers from a {"mcpServers": {...}} JSON file')
    imp.add_argument("json_file", type=Path)
    imp.add_argument("--replace", action="store_true", help="overwrite servers of the same names")
    imp.add_argument("--file", type=Path, help=file_help)

    lst = msub.add_parser("list", parents=[common], help="the configured servers (no server is started)")
    lst.add_argument("--json", action="store_true")

    test = msub.add_parser("test", parents=[common], help="start servers, list their tools, and stop them")
    test.add_argument("names", nargs="*", help="servers to test (default: all enabled)")
    test.add_argument("--call", metavar="TOOL", help="also call this tool (its name without the server prefix)")
    test.add_argument("--args", default="{}", metavar="JSON", help="arguments for --call")
    test.add_argument("--json", action="store_true")

    serve = msub.add_parser("serve", parents=[common], help="serve the enabled plugins' tools to other agents over MCP",
                            description="Expose the enabled plugins' tools (e.g. the support pack) over MCP: stdio by "
                            "default, or streamable HTTP with --http (a bearer token is required).")  # fmt: skip
    serve.add_argument("--http", action="store_true", help="streamable HTTP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="address for --http (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port for --http (default: a free one, printed)")
    serve.add_argument("--token", help="bearer token HTTP clients must send (default: $ASSISTANT_MCP_TOKEN, else generated and printed)")
    serve.add_argument("--allow-side-effects", action="store_true",
                       help="run side-effect tools whose [approval] level is 'ask' (the calling agent's host asks its user); "
                       "without it they follow [approval] non_interactive")  # fmt: skip


def run(args: argparse.Namespace, settings: Settings) -> int:
    cmd = args.mcp_command
    if cmd == "serve":
        import os

        from .server import run_server

        return run_server(settings, transport="http" if args.http else "stdio", host=args.host, port=args.port,
                          token=args.token or os.environ.get("ASSISTANT_MCP_TOKEN") or None,
                          allow_side_effects=args.allow_side_effects)  # fmt: skip
    if cmd == "list":
        return _list(settings, args.json)
    if cmd == "test":
        return asyncio.run(_test(settings, args))
    from .config import read_json_file, write_servers

    path = (args.file or user_config_path()).expanduser()
    if cmd == "add":
        changed = write_servers(path, {args.name: _table_from_flags(args)}, replace=args.replace)
    elif cmd == "import":
        changed = write_servers(path, read_json_file(args.json_file), replace=args.replace)
    else:
        changed = write_servers(path, remove=(args.name,))
    verb = {"add": "added", "import": "imported", "remove": "removed"}[cmd]
    print(f"{verb} {', '.join(changed)} in {path}")
    if cmd != "remove":
        print(f"check with: assistant mcp test {' '.join(changed)}")
    return 0


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"{flag} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


def _table_from_flags(args: argparse.Namespace) -> dict:
    command = args.server_command[1:] if args.server_command[:1] == ["--"] else args.server_command
    if bool(command) == bool(args.url):
        raise UsageError("give either a command after -- (stdio) or --url (streamable HTTP)",
                         hint="e.g. assistant mcp add time -- mcp-server-time")  # fmt: skip
    table: dict[str, Any] = {"url": args.url} if args.url else {"command": command[0]}
    if len(command) > 1:
        table["args"] = command[1:]
    if args.env:
        table["env"] = _pairs(args.env, "--env")
    if args.header:
        table["headers"] = _pairs(args.header, "--header")
    if args.cwd:
        table["cwd"] = args.cwd
    if args.read_only:
        table["read_only"] = args.read_only
    return table


def _list(settings: Settings, as_json: bool) -> int:
    from .config import configured_servers

    servers, errors = configured_servers(settings.mcp)
    disabled = sorted(set(settings.mcp.servers) - {s.name for s in servers} - {n for n, _ in errors})
    if as_json:
        rows = [{"name": s.name, "transport": s.transport, "target": s.describe(), "read_only": list(s.read_only),
                 "side_effects": list(s.side_effects)} for s in servers]  # fmt: skip
        print(json.dumps({"servers": rows, "invalid": [{"name": n, "error": e} for n, e in errors], "disabled": disabled}, indent=2))
        return 0
    for s in servers:
        extra = "".join(f"; {k} = {list(v)}" for k, v in (("read_only", s.read_only), ("side_effects", s.side_effects)) if v)
        print(f"{s.name}: {s.transport} {s.describe()}{extra}")
    for name, error in errors:
        print(f"INVALID {name}: {error}")
    for name in disabled:
        print(f"{name}: disabled")
    if not settings.mcp.servers:
        print("no MCP servers configured: add one with `assistant mcp add NAME -- COMMAND ...`")
    return 0


async def _test(settings: Settings, args: argparse.Namespace) -> int:
    from .config import configured_servers
    from .connection import McpConnection
    from .tools import to_output, tool_name, tool_risk

    servers, errors = configured_servers(settings.mcp)
    if args.names:
        known = {s.name for s in servers} | {n for n, _ in errors}
        missing = [n for n in args.names if n not in known]
        if missing:
            raise UsageError(f"no enabled MCP server named {', '.join(missing)}", hint="`assistant mcp list` shows them")
        servers = [s for s in servers if s.name in args.names]
        errors = [(n, e) for n, e in errors if n in args.names]
    conns = [McpConnection(s, startup_timeout=settings.mcp.startup_timeout, call_timeout=settings.mcp.call_timeout) for s in servers]
    outcomes = await asyncio.gather(*(c.start() for c in conns), return_exceptions=True)
    report, failed = [], len(errors)
    for name, error in errors:
        report.append({"name": name, "ok": False, "error": error})
    try:
        for conn, outcome in zip(conns, outcomes):
            row: dict[str, Any] = {"name": conn.config.name, "ok": not isinstance(outcome, BaseException)}
            if isinstance(outcome, BaseException):
                failed += 1
                row["error"] = str(outcome)
            else:
                row["started_s"] = round(conn.started_s or 0, 3)
                row["tools"] = [{"name": tool_name(conn.config.name, t.name), "risk": tool_risk(conn.config, t).value,
                                 "description": (t.description or "").strip().split("\n")[0][:100]} for t in conn.tools]  # fmt: skip
                if args.call:
                    try:
                        out = to_output(await conn.call(args.call, json.loads(args.args)), args.call)
                        row["call"] = {"result": out.text, "files": [f.filename for f in out.files]}
                    except Exception as exc:  # noqa: BLE001 - McpServerError or the tool's own: reported, like in a chat
                        failed += 1
                        row["ok"], row["call"] = False, {"error": f"{type(exc).__name__}: {exc}"}
            report.append(row)
    finally:
        await asyncio.gather(*(c.aclose() for c in conns), return_exceptions=True)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for row in report:
            if not row.get("tools") and not row["ok"]:
                print(f"✗ {row['name']}: {row['error']}")
                continue
            print(f"✓ {row['name']}: started in {row['started_s']:.2f} s, {len(row['tools'])} tools")
            for t in row["tools"]:
                print(f"    {t['name']} ({t['risk']}): {t['description']}")
            if "call" in row:
                print(f"  call {args.call}: " + (row["call"].get("result") or f"✗ {row['call'].get('error')}")[:2000])
        if not report:
            print("no MCP servers configured: add one with `assistant mcp add NAME -- COMMAND ...`", file=sys.stderr)
    return EXIT_MODEL if failed else 0
