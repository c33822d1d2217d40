"""Subcommands that plugin distributions add to `assistant`: the `assistant.commands` entry-point group.

A distribution declares, in its pyproject.toml,

    [project.entry-points."assistant.commands"]
    shop = "shop_commands"

and `shop_commands` has `add_parser(subparsers, common)` and `run(args, settings) -> int`, the
contract of the core's own command modules. The built-in `kb`, `imagine` and `support` commands
are declared this way too (see docs/writing-a-plugin.md, "Adding a subcommand").

Finding the declarations is assistant/command_discovery.py's job (`discover_commands`): it runs on every
`assistant --help`, so it reads them without importing plugins, importlib.metadata or this
package. This module is what runs once a plugin command is chosen: importing it with errors that
name the distribution and checking its contract; and two helpers a command module may use:
`load_configured_plugins(settings)` for a command that drives its own plugin, and
`run_as_assistant(argv)` for a plugin's `python -m` alias.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType
from typing import Any

from ..cli import clash_sources
from ..command_discovery import GROUP, PluginCommand, discover_commands
from ..errors import UsageError

# What a plugin's command module may use; the rest is the CLI's side.
__all__ = [
    "GROUP", "PluginCommand", "PluginCommandError", "discover_commands", "load_configured_plugins", "run_as_assistant",
]  # fmt: skip


class PluginCommandError(UsageError):
    """A plugin's subcommand cannot run: declared twice, not installed, or broken (exit 2)."""


def clash_error(name: str, declarations: list[PluginCommand]) -> PluginCommandError:
    uninstall = " or ".join(f"`pip uninstall {cmd.dist.split()[0]}`" for cmd in declarations)
    return PluginCommandError(
        f"`assistant {name}` is declared by more than one source: {clash_sources(name, declarations)}",
        hint=f"the assistant never picks one silently: {uninstall} (or ask its authors to rename the "
        f"command), then `assistant {name}` works again",
    )


def load(command: PluginCommand) -> ModuleType:
    """Import a plugin command's module, turning any failure into an error that names the
    distribution and says what to do (a broken plugin never takes other commands down)."""
    if ":" in command.module:
        raise PluginCommandError(
            f"`assistant {command.name}`: {command.describe()} declares {command.module!r}; "
            f"an {GROUP} entry must name a module (package.module), not an object",
            hint=f"ask its authors to fix the entry point, or pip uninstall {command.dist.split()[0]}",
        )
    try:
        module = importlib.import_module(command.module)
    except Exception as exc:  # whatever the plugin raises on import, SyntaxError included
        raise PluginCommandError(
            f"`assistant {command.name}` could not be loaded: importing {command.module} "
            f"(from {command.describe()}) failed: {type(exc).__name__}: {exc}",
            hint=f"reinstall or upgrade {command.dist.split()[0]} (its dependencies may be missing), "
            "or uninstall it; other commands are not affected",
        ) from exc
    missing = [f for f in ("add_parser", "run") if not callable(getattr(module, f, None))]
    if missing:
        raise PluginCommandError(
            f"`assistant {command.name}`: {command.module} (from {command.describe()}) has no "
            + " and no ".join(f"{f}()" for f in missing),
            hint="a command module defines add_parser(subparsers, common) and run(args, settings) -> int",
        )
    return module


def add_real_parser(command: PluginCommand, module: ModuleType, sub, common: argparse.ArgumentParser) -> None:
    """Let the plugin add its parser, and check that it added the one its entry point names."""
    module.add_parser(sub, common)
    if command.name not in sub.choices:
        raise PluginCommandError(
            f"`assistant {command.name}`: {command.module}.add_parser() (from {command.describe()}) "
            f"did not add a subcommand named {command.name!r}",
            hint=f"its add_parser must call subparsers.add_parser({command.name!r}, parents=[common], ...)",
        )


def run_as_assistant(argv: list[str]) -> int:
    """Run `assistant ARGV...` in this process and return its exit code: for a plugin module's own
    `python -m` alias, so its settings flags, error messages and exit codes are the CLI's."""
    from ..cli import main

    return main(argv)


def load_configured_plugins(settings: Any, *, extra: list[type] = ()) -> Any:
    """The plugin registry as a chat loads it ([plugins] and [plugins.NAME] of the settings
    applied; MCP servers listed but not started), for a command that drives its own plugin:
    `load_configured_plugins(settings).plugins["imagegen"]`, or `.failures` for why it is not there.
    `extra` adds plugin classes that are not installed as entry points (a source checkout)."""
    from ..runtime import load_registry

    return load_registry(settings, extra=list(extra))
