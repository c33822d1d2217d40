"""`[mcp.servers.NAME]` tables: checked, with `${VAR}` expanded, and written back by `assistant mcp add`.

A server is either a command (stdio: `command`, `args`, `env`, `cwd`) or a URL (streamable
HTTP: `url`, `headers`). Risk overrides: `read_only = ["tool", ...]` / `side_effects = [...]`
(`["*"]` for every tool); otherwise a tool is read-only only when the server marks it
`readOnlyHint`. The common `{"mcpServers": {...}}` JSON (Claude Desktop, Cursor, VS Code's
`servers`) imports into the same tables.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import SettingsError

_KEYS = {"command", "args", "env", "cwd", "url", "headers", "read_only", "side_effects", "disabled", "startup_timeout",
         "call_timeout"}  # fmt: skip
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Tool names the model sees: OpenAI allows [a-zA-Z0-9_-]{1,64}.
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


@dataclass(frozen=True)
class ServerConfig:
    name: str
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    read_only: tuple[str, ...] = ()  # tools trusted to only read, beyond the server's readOnlyHint ("*": all)
    side_effects: tuple[str, ...] = ()  # tools treated as side effects even if the server says read-only
    startup_timeout: float | None = None
    call_timeout: float | None = None

    @property
    def transport(self) -> str:
        return "http" if self.url else "stdio"

    def describe(self) -> str:
        if self.url:
            return self.url
        return " ".join([self.command, *self.args])


def expand(text: str, environ: Mapping[str, str], where: str) -> str:
    """`${VAR}` and `${VAR:-default}` from the environment; an unset variable without a default is an error."""

    def sub(m: re.Match) -> str:
        value = environ.get(m.group(1))
        if value is None:
            if m.group(2) is not None:
                return m.group(2)
            raise SettingsError(
                f"{where} uses ${{{m.group(1)}}}, which is not set",
                hint=f"export {m.group(1)}=... before starting, or write ${{{m.group(1)}:-default}}",
            )
        return value

    return _VAR.sub(sub, text)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SettingsError(f"{where} must be a list of strings, got {value!r}")


def _table(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(v, (str, int, float, bool)) for v in value.values()):
        raise SettingsError(f"{where} must be a table of strings, e.g. {{ KEY = \"value\" }}, got {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def parse_server(name: str, table: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> ServerConfig:
    """One `[mcp.servers.NAME]` table -> ServerConfig, or a SettingsError that names the key."""
    environ = os.environ if environ is None else environ
    where = f"[mcp.servers.{name}]"
    if not _NAME.match(name):
        raise SettingsError(f"{where}: a server name is 1-40 letters, digits, '_' or '-' (its tools are named NAME_tool)")
    unknown = set(table) - _KEYS
    if unknown:
        raise SettingsError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}", hint=f"valid keys: {', '.join(sorted(_KEYS))}")
    command, url = table.get("command", ""), table.get("url", "")
    if bool(command) == bool(url):
        raise SettingsError(f"{where} needs either command = \"...\" (stdio) or url = \"https://...\" (streamable HTTP), not "
                            + ("both" if command else "neither"))  # fmt: skip
    if not isinstance(command, str) or not isinstance(url, str):
        raise SettingsError(f"{where}: command and url are strings")
    if url and not url.startswith(("http://", "https://")):
        raise SettingsError(f"{where}: url must start with http:// or https://, got {url!r}")
    x = lambda text, key: expand(text, environ, f"{where} {key}")  # noqa: E731
    timeouts = {}
    for key in ("startup_timeout", "call_timeout"):
        if key in table:
            if not isinstance(table[key], (int, float)) or table[key] <= 0:
                raise SettingsError(f"{where} {key} must be a positive number of seconds")
            timeouts[key] = float(table[key])
    return ServerConfig(
        name=name,
        command=x(command, "command"),
        args=tuple(x(a, "args") for a in _strings(table.get("args", []), f"{where} args")),
        env={k: x(v, f"env.{k}") for k, v in _table(table.get("env", {}), f"{where} env").items()},
        cwd=str(Path(x(table.get("cwd", ""), "cwd")).expanduser()) if table.get("cwd") else "",
        url=x(url, "url"),
        headers={k: x(v, f"headers.{k}") for k, v in _table(table.get("headers", {}), f"{where} headers").items()},
        read_only=_strings(table.get("read_only", []), f"{where} read_only"),
        side_effects=_strings(table.get("side_effects", []), f"{where} side_effects"),
        **timeouts,
    )


class _EveryVariableSet(dict):
    def get(self, key, default=None):
        return "x"


def check_table(name: str, table: Mapping[str, Any]) -> None:
    """The table's shape, before it is written: `${VAR}`s may be set only where it will run."""
    parse_server(name, table, environ=_EveryVariableSet())


def configured_servers(mcp_settings: Any, environ: Mapping[str, str] | None = None) -> tuple[list[ServerConfig], list[tuple[str, str]]]:
    """Enabled servers, and (name, error) for the tables that are wrong: one bad table does not
    take the others down."""
    servers, errors = [], []
    for name, table in mcp_settings.servers.items():
        if name in mcp_settings.disabled or table.get("disabled") is True:
            continue
        try:
            servers.append(parse_server(name, table, environ))
        except SettingsError as exc:
            errors.append((name, str(exc)))
    return servers, errors


# --- the common JSON format ------------------------------------------------------------------


def from_json(data: Any, source: str = "the JSON file") -> dict[str, dict]:
    """`{"mcpServers": {NAME: {command, args, env, cwd} | {url, headers, type}}}` (Claude Desktop,
    Cursor; VS Code's `servers` too) -> `[mcp.servers.NAME]` tables. `${VAR}` stays as written."""
    if not isinstance(data, Mapping):
        raise SettingsError(f"{source} must hold a JSON object with \"mcpServers\"")
    servers = data.get("mcpServers", data.get("servers"))
    if not isinstance(servers, Mapping) or not servers:
        raise SettingsError(f"{source} has no \"mcpServers\" object", hint='expected {"mcpServers": {"NAME": {"command": ...}}}')
    out = {}
    for name, entry in servers.items():
        if not isinstance(entry, Mapping):
            raise SettingsError(f"{source}: server {name!r} must be an object")
        kind = str(entry.get("type") or entry.get("transport") or "").lower()
        if kind == "sse":
            raise SettingsError(f"{source}: server {name!r} uses the old SSE transport, which is not supported",
                                hint="most servers also offer streamable HTTP (often the same URL ending in /mcp)")  # fmt: skip
        table: dict[str, Any] = {}
        for key in ("command", "args", "env", "cwd", "url", "headers"):
            if entry.get(key):
                table[key] = entry[key]
        safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(name))[:40]
        check_table(safe, table)
        out[safe] = table
    return out


def read_json_file(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SettingsError(f"{path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path} is not valid JSON: {exc}") from None
    return from_json(data, str(path))


# --- writing config.toml ------------------------------------------------------------------------


def write_servers(path: Path, add: Mapping[str, Mapping[str, Any]] = {}, remove: tuple[str, ...] = (), *,
                  replace: bool = False) -> list[str]:  # fmt: skip
    """Add (or with `replace`, overwrite) and remove `[mcp.servers.NAME]` tables in a config file,
    keeping the rest of the file as written; atomically. Returns the names changed."""
    import tomlkit

    from ..atomic_folder import write_file_atomic

    doc = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    mcp = doc.setdefault("mcp", tomlkit.table(is_super_table=True))
    servers = mcp.setdefault("servers", tomlkit.table(is_super_table=True))
    changed = []
    for name in remove:
        if name not in servers:
            raise SettingsError(f"no MCP server named {name!r} in {path}", hint="`assistant mcp list` shows them")
        del servers[name]
        changed.append(name)
    for name, table in add.items():
        check_table(name, table)
        if name in servers and not replace:
            raise SettingsError(f"an MCP server named {name!r} is already in {path}", hint="remove it first, or pass --replace")
        entry = tomlkit.table()
        for key, value in table.items():
            if isinstance(value, Mapping):  # env = { KEY = "..." }: one line, as people write it
                inline = tomlkit.inline_table()
                inline.update(value)
                value = inline
            entry[key] = value
        servers[name] = entry
        changed.append(name)
    write_file_atomic(path, tomlkit.dumps(doc).encode(), make_parents=True)
    return changed
