"""`assistant plugins new NAME`: a complete, installable third-party plugin package to start from.

    create_plugin_package("greeter", Path("."))   # -> ./assistant-plugin-greeter/

writes

    assistant-plugin-greeter/
        pyproject.toml                      # entry point: [project.entry-points."assistant.plugins"]
        README.md
        assistant_plugin_greeter/__init__.py   # the plugin: settings, a read-only and a side-effect tool
        tests/test_greeter.py                  # conformance, run_tool, a scripted dialogue turn

The package's own tests pass as generated; `pip install -e .` makes `assistant plugins list`
show it. docs/writing-a-plugin.md explains every part.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

from ..errors import UsageError

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME_LENGTH = 40  # tool names are <name>_<tool>, and servers accept at most 64 characters


def validate_plugin_name(name: str) -> str:
    """The name, if it can name a plugin; UsageError saying why not otherwise."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name or ""):
        suggestion = re.sub(r"[^a-z0-9_]+", "_", str(name).strip().lower()).strip("_")
        suggestion = suggestion if NAME_PATTERN.fullmatch(suggestion) else ""
        raise UsageError(
            f"invalid plugin name {name!r}: use lowercase letters, digits and underscores, starting with a letter",
            hint=f"e.g. `assistant plugins new {suggestion or 'weather'}`",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(
            f"plugin name {name!r} is too long ({len(name)} characters, at most {MAX_NAME_LENGTH})",
            hint="tool names are <plugin>_<tool> and must fit in 64 characters; pick a shorter name",
        )
    installed = _installed_plugin_names()
    if name in installed:
        raise UsageError(
            f"a plugin named {name!r} is already installed ({installed[name]})",
            hint="two plugins with one name cannot load together; pick another name",
        )
    return name


def class_name_for(name: str) -> str:
    """`my_units` -> `MyUnitsPlugin`: CamelCase, ending in Plugin, never clashing with an import."""
    camel = "".join(part.capitalize() for part in name.split("_") if part)
    if not camel.endswith("Plugin") or camel == "Plugin":
        camel += "Plugin"
    return camel


def create_plugin_package(name: str, dest: Path | str) -> Path:
    """Write `dest/assistant-plugin-<name>/` and return that folder. Never overwrites anything."""
    validate_plugin_name(name)
    dest = Path(dest).expanduser()
    root = dest / f"assistant-plugin-{name}"
    if root.exists() or root.is_symlink():
        raise UsageError(f"{root} already exists; not overwriting it", hint="pick another --dest or remove that folder")
    if dest.exists() and not dest.is_dir():
        raise UsageError(f"--dest {dest} is not a folder")
    dest.mkdir(parents=True, exist_ok=True)

    files = render_files(name)
    # Written into a temporary folder next to the target, then renamed: never half a package.
    staging = dest / f".assistant-plugin-{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        for rel, content in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
        try:
            os.rename(staging, root)  # fails if root appeared meanwhile (non-empty) or exists as a file
        except OSError:
            raise UsageError(f"{root} already exists; not overwriting it") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return root


def render_files(name: str) -> dict[str, str]:
    """Relative path -> content of every file of the package for plugin `name`."""
    cls = class_name_for(name)
    module = f"assistant_plugin_{name}"
    values = {
        "__NAME__": name,
        "__CLASS__": cls,
        "__MODULE__": module,
        "__DIST__": f"assistant-plugin-{name}",
        "__SETTINGS__": f"{cls.removesuffix('Plugin') or cls}Settings",
    }

    def fill(template: str) -> str:
        for key, value in values.items():
            template = template.replace(key, value)
        return template

    return {
        "pyproject.toml": fill(_PYPROJECT),
        "README.md": fill(_README),
        f"{module}/__init__.py": fill(_PLUGIN),
        f"tests/test_{name}.py": fill(_TESTS),
    }


def _installed_plugin_names() -> dict[str, str]:
    import importlib.metadata

    from .registry import ENTRY_POINT_GROUP

    try:
        return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # noqa: BLE001 - a broken distribution elsewhere must not block scaffolding
        return {}


# --- templates ------------------------------------------------------------------------------

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "__DIST__"
version = "0.1.0"
description = "The __NAME__ plugin for the assistant"
readme = "README.md"
requires-python = ">=3.11"
# The assistant itself provides everything a plugin imports (assistant.plugin_api, pydantic).
dependencies = ["assistant"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.24"]

# This is how the assistant finds the plugin: entry point group "assistant.plugins",
# name = the plugin's name, value = "module:Class".
[project.entry-points."assistant.plugins"]
__NAME__ = "__MODULE__:__CLASS__"

[tool.setuptools]
packages = ["__MODULE__"]

[tool.pytest.ini_options]
testpaths = ["tests"]
asyncio_mode = "auto"  # async def tests run as they are (pytest-asyncio, as in the assistant's own tests)
asyncio_default_fixture_loop_scope = "function"
"""

_PLUGIN = '''\
"""The __NAME__ plugin for the assistant.

Generated by `assistant plugins new __NAME__`: a working starting point with one setting, a
read-only tool and a tool with side effects. Replace them with your own; the guide
(docs/writing-a-plugin.md in the assistant's repository) explains every part.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from assistant.plugin_api import Plugin, Risk, ToolContext, tool


class __SETTINGS__(BaseModel):
    """Read from the [plugins.__NAME__] table of config.toml."""

    model_config = ConfigDict(extra="forbid")  # a typo in the config is an error, not ignored

    greeting: str = Field("Hello", description="The word `greet` starts with.")


class __CLASS__(Plugin):
    name = "__NAME__"  # tools are offered to the model as __NAME___<tool>
    description = "Greets people and writes facts down (replace with what your plugin does)"
    Settings = __SETTINGS__

    async def setup(self) -> None:
        """Load heavy things here (models, indexes): called once, before the first tool call."""

    @tool
    def greet(self, person: str, excited: bool = False) -> str:
        """Greet a person by name.

        Args:
            person: Who to greet, e.g. "Ada".
            excited: End with an exclamation mark instead of a full stop.
        """
        person = person.strip()
        if not person:
            raise ValueError("person is empty; give a name")  # the model sees this and can retry
        return f"{self.settings.greeting}, {person}{'!' if excited else '.'}"

    @tool(risk=Risk.SIDE_EFFECTS)  # the [approval] policy decides whether it may run
    def remember(self, fact: str, ctx: ToolContext) -> str:
        """Write a fact down for later.

        Args:
            fact: The fact, in one sentence.
        """
        fact = fact.strip()
        if not fact:
            raise ValueError("fact is empty")
        ctx.data_dir.mkdir(parents=True, exist_ok=True)  # this plugin's own data folder
        with (ctx.data_dir / "facts.txt").open("a", encoding="utf-8") as fh:
            fh.write(fact + "\\n")
        ctx.progress("fact saved", 1.0)
        return f"remembered: {fact}"
'''

_TESTS = '''\
"""Tests for the __NAME__ plugin: no model server, no network (run: python -m pytest -q)."""

import pytest

from assistant.events import ApprovalDecided, ToolCallFinished, TurnFinished
from assistant.testing import ScriptedModel, assert_conforms, call, make_dialogue, make_plugin, run_tool, run_turn

from __MODULE__ import __CLASS__


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_follows_the_plugin_contract():
    assert_conforms(__CLASS__)
    assert_conforms(__CLASS__, settings={"greeting": "Hi"})


def test_greet_uses_the_setting(tmp_path):
    plugin = make_plugin(__CLASS__, {"greeting": "Hi"}, data_dir=tmp_path)
    assert run_tool(plugin, "greet", person="Ada", excited=True) == "Hi, Ada!"


def test_greet_refuses_an_empty_name(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        run_tool(make_plugin(__CLASS__, data_dir=tmp_path), "greet", person=" ")


def test_remember_writes_into_the_data_folder(tmp_path):
    plugin = make_plugin(__CLASS__, data_dir=tmp_path / "data")
    assert run_tool(plugin, "remember", fact="Ada likes tea.") == "remembered: Ada likes tea."
    assert (tmp_path / "data" / "facts.txt").read_text() == "Ada likes tea.\\n"


def test_the_model_calls_greet_in_a_dialogue(tmp_path):
    model = ScriptedModel(call("__NAME___greet", {"person": "Ada"}), "I said hello to Ada.")
    dialogue = make_dialogue(__CLASS__, model=model, state_dir=tmp_path)
    events = run_turn(dialogue, "Please greet Ada")
    (finished,) = of(events, ToolCallFinished)
    assert finished.result == "Hello, Ada." and finished.error is None
    assert model.requests[1]["messages"][-1]["content"] == "Hello, Ada."  # the result went back to the model
    assert of(events, TurnFinished)[0].text == "I said hello to Ada."


def test_remember_runs_only_when_approved(tmp_path):
    # Default policy: side effects are asked about, and with nobody to ask they are denied.
    replies = [call("__NAME___remember", {"fact": "x"}), "ok"]
    denied = make_dialogue(__CLASS__, replies=replies, state_dir=tmp_path / "a")
    assert of(run_turn(denied, "remember x"), ApprovalDecided)[0].decision == "denied-by-policy"
    assert not (tmp_path / "a" / "plugins" / "__NAME__" / "facts.txt").exists()

    async def approve(request):  # plays the person answering the approval question
        return "approve"

    allowed = make_dialogue(__CLASS__, replies=replies, state_dir=tmp_path / "b", approver=approve)
    assert of(run_turn(allowed, "remember x"), ApprovalDecided)[0].approved
    assert (tmp_path / "b" / "plugins" / "__NAME__" / "facts.txt").read_text() == "x\\n"
'''

_README = """\
# __DIST__

The `__NAME__` plugin for the assistant. It adds these tools:

| tool | risk | what |
|---|---|---|
| `__NAME___greet` | read-only | greets a person |
| `__NAME___remember` | side effects | writes a fact into the plugin's data folder |

## Install

Into the environment the assistant runs in:

```bash
pip install -e .            # registers the entry point "assistant.plugins" -> __NAME__
assistant plugins list      # __NAME__ and its tools
assistant plugins doctor    # checks the plugin against the contract
```

## Configure

In `~/.config/assistant/config.toml`:

```toml
[plugins.__NAME__]
greeting = "Hello"   # the word `greet` starts with
```

`__NAME___remember` changes something, so the `[approval]` policy applies: by default the
assistant asks before running it (`side_effects = "ask"`), and denies it when nobody can be
asked (`non_interactive = "deny"`).

## Develop

```bash
python -m pytest -q
```

The tests use `assistant.testing`: `assert_conforms` (the plugin contract), `run_tool` (one tool
call, validated like the model's) and `make_dialogue` + `ScriptedModel` (a whole turn in which a
scripted model calls the tool). See "Writing a plugin" (docs/writing-a-plugin.md in the
assistant's repository).
"""
