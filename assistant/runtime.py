"""Assembling the pieces every front end needs: plugins, prompts, the session store, a Dialogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .settings import Settings


def load_registry(settings: Settings, *, extra: list[type] = ()):
    from .plugin_api.registry import load_plugins

    p = settings.plugins
    registry = load_plugins(
        folders=[Path(d).expanduser() for d in p.dirs],
        options=p.options,
        disabled=set(p.disabled),
        enabled=set(p.enabled),
        data_root=settings.paths.state() / "plugins",
        extra=list(extra),
    )
    if settings.mcp.servers:  # their tools join on first use: nothing starts here
        from .mcp.hub import McpTools

        registry.providers.append(McpTools(settings.mcp, settings.paths.state() / "plugins"))
    return registry


def prompt_library(settings: Settings, registry: Any):
    import os

    from .dialogue.prompts import default_library

    user = settings.dialogue.prompts_dir
    if user:
        user_dir = Path(user).expanduser()
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        user_dir = Path(base) / "assistant" / "prompts"
    return default_library(user_dir, registry.prompt_dirs())


def open_store(settings: Settings):
    from .sessions import SessionStore

    state = settings.paths.state()
    return SessionStore(state / "sessions.db", state / "attachments")


def report_plugin_failures(registry: Any, write) -> None:
    for failure in registry.failures:
        write(f"warning: plugin {failure.name} was skipped: {failure.error} (see `assistant plugins doctor`)\n")
