"""Finding and loading plugins: the `assistant.plugins` entry-point group and plugin folders.

Built-in plugins (the top-level `plugins/` folder, importable as `assistant_plugins`) are
registered through the same entry-point group a third-party package uses. A plugin that fails
to import, configure or describe its tools is reported and skipped; two tools with one name
stop everything, because silently picking one would call the wrong code.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import PluginError
from .contract import Plugin
from .tools import ToolSpec, build_tool_specs

ENTRY_POINT_GROUP = "assistant.plugins"


@dataclass(frozen=True)
class LoadFailure:
    name: str
    source: str
    error: str
    detail: str = ""


@dataclass
class PluginRegistry:
    plugins: dict[str, Plugin] = field(default_factory=dict)
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    not_enabled: list[str] = field(default_factory=list)  # installed opt-in plugins left out
    # Sources of tools that join on first use rather than at load (MCP servers: assistant/mcp/hub.py).
    providers: list[Any] = field(default_factory=list)

    async def connect(self, emit: Any = lambda event: None) -> None:
        """Bring in the providers' tools (starting MCP servers); a no-op once done or without any."""
        for provider in self.providers:
            await provider.connect(self, emit)

    async def aclose(self) -> None:
        """Stop what the providers started (MCP server processes and connections)."""
        for provider in self.providers:
            await provider.aclose()

    def add(self, plugin: Plugin, source: str, specs: list[ToolSpec] | None = None) -> None:
        if plugin.name in self.plugins:
            raise PluginError(
                f"two plugins are named {plugin.name!r}: {self.sources[plugin.name]} and {source}",
                hint="uninstall or disable one of them ([plugins] disabled = [...])",
            )
        specs = build_tool_specs(plugin) if specs is None else specs
        for spec in specs:
            if spec.name in self.tools:
                other = self.tools[spec.name].plugin.name
                raise PluginError(
                    f"duplicate tool name {spec.name!r}: defined by plugin {other!r} and plugin {plugin.name!r}",
                    hint="rename one tool (@tool(name=...)) or disable one plugin",
                )
        self.plugins[plugin.name] = plugin
        self.sources[plugin.name] = source
        for spec in specs:
            self.tools[spec.name] = spec

    def openai_tools(self) -> list[dict]:
        return [spec.openai() for spec in self.tools.values()]

    def consumers(self) -> dict[str, list[str]]:
        """Attachment kind -> plugin names that consume it, in load order."""
        out: dict[str, list[str]] = {}
        for plugin in self.plugins.values():
            for kind in sorted(plugin.consumes):
                out.setdefault(kind, []).append(plugin.name)
        return out

    def prompt_dirs(self) -> list[Path]:
        return [p.prompts_dir for p in self.plugins.values() if p.prompts_dir]


def _entry_points() -> list[tuple[str, str, Any]]:
    return [(ep.name, f"entry point {ep.value}", ep) for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]


def _folder_plugins(folder: Path) -> list[tuple[str, str, Any]]:
    """Each `*.py` file or package in a plugins folder is one plugin module."""
    found = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").is_file()):
            found.append((path.stem, str(path), path))
    return found


def _load_object(target: Any) -> Any:
    if isinstance(target, Path):
        init = target / "__init__.py" if target.is_dir() else target
        mod_name = f"assistant_user_plugin_{target.stem}"
        spec = importlib.util.spec_from_file_location(
            mod_name, init, submodule_search_locations=[str(target)] if target.is_dir() else None
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
        classes = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Plugin) and v is not Plugin and v.__module__ == mod_name]
        if len(classes) != 1:
            raise PluginError(f"{target} must define exactly one Plugin subclass, found {len(classes)}")
        return classes[0]
    return target.load()  # an entry point


def _configure(cls: type[Plugin], options: Mapping[str, Any], data_root: Path) -> Plugin:
    settings = None
    if cls.Settings is not None:
        from pydantic import ValidationError

        try:
            settings = cls.Settings.model_validate(dict(options))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PluginError(f"[plugins.{cls.name}] is invalid: {problems}") from None
    elif options:
        raise PluginError(f"[plugins.{cls.name}] sets {', '.join(options)}, but this plugin has no settings")
    return cls(settings, data_dir=data_root / cls.name)


def load_plugins(
    *,
    folders: list[Path] = (),
    options: Mapping[str, Mapping[str, Any]] | None = None,
    disabled: set[str] = frozenset(),
    enabled: set[str] = frozenset(),
    data_root: Path,
    include_entry_points: bool = True,
    extra: list[type[Plugin]] = (),
) -> PluginRegistry:
    """Discover, configure and register plugins. Only PluginError for duplicate names escapes."""
    options = options or {}
    registry = PluginRegistry()
    candidates = (_entry_points() if include_entry_points else []) + [
        item for folder in folders for item in _folder_plugins(folder)
    ]
    explicit = {id(cls) for cls in extra}  # classes handed in directly always load
    candidates += [(cls.name, f"class {cls.__module__}.{cls.__qualname__}", cls) for cls in extra]
    for name, source, target in candidates:
        if name in disabled:
            continue
        try:
            cls = target if isinstance(target, type) else _load_object(target)
            if not (isinstance(cls, type) and issubclass(cls, Plugin)):
                raise PluginError(f"{source} is not a Plugin subclass")
            if not cls.name:
                raise PluginError(f"{source} has no `name`")
            if cls.name in disabled:
                continue
            if cls.opt_in and cls.name not in enabled and id(target) not in explicit:
                registry.not_enabled.append(cls.name)
                continue
            plugin = _configure(cls, options.get(cls.name, {}), data_root)
            specs = build_tool_specs(plugin)  # schema errors count as load failures
        except Exception as exc:  # noqa: BLE001 - any plugin bug must not take the assistant down
            registry.failures.append(LoadFailure(name, source, f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=4)))
            continue
        registry.add(plugin, source, specs)
    unknown = set(options) - set(registry.plugins) - {f.name for f in registry.failures} - set(disabled) - set(registry.not_enabled)
    for name in sorted(unknown):
        registry.failures.append(LoadFailure(name, "config", f"[plugins.{name}] is configured but no such plugin is installed"))
    return registry
