"""Helpers for plugin authors: does my plugin follow the contract, and does my tool work?

    from assistant.testing import assert_conforms, make_plugin, run_tool

    def test_conforms():
        assert_conforms(Weather)

    def test_forecast(tmp_path):
        weather = make_plugin(Weather, {"units": "imperial"}, data_dir=tmp_path)
        assert "Oslo" in run_tool(weather, "forecast", city="Oslo")

`check_plugin` is also what `assistant plugins doctor` runs on every installed plugin. It only
inspects the class and builds its tool schemas: it never calls `setup()` or a tool.

`run_tool` goes the way the dialogue goes (schema validation of JSON arguments, lazy `setup()`,
`ToolContext` injection, str/dict/list/ToolOutput to text) but skips the approval policy and lets
the tool's exceptions through, so a test can `pytest.raises` them. `make_dialogue` + `run_turn`
drive a whole turn against a `ScriptedModel`, approval policy included.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence, TypeVar

from ..plugin_api.contract import Plugin, Risk, ToolContext, ToolOutput, tool_mark
from ..plugin_api.tools import ToolSpec, build_tool_specs

PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_]*")
# What OpenAI-compatible servers (and vLLM's tool parsers) accept as a function name.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ATTACHMENT_KINDS = frozenset({"image", "audio", "document", "text"})

_T = TypeVar("_T")
_UNKNOWN_KEY = "__conformance_check_unknown_key__"


# --- the conformance check -------------------------------------------------------------------


def check_plugin(plugin_cls: Any, *, settings: Mapping[str, Any] | None = None) -> list[str]:
    """Problems that keep `plugin_cls` from working as a plugin; an empty list means it conforms.

    `settings` is what its `[plugins.NAME]` table would hold (default: none, which every plugin
    must accept). Nothing heavy runs: the class is instantiated, `setup()` is not called.
    """
    if not (isinstance(plugin_cls, type) and issubclass(plugin_cls, Plugin)):
        return [f"{plugin_cls!r} is not a subclass of assistant.plugin_api.Plugin"]
    if plugin_cls is Plugin:
        return ["Plugin itself is the base class; check your subclass"]
    problems: list[str] = []
    name = plugin_cls.name
    if not isinstance(name, str) or not name:
        problems.append('`name` is missing: set a class attribute like name = "weather"')
    elif not PLUGIN_NAME.fullmatch(name):
        problems.append(f'`name` {name!r} must be a lowercase identifier matching [a-z][a-z0-9_]* (e.g. "weather")')
    if not isinstance(plugin_cls.description, str) or not plugin_cls.description.strip():
        problems.append(
            "`description` is missing: one line saying what the plugin does (shown by `assistant plugins list`)"
        )

    problems += _check_kinds(plugin_cls)
    problems += _check_methods(plugin_cls)
    if plugin_cls.prompts_dir is not None and not Path(plugin_cls.prompts_dir).is_dir():
        problems.append(f"`prompts_dir` {str(plugin_cls.prompts_dir)!r} is not a folder")

    settings_obj, settings_problems = _check_settings(plugin_cls, settings)
    problems += settings_problems
    if settings_problems:
        return problems  # without valid settings the plugin cannot be instantiated

    with tempfile.TemporaryDirectory(prefix="assistant-conformance-") as tmp:
        try:
            plugin = plugin_cls(settings_obj, data_dir=Path(tmp) / (name or "plugin"))
        except Exception as exc:  # noqa: BLE001 - a plugin bug is a finding, not a crash
            return problems + [f"cannot be instantiated as {plugin_cls.__name__}(settings, data_dir=...): {_exc(exc)}"]
        problems += _check_tools(plugin_cls, plugin, name_ok=bool(name and PLUGIN_NAME.fullmatch(name)))
        problems += _check_capabilities(plugin)
    return problems


def _check_capabilities(plugin: Plugin) -> list[str]:
    """`capabilities()` gives Capability objects with distinct names (front ends would skip a bad one)."""
    from ..plugin_api.contract import Capability

    try:
        found = list(plugin.capabilities())
    except Exception as exc:  # noqa: BLE001
        return [f"capabilities() raised {_exc(exc)}; front ends would offer none of them"]
    problems = [f"capabilities() must give Capability objects (e.g. Recorder), not {c!r}" for c in found if not isinstance(c, Capability)]
    names = [c.name for c in found if isinstance(c, Capability)]
    problems += [f"two capabilities are named {n!r}; give each its own name" for n in sorted({n for n in names if names.count(n) > 1})]
    return problems


def assert_conforms(plugin_cls: Any, **kw: Any) -> None:
    """Raise AssertionError listing every problem `check_plugin` finds."""
    problems = check_plugin(plugin_cls, **kw)
    if problems:
        label = getattr(plugin_cls, "__qualname__", repr(plugin_cls))
        raise AssertionError(f"plugin {label} does not conform:\n" + "\n".join(f"  - {p}" for p in problems))


def _check_kinds(plugin_cls: type[Plugin]) -> list[str]:
    problems = []
    for attr in ("consumes", "produces"):
        value = getattr(plugin_cls, attr)
        if isinstance(value, (str, bytes)) or not isinstance(value, (set, frozenset, tuple, list)):
            problems.append(f'`{attr}` must be a set of attachment kinds, e.g. frozenset({{"audio"}}), not {value!r}')
            continue
        unknown = sorted(str(k) for k in value if k not in ATTACHMENT_KINDS)
        if unknown:
            problems.append(f"`{attr}` has unknown kinds {unknown}; allowed: {', '.join(sorted(ATTACHMENT_KINDS))}")
    return problems


def _check_methods(plugin_cls: type[Plugin]) -> list[str]:
    problems = []
    if not inspect.iscoroutinefunction(plugin_cls.setup):
        problems.append("`setup()` must be async: `async def setup(self) -> None`")
    consumes = plugin_cls.consumes if isinstance(plugin_cls.consumes, (set, frozenset, tuple, list)) else ()
    if consumes:
        if plugin_cls.handle_attachment is Plugin.handle_attachment:
            problems.append(
                f"consumes {sorted(consumes)} but does not override handle_attachment(self, attachment, ctx) "
                "-> AttachmentOutput"
            )
        elif not inspect.iscoroutinefunction(plugin_cls.handle_attachment):
            problems.append("`handle_attachment()` must be async: `async def handle_attachment(self, attachment, ctx)`")
    return problems


def _check_settings(plugin_cls: type[Plugin], given: Mapping[str, Any] | None) -> tuple[Any, list[str]]:
    """(the validated settings object, problems)."""
    model = plugin_cls.Settings
    given = dict(given or {})
    if model is None:
        if given:
            return None, [f"settings {sorted(given)} were given, but the plugin has no Settings model"]
        return None, []
    try:
        from pydantic import BaseModel, ValidationError
    except ImportError:  # pragma: no cover - pydantic comes with langchain-core
        return None, ["pydantic is not installed"]
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None, [f"`Settings` must be a pydantic BaseModel subclass, not {model!r}"]
    problems = []
    if model.model_config.get("extra") != "forbid":
        problems.append(
            "`Settings` must forbid unknown keys, so a typo in [plugins.NAME] is an error: "
            'model_config = ConfigDict(extra="forbid")'
        )
    else:
        try:
            model.model_validate({_UNKNOWN_KEY: 1})
            problems.append('`Settings` accepted an unknown key although model_config says extra="forbid"')
        except ValidationError:
            pass
        except Exception as exc:  # noqa: BLE001
            problems.append(f"`Settings` validation crashed: {_exc(exc)}")
    try:
        obj = model.model_validate(given)
    except ValidationError as exc:
        what = f"the settings {given}" if given else "no settings (every option needs a default)"
        detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
        return None, problems + [f"`Settings` rejects {what}: {detail}"]
    except Exception as exc:  # noqa: BLE001
        return None, problems + [f"`Settings` validation crashed: {_exc(exc)}"]
    return obj, problems


def _tool_attrs(plugin_cls: type[Plugin]) -> list[str]:
    return [attr for attr in dir(plugin_cls) if tool_mark(getattr(plugin_cls, attr, None)) is not None]


def _only_tool(plugin_cls: type[Plugin], keep: str) -> type[Plugin]:
    """A subclass showing only the tool `keep`, to find which tool breaks schema building."""
    masked = {attr: None for attr in _tool_attrs(plugin_cls) if attr != keep}
    return type(plugin_cls.__name__, (plugin_cls,), {**masked, "__module__": plugin_cls.__module__})


def _check_tools(plugin_cls: type[Plugin], plugin: Plugin, *, name_ok: bool = True) -> list[str]:
    attrs = _tool_attrs(plugin_cls)
    if not attrs and not plugin_cls.consumes:
        if plugin_cls.capabilities is not Plugin.capabilities:  # it offers front ends something
            return []
        return ["defines no tools (@tool methods), consumes no attachments and offers no capabilities(), so it can do nothing"]
    problems: list[str] = []
    specs: dict[str, ToolSpec] = {}
    for attr in attrs:
        label = f"tool {attr!r}"
        raw = getattr(plugin_cls, attr)
        mark = tool_mark(raw)
        if not callable(raw):
            problems.append(f"{label}: @tool must decorate a method (def or async def)")
            continue
        if not isinstance(mark.risk, Risk):
            problems.append(f"{label}: risk {mark.risk!r} is not an assistant.plugin_api.Risk")
        fn = getattr(plugin, attr)
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            problems.append(f"{label}: has no inspectable signature: {exc}")
            continue
        doc = inspect.getdoc(fn) or ""
        if not doc.strip() or not doc.strip().splitlines()[0].strip():
            problems.append(f"{label}: needs a docstring; its first line is the tool's description for the model")
            continue  # the schema cannot be built without one
        params = [p for p in sig.parameters.values() if not _is_context(p.annotation)]
        bad = False
        for p in params:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                problems.append(
                    f"{label}: *{p.name} / **{p.name} cannot be described to the model; name each parameter"
                )
                bad = True
            elif p.annotation is inspect.Parameter.empty:
                problems.append(f"{label}: parameter {p.name!r} needs a type hint (it becomes the JSON schema type)")
                bad = True
        if bad:
            continue
        try:
            (spec,) = build_tool_specs(_only_tool(plugin_cls, attr)(plugin.settings, data_dir=plugin.data_dir))
            json.dumps(spec.openai())
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{label}: its schema cannot be built from the type hints and docstring: {_exc(exc)}")
            continue
        if not spec.description:
            problems.append(f"{label}: has an empty description")
        if name_ok and not TOOL_NAME.match(spec.name):  # else the plugin's name is the problem, reported above
            problems.append(
                f"{label}: the namespaced name {spec.name!r} must match {TOOL_NAME.pattern} (letters, digits, _ and -; "
                "at most 64 characters)"
            )
        if spec.name in specs:
            problems.append(f"{label}: two tools are named {spec.name!r}")
        props = spec.schema.get("properties", {})
        for p in params:
            described = (props.get(p.name) or {}).get("description", "")
            if not str(described).strip():
                problems.append(
                    f"{label}: parameter {p.name!r} has no description; document it in the docstring's Args: section "
                    f"(Google style, e.g. `{p.name}: What it is.`)"
                )
        specs[spec.name] = spec
    if not problems:
        try:  # the registry's view: all tools of this plugin together
            build_tool_specs(plugin)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"the tool schemas cannot be built: {_exc(exc)}")
    return problems


def _is_context(annotation: Any) -> bool:
    return annotation is ToolContext or annotation == "ToolContext"


def _exc(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# --- running one tool --------------------------------------------------------------------------


def make_plugin(
    plugin_cls: type[_T], settings: Mapping[str, Any] | None = None, *, data_dir: Path | str | None = None
) -> _T:
    """Instantiate a plugin as the registry does: `settings` (a `[plugins.NAME]` table as a dict)
    validated by its Settings model. `data_dir`: its data folder (default: a new temporary one)."""
    from ..errors import PluginError

    settings_obj = None
    if plugin_cls.Settings is not None:
        from pydantic import ValidationError

        try:
            settings_obj = plugin_cls.Settings.model_validate(dict(settings or {}))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PluginError(f"[plugins.{plugin_cls.name}] is invalid: {problems}") from None
    elif settings:
        raise PluginError(f"[plugins.{plugin_cls.name}] sets {', '.join(settings)}, but this plugin has no settings")
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix=f"assistant-plugin-{plugin_cls.name}-"))
    return plugin_cls(settings_obj, data_dir=Path(data_dir))


@dataclass
class ToolRun:
    """What one tool call gave: the text the model would see, the files, and emitted events."""

    text: str
    output: ToolOutput | None = None
    events: list[Any] = field(default_factory=list)

    @property
    def files(self) -> tuple:
        return self.output.files if self.output else ()


def find_tool(plugin: Plugin, tool_name: str) -> ToolSpec:
    """A tool of `plugin` by its short (`forecast`) or namespaced (`weather_forecast`) name."""
    specs = {spec.name: spec for spec in build_tool_specs(plugin)}
    for candidate in (tool_name, f"{plugin.name}_{tool_name}"):
        if candidate in specs:
            return specs[candidate]
    raise KeyError(f"plugin {plugin.name!r} has no tool {tool_name!r}; its tools: {', '.join(sorted(specs)) or 'none'}")


async def ainvoke_tool(plugin: Plugin | type[Plugin], tool_name: str, arguments: Mapping[str, Any] | None = None, *,
                       session_id: str | None = None) -> ToolRun:  # fmt: skip
    """Call a tool as the dialogue would, minus approval; the tool's own exceptions propagate.

    The arguments go through JSON and the tool's schema, exactly like a model's arguments:
    invalid ones raise `assistant.plugin_api.tools.ArgumentError`.
    """
    if isinstance(plugin, type):
        plugin = make_plugin(plugin)
    spec = find_tool(plugin, tool_name)
    try:
        raw = json.dumps(dict(arguments or {}))
    except TypeError as exc:
        raise TypeError(f"tool arguments must be JSON values, as a model sends them: {exc}") from None
    kwargs = spec.parse_arguments(raw)
    events: list[Any] = []
    ctx = ToolContext(plugin.name, session_id, plugin.data_dir, events.append)
    await plugin.ensure_setup()
    text, output = await spec.call(kwargs, ctx)
    return ToolRun(text, output, events)


def invoke_tool(
    plugin: Plugin | type[Plugin], tool_name: str, arguments: Mapping[str, Any] | None = None, **kw: Any
) -> ToolRun:
    """Synchronous `ainvoke_tool`."""
    return _run_sync(lambda: ainvoke_tool(plugin, tool_name, arguments, **kw))


async def arun_tool(plugin: Plugin | type[Plugin], tool_name: str, /, **arguments: Any) -> str:
    """`await arun_tool(plugin, "forecast", city="Oslo")` -> the text the model would get."""
    return (await ainvoke_tool(plugin, tool_name, arguments)).text


def run_tool(plugin: Plugin | type[Plugin], tool_name: str, /, **arguments: Any) -> str:
    """`run_tool(plugin, "forecast", city="Oslo")` -> the text the model would get.

    Validates the arguments through the tool's schema like the dialogue, runs `setup()` once,
    injects a `ToolContext`, and turns dict/list results into JSON text. A plugin class instead
    of an instance is instantiated with default settings and a temporary data folder.
    """
    return invoke_tool(plugin, tool_name, arguments).text


# --- a whole turn ---------------------------------------------------------------------------------


def make_dialogue(
    *plugins: Plugin | type[Plugin],
    model: Any = None,
    replies: Sequence[Any] = (),
    state_dir: Path | str,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    approver: Callable[[Any], Awaitable[str]] | None = None,
) -> Any:
    """A `Dialogue` over just these plugins, for tests. No system prompt, no user config.

    `model`: a ScriptedModel (default: one built from `replies`; it is `dialogue.model`).
    `options`: `[plugins.NAME]` tables. `settings`: other sections, e.g.
    `{"approval": {"side_effects": "auto"}}`. `approver`: plays the person asked for approval.
    Plugin classes get their data folder under `state_dir/plugins/NAME`.
    """
    from ..dialogue.turn import Dialogue
    from ..plugin_api.registry import PluginRegistry, load_plugins
    from ..settings import load_settings
    from .fake_model import ScriptedModel

    state_dir = Path(state_dir)
    overrides: dict[str, dict[str, Any]] = {section: dict(values) for section, values in (settings or {}).items()}
    overrides.setdefault("paths", {}).setdefault("state_dir", str(state_dir))
    overrides.setdefault("dialogue", {}).setdefault("system_prompt", "")
    # XDG_CONFIG_HOME inside state_dir: the developer's own config.toml must not change a test.
    config = load_settings(overrides=overrides, environ={"XDG_CONFIG_HOME": str(state_dir / "no-user-config")})

    classes = [p for p in plugins if isinstance(p, type)]
    registry = (
        load_plugins(extra=classes, options=options, include_entry_points=False, data_root=state_dir / "plugins")
        if classes else PluginRegistry()
    )  # fmt: skip
    if registry.failures:
        raise AssertionError(
            "plugins failed to load:\n" + "\n".join(f"  - {f.name}: {f.error}" for f in registry.failures)
        )
    for instance in plugins:
        if not isinstance(instance, type):
            registry.add(instance, f"instance of {type(instance).__qualname__}")
    if model is None:
        model = ScriptedModel(*replies)
    elif replies:
        raise TypeError("give either model or replies, not both")
    return Dialogue(model, settings=config, registry=registry, approver=approver)


async def aturn(dialogue: Any, text: str, attachments: Iterable[Any] = ()) -> list[Any]:
    """Every event of one turn."""
    return [event async for event in dialogue.turn(text, list(attachments))]


def run_turn(dialogue: Any, text: str, attachments: Iterable[Any] = ()) -> list[Any]:
    """Synchronous `aturn`: `events = run_turn(dialogue, "What's the weather in Oslo?")`."""
    return _run_sync(lambda: aturn(dialogue, text, attachments))


def _run_sync(make_coro: Callable[[], Awaitable[_T]]) -> _T:
    """asyncio.run, also from code that already runs inside an event loop (an async test)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coro())
    box: dict[str, Any] = {}

    def worker() -> None:
        try:
            box["value"] = asyncio.run(make_coro())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=worker, name="assistant-testing")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = [
    "ATTACHMENT_KINDS", "ToolRun", "ainvoke_tool", "arun_tool", "assert_conforms", "aturn", "check_plugin", "find_tool",
    "invoke_tool", "make_dialogue", "make_plugin", "run_tool", "run_turn",
]  # fmt: skip
