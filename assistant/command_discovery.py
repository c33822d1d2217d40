"""Finding plugin subcommands: the `assistant.commands` entry-point group, read cheaply.

This runs on every `assistant --help`, whose budget is 100 ms: importlib.metadata alone costs
~35 ms and assistant.plugin_api's __init__ ~20 ms, so the distributions' entry_points.txt files
are read directly, and a command's help line comes from its module's source, never from
importing it. Nothing is cached, so nothing can go stale. assistant/plugin_api/plugin_commands.py
loads the chosen command.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import sys
from typing import NamedTuple

GROUP = "assistant.commands"


class PluginCommand(NamedTuple):
    name: str  # the word after `assistant`
    module: str  # dotted module with add_parser(subparsers, common) and run(args, settings)
    dist: str  # "name version" of the distribution that declares it
    source: str  # the entry_points.txt it was read from

    def describe(self) -> str:
        return f"distribution {self.dist} ({self.source})"


def discover_commands(paths: list[str] | None = None) -> list[PluginCommand]:
    """Every `assistant.commands` entry of the distributions on `paths` (default sys.path).
    Like importlib.metadata, a distribution found twice counts once, in its first place on the
    path, so an older copy further down neither adds nor clashes with anything."""
    found: list[PluginCommand] = []
    seen: set[str] = set()
    for entry in sys.path if paths is None else paths:
        try:
            names = sorted(e.name for e in os.scandir(entry or ".") if e.name.endswith((".dist-info", ".egg-info")))
        except OSError:  # a zip file, a missing folder
            continue
        for folder in names:
            dist = _dist_name(folder)
            key = re.sub(r"[-_.]+", "-", dist[0]).lower()
            if key in seen:
                continue
            seen.add(key)
            path = os.path.join(entry or ".", folder, "entry_points.txt")
            try:
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:  # most distributions have no entry points at all
                continue
            for name, value in _ini_section(text, GROUP):
                found.append(PluginCommand(name, value, " ".join(dist).strip(), path))
    return found


def _dist_name(folder: str) -> tuple[str, str]:
    """("name", "version") from `name-1.0.dist-info`, `name-1.0-py3.11.egg-info` or `name.egg-info`."""
    name, _, rest = folder.rsplit(".", 1)[0].partition("-")
    return name, rest.split("-")[0]


def _ini_section(text: str, section: str) -> list[tuple[str, str]]:
    """The `name = value` lines of one [section] of an entry_points.txt (an INI file)."""
    pairs, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == section
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


def find_module_file(dotted: str) -> str | None:
    """The file a module would be imported from ("" for one without a source file), or None when
    it is not installed; found without importing it or its parent packages
    (importlib.util.find_spec would run their __init__, e.g. assistant_plugins.imagegen's)."""
    top, *rest = dotted.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    name = top
    for part in rest:
        if spec is None or not spec.submodule_search_locations:
            return None
        name += "." + part
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    if spec is None:
        return None
    return spec.origin if spec.has_location and spec.origin else ""


# Comments and blank lines, then a string literal: the module's docstring. Only its first line is
# wanted, so the file's first 4 KB are enough; escapes in that line are shown as written.
_DOCSTRING = re.compile(r"\A\ufeff?(?:[ \t]*(?:#[^\n]*)?\n)*[ \t]*[rRuU]?(\"\"\"|'''|\"|')")


def help_line(module: str) -> str | None:
    """The first line of a module's docstring, a final period dropped (argparse help style), read
    from its source without importing it; "" when it has none, None when it is not installed."""
    path = find_module_file(module)
    if not path or not path.endswith(".py"):
        return None if path is None else ""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return ""
    match = _DOCSTRING.match(head)
    if not match:
        return ""
    body = head[match.end() :]
    end = body.find(match.group(1))
    lines = (body if end < 0 else body[:end]).strip().splitlines()
    line = lines[0].strip().removesuffix(".") if lines else ""
    return line[:1].lower() + line[1:] if line[1:2].islower() else line  # "Knowledge bases" but "MCP servers"
