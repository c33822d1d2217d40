"""MCP tools as the registry's ToolSpecs: `<server>_<tool>`, the server's JSON schema, a risk.

A tool is read-only only when the server marks it `readOnlyHint` (or the server's table lists it
in `read_only`); everything else has side effects and goes through the approval policy.
Results: text parts join into the text the model reads; images (and other binary parts) become
files, which the dialogue saves and shows like any tool's output; `isError` results are errors.
"""

from __future__ import annotations

import base64
import functools
import json
import mimetypes
import re
from typing import Any

from ..plugin_api.contract import OutputFile, Plugin, Risk, ToolOutput
from ..plugin_api.tools import ToolSpec
from .config import ServerConfig


class McpToolError(Exception):
    """The server ran the tool and reported an error (`isError`): information for the model."""


class McpServerPlugin(Plugin):
    """Stands for one MCP server in the registry, so its tools are listed and approved like a
    plugin's. Nothing to set up: the connection is made before the tools are registered."""

    def __init__(self, config: ServerConfig, data_dir: Any) -> None:
        super().__init__(None, data_dir=data_dir)
        self.name = config.name  # an instance attribute: one plugin object per server
        self.description = f"MCP server ({config.transport}: {config.describe()})"
        self._ready = True


def tool_name(server: str, tool: str) -> str:
    """`<server>_<tool>` in the characters and length OpenAI accepts for function names."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{server}_{tool}")[:64]


def tool_risk(config: ServerConfig, tool: Any) -> Risk:
    if tool.name in config.side_effects or "*" in config.side_effects:
        return Risk.SIDE_EFFECTS
    if tool.name in config.read_only or "*" in config.read_only:
        return Risk.READ_ONLY
    hint = getattr(tool.annotations, "read_only_hint", None) if tool.annotations else None
    return Risk.READ_ONLY if hint is True else Risk.SIDE_EFFECTS


def build_specs(plugin: McpServerPlugin, config: ServerConfig, connection: Any) -> list[ToolSpec]:
    specs = []
    for tool in connection.tools:
        schema = dict(tool.input_schema or {}) or {"type": "object", "properties": {}}
        schema.setdefault("type", "object")
        schema.pop("$schema", None)  # some servers send it; vLLM's grammar compiler does not need it
        description = (tool.description or tool.title or tool.name).strip()

        run = functools.partial(_call, connection, tool.name)
        specs.append(ToolSpec(tool_name(config.name, tool.name), plugin, run, tool_risk(config, tool), description,
                              schema, None, None))  # fmt: skip
    return specs


async def _call(connection: Any, tool: str, **arguments: Any) -> ToolOutput:
    return to_output(await connection.call(tool, arguments), tool)


def to_output(result: Any, tool: str) -> ToolOutput:
    texts: list[str] = []
    files: list[OutputFile] = []
    for n, part in enumerate(result.content or [], 1):
        kind = getattr(part, "type", "")
        if kind == "text":
            texts.append(part.text)
        elif kind in ("image", "audio"):
            ext = mimetypes.guess_extension(part.mime_type) or ".bin"
            files.append(OutputFile(_b64(part.data), part.mime_type, f"{tool}-{n}{ext}", f"{kind} from {tool}"))
            texts.append(f"[{kind} {tool}-{n}{ext} ({part.mime_type}) is shown to the user]")
        elif kind == "resource":
            res = part.resource
            if getattr(res, "text", None) is not None:
                texts.append(res.text)
            else:
                mime = res.mime_type or "application/octet-stream"
                name = str(res.uri).rstrip("/").rsplit("/", 1)[-1] or f"{tool}-{n}"
                files.append(OutputFile(_b64(res.blob), mime, name, str(res.uri)))
                texts.append(f"[file {name} ({mime}) is shown to the user]")
        elif kind == "resource_link":
            texts.append(f"[resource {part.name}: {part.uri}]")
    if not texts and result.structured_content is not None:
        texts.append(json.dumps(result.structured_content, ensure_ascii=False, default=str))
    text = "\n".join(texts) or "(no output)"
    if result.is_error:
        raise McpToolError(text)
    return ToolOutput(text, tuple(files))


def _b64(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=False)
    except ValueError:
        return b""
