"""Everything a plugin author relies on: the conformance check, the test helpers, the guide's
example (run from docs/writing-a-plugin.md itself), and `assistant plugins new` producing a
package that installs for real and is discovered through its entry point."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict

from assistant.errors import PluginError, UsageError
from assistant.events import Progress, ToolCallFinished, TurnFinished
from assistant.plugin_api import AttachmentOutput, OutputFile, Plugin, Risk, ToolContext, ToolOutput, tool
from assistant.plugin_api.registry import load_plugins
from assistant.plugin_api.scaffold import class_name_for, create_plugin_package, render_files, validate_plugin_name
from assistant.plugin_api.scaffold_cli import add_new_action, run_new
from assistant.plugin_api.tools import ArgumentError
from assistant.testing import (
    ScriptedModel,
    assert_conforms,
    call,
    check_plugin,
    invoke_tool,
    make_dialogue,
    make_plugin,
    run_tool,
    run_turn,
    text,
)
from assistant_plugins.notes import Notes
from assistant_plugins.utilities import Utilities

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "writing-a-plugin.md"


# --- plugins for the conformance check ---------------------------------------------------------


class Good(Plugin):
    name = "good"
    description = "A well-behaved plugin"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        units: Literal["metric", "imperial"] = "metric"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.setups = 0

    async def setup(self) -> None:
        self.setups += 1

    @tool
    def lookup(self, key: str, limit: int = 3) -> dict:
        """Look a key up.

        Args:
            key: The key.
            limit: Most results.
        """
        return {"key": key, "limit": limit, "units": self.settings.units}

    @tool(risk=Risk.SIDE_EFFECTS)
    async def store(self, value: str, ctx: ToolContext) -> ToolOutput:
        """Store a value.

        Args:
            value: What to store.
        """
        ctx.progress("storing", 0.5)
        return ToolOutput(f"stored {value}", (OutputFile(value.encode(), "text/plain", "value.txt"),))


def variant(**attrs):
    """A subclass of Good with some attributes replaced."""
    return type("Variant", (Good,), attrs)


def one_problem(cls, **kw) -> str:
    problems = check_plugin(cls, **kw)
    assert len(problems) == 1, problems
    return problems[0]


def test_builtin_plugins_conform():
    assert check_plugin(Utilities) == []
    assert check_plugin(Notes) == []
    assert_conforms(Notes, settings={"folder": "/tmp/notes", "max_chars": 10})


def test_a_good_plugin_conforms():
    assert check_plugin(Good) == []
    assert check_plugin(Good, settings={"units": "imperial"}) == []


def test_not_a_plugin():
    assert "not a subclass" in one_problem(object)
    assert "not a subclass" in one_problem(Good())  # an instance, not the class


@pytest.mark.parametrize("name", ["", "Weather", "my-plugin", "2fast", "with space"])
def test_bad_names(name):
    assert "`name`" in one_problem(variant(name=name))


def test_missing_description():
    assert "`description` is missing" in one_problem(variant(description=""))


def test_settings_must_be_pydantic_and_forbid_unknown_keys():
    class Loose(BaseModel):
        units: str = "metric"

    assert "forbid unknown keys" in one_problem(variant(Settings=Loose))

    from dataclasses import dataclass

    @dataclass
    class NotPydantic:
        units: str = "metric"

    assert "pydantic BaseModel" in one_problem(variant(Settings=NotPydantic))


def test_settings_must_accept_no_table_and_validate_the_given_one():
    class Required(BaseModel):
        model_config = ConfigDict(extra="forbid")
        token: str  # no default: the plugin would not load without a table

    assert "every option needs a default" in one_problem(variant(Settings=Required))
    assert "units" in one_problem(Good, settings={"units": "kelvin"})
    assert "bogus" in one_problem(Good, settings={"bogus": 1})
    assert "has no Settings model" in one_problem(Utilities, settings={"x": 1})


def test_tool_without_docstring():
    def find(self, key: str) -> str:
        return key

    assert one_problem(variant(find=tool(find))).startswith("tool 'find': needs a docstring")


def test_parameter_without_type_hint():
    def lookup(self, key, limit: int = 3) -> str:
        """Look a key up.

        Args:
            limit: Most results.
        """

    problem = one_problem(variant(lookup=tool(lookup)))
    assert "'lookup'" in problem and "'key' needs a type hint" in problem


def test_parameter_without_description():
    def lookup(self, key: str, limit: int = 3) -> str:
        """Look a key up.

        Args:
            key: The key.
        """

    problem = one_problem(variant(lookup=tool(lookup)))
    assert "'limit' has no description" in problem and "Args:" in problem


def test_varargs_are_refused():
    def lookup(self, *keys: str) -> str:
        """Look keys up."""

    assert "*keys" in one_problem(variant(lookup=tool(lookup)))


def test_schema_that_cannot_be_built():
    def lookup(self, key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
            other: Not a parameter.
        """

    assert "schema cannot be built" in one_problem(variant(lookup=tool(lookup)))


def test_tool_names_must_fit_the_servers_pattern():
    def lookup(self, key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """

    assert "must match" in one_problem(variant(lookup=tool(lookup, name="look up")))
    assert "must match" in one_problem(variant(lookup=tool(lookup, name="x" * 64)))  # good_xxx... > 64
    assert check_plugin(variant(lookup=tool(lookup, name="find-key"))) == []


def test_risk_must_be_a_risk():
    def lookup(self, key: str) -> str:
        """Look a key up.

        Args:
            key: The key.
        """

    marked = tool(lookup)
    object.__setattr__(lookup.__assistant_tool__, "risk", "dangerous")  # bypasses tool()'s own check
    assert "is not an assistant.plugin_api.Risk" in one_problem(variant(lookup=marked))


def test_attachment_kinds():
    assert "unknown kinds ['video']" in one_problem(variant(produces=frozenset({"video"})))
    assert "must be a set" in one_problem(variant(produces="image"))


def test_consumer_must_override_handle_attachment():
    assert "does not override handle_attachment" in one_problem(variant(consumes=frozenset({"audio"})))

    async def handle_attachment(self, attachment, ctx):
        return AttachmentOutput("transcript")

    assert check_plugin(variant(consumes=frozenset({"audio"}), handle_attachment=handle_attachment)) == []

    def sync_handler(self, attachment, ctx):
        return AttachmentOutput("transcript")

    assert "must be async" in one_problem(variant(consumes=frozenset({"audio"}), handle_attachment=sync_handler))


def test_setup_must_be_async():
    def setup(self):
        pass

    assert "`setup()` must be async" in one_problem(variant(setup=setup))


def test_a_plugin_that_can_do_nothing():
    class Empty(Plugin):
        name = "empty"
        description = "Nothing"

    assert "defines no tools" in one_problem(Empty)


def test_constructor_failure_is_reported():
    def __init__(self, *a, **kw):
        raise RuntimeError("needs a GPU")

    assert "cannot be instantiated" in one_problem(variant(__init__=__init__))


def test_prompts_dir_must_exist(tmp_path):
    assert "`prompts_dir`" in one_problem(variant(prompts_dir=tmp_path / "missing"))
    assert check_plugin(variant(prompts_dir=tmp_path)) == []


def test_several_problems_are_all_listed():
    def find(self, key) -> str:
        return key

    with pytest.raises(AssertionError) as err:
        assert_conforms(variant(name="Bad", description="", find=tool(find)))
    message = str(err.value)
    assert "does not conform" in message
    assert "`name`" in message and "`description`" in message and "docstring" in message


# --- the test helpers ------------------------------------------------------------------------------


def test_run_tool_validates_like_the_dialogue_and_runs_setup_once(tmp_path):
    good = make_plugin(Good, {"units": "imperial"}, data_dir=tmp_path)
    assert json.loads(run_tool(good, "lookup", key="a")) == {"key": "a", "limit": 3, "units": "imperial"}
    assert json.loads(run_tool(good, "good_lookup", key="b", limit="2")) == {
        "key": "b",
        "limit": 2,
        "units": "imperial",
    }
    assert good.setups == 1
    with pytest.raises(ArgumentError, match="key"):
        run_tool(good, "lookup", limit=2)
    with pytest.raises(KeyError, match="good_lookup, good_store"):
        run_tool(good, "missing")


def test_run_tool_lets_the_tools_exception_through():
    with pytest.raises(ValueError, match="unknown time zone"):
        run_tool(Utilities, "current_time", timezone="Mars/Olympus")  # a class: default settings


def test_invoke_tool_returns_files_and_events(tmp_path):
    result = invoke_tool(make_plugin(Good, data_dir=tmp_path), "store", {"value": "x"})
    assert result.text == "stored x" and result.files[0].data == b"x"
    assert result.events == [Progress("good", "storing", 0.5)]


def test_make_plugin_validates_settings():
    with pytest.raises(PluginError, match=r"\[plugins.good\] is invalid"):
        make_plugin(Good, {"units": "kelvin"})
    with pytest.raises(PluginError, match="no settings"):
        make_plugin(Utilities, {"x": 1})


async def test_helpers_work_inside_an_async_test(tmp_path):
    assert run_tool(Utilities, "calculate", expression="6*7") == "6*7 = 42"
    d = make_dialogue(Good, replies=[call("good_lookup", {"key": "k"}), text("done")], state_dir=tmp_path)
    events = run_turn(d, "look k up")
    assert [e.text for e in events if isinstance(e, TurnFinished)] == ["done"]


def test_make_dialogue_with_instances_and_policy(tmp_path):
    good = make_plugin(Good, data_dir=tmp_path / "data")
    d = make_dialogue(
        good, Utilities, replies=[call("good_store", {"value": "v"}), "ok"], state_dir=tmp_path,
        settings={"approval": {"side_effects": "auto"}},
    )  # fmt: skip
    events = run_turn(d, "store v")
    finished = [e for e in events if isinstance(e, ToolCallFinished)][0]
    assert finished.result == "stored v" and finished.error is None
    assert sorted(d.registry.tools) == ["good_lookup", "good_store", "utilities_calculate", "utilities_current_time"]
    assert isinstance(d.model, ScriptedModel)


def test_make_dialogue_reports_plugins_that_fail_to_load(tmp_path):
    with pytest.raises(AssertionError, match="failed to load"):
        make_dialogue(Good, options={"good": {"units": "kelvin"}}, state_dir=tmp_path)


def test_importing_assistant_testing_stays_light():
    code = (
        "import sys, assistant.testing; print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the guide, tested by running its example -----------------------------------------------------


def guide_example(first_line: str) -> str:
    """The fenced python block of the guide whose first line is `first_line`."""
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(encoding="utf-8"), flags=re.S | re.M)
    found = [b for b in blocks if b.splitlines()[0].strip() == first_line]
    assert len(found) == 1, (
        f"the guide needs exactly one ```python block starting with {first_line!r}, found {len(found)}"
    )
    return found[0]


def test_the_guide_example_passes_its_own_tests(tmp_path):
    (tmp_path / "weather_plugin.py").write_text(guide_example("# example: weather_plugin.py"))
    (tmp_path / "test_weather_plugin.py").write_text(guide_example("# example: test_weather_plugin.py"))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b\d+ passed\b", done.stdout) and "failed" not in done.stdout


def test_the_guide_example_loads_from_a_plugins_folder(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "weather_plugin.py").write_text(guide_example("# example: weather_plugin.py"))
    registry = load_plugins(
        folders=[folder],
        include_entry_points=False,
        data_root=tmp_path / "data",
        options={"weather": {"units": "imperial"}},
    )
    assert registry.failures == []
    assert sorted(registry.tools) == ["weather_climate", "weather_climate_table", "weather_plan_trip"]
    assert registry.tools["weather_plan_trip"].risk is Risk.SIDE_EFFECTS
    weather = registry.plugins["weather"]
    assert weather.settings.units == "imperial" and weather.data_dir == tmp_path / "data" / "weather"
    assert_conforms(type(weather))
    assert json.loads(run_tool(weather, "climate", city="Oslo", month=7))["high_f"] == 71.6


def test_the_guide_covers_the_contract():
    guide = GUIDE.read_text(encoding="utf-8")
    for needle in (
        "assistant plugins new", "[plugins.weather]", "Risk.SIDE_EFFECTS", "non_interactive", "ToolContext",
        "ToolOutput", "setup()", "handle_attachment", "prompts_dir", "assistant.testing", "assistant.plugins",
        "dirs = [", "assistant plugins list", "assistant plugins doctor", "weather_climate",
        # the customer-service walkthrough
        "assistant plugins new shop_orders", "[plugins.shop_orders]", "ctx.store", "run_scenario",
        "--format scenario", "live=True", "support_agent",
    ):  # fmt: skip
        assert needle in guide, needle


def guide_data_block(path: str) -> str:
    """The fenced block right after `<!-- example: PATH -->` in the guide (non-Python files)."""
    found = re.findall(rf"^<!-- example: {re.escape(path)} -->\n```\w*\n(.*?)^```", GUIDE.read_text(encoding="utf-8"),
                       flags=re.S | re.M)
    assert len(found) == 1, f"the guide needs exactly one block marked <!-- example: {path} -->, found {len(found)}"
    return found[0]


WALKTHROUGH = {
    "assistant_plugin_shop_orders/__init__.py": lambda: guide_example("# example: assistant_plugin_shop_orders/__init__.py"),
    "tests/test_shop_orders.py": lambda: guide_example("# example: tests/test_shop_orders.py"),
    "tests/scenarios/lookup.json": lambda: guide_data_block("tests/scenarios/lookup.json"),
}


def test_the_walkthrough_builds_a_working_package_from_assistant_plugins_new(tmp_path):
    """Exactly the steps of the walkthrough: `plugins new shop_orders`, then the guide's plugin,
    tests and scenario in place of the generated ones; the package's own tests pass."""
    package = create_plugin_package("shop_orders", tmp_path)
    generated = package / "tests" / "test_shop_orders.py"
    assert generated.is_file() and (package / "assistant_plugin_shop_orders" / "__init__.py").is_file()
    for rel, block in WALKTHROUGH.items():
        target = package / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block(), encoding="utf-8")
    json.loads((package / "tests" / "scenarios" / "lookup.json").read_text())  # valid JSON as printed
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\b7 passed\b", done.stdout), done.stdout

    # And it loads as the assistant would load it, with its settings and risk levels.
    registry = load_plugins(folders=[package], include_entry_points=False, data_root=tmp_path / "data",
                            options={"shop_orders": {"max_attempts": 5}})  # fmt: skip
    assert registry.failures == []
    assert sorted(registry.tools) == ["shop_orders_lookup", "shop_orders_request_cancellation"]
    assert registry.tools["shop_orders_request_cancellation"].risk is Risk.SIDE_EFFECTS
    assert registry.plugins["shop_orders"].settings.max_attempts == 5


def test_the_walkthrough_scenario_catches_a_broken_plugin(tmp_path):
    """The guide's scenario is a real check: a plugin that leaks the order on a wrong email fails it."""
    from assistant.testing.scenarios import run_scenario

    module = tmp_path / "leaky_orders.py"
    code = WALKTHROUGH["assistant_plugin_shop_orders/__init__.py"]()
    check = "ok = row is not None and hmac.compare_digest("
    assert check in code
    module.write_text(code.replace(check, "ok = row is not None or hmac.compare_digest(", 1))  # forgets the email
    scenario = tmp_path / "lookup.json"
    scenario.write_text(WALKTHROUGH["tests/scenarios/lookup.json"]())
    registry = load_plugins(folders=[tmp_path], include_entry_points=False, data_root=tmp_path / "data")
    leaky = type(registry.plugins["shop_orders"])
    run = run_scenario(scenario, workdir=tmp_path / "run", plugins=[leaky])
    assert any("the result lacks 'No order matches'" in p for p in run.problems), run.problems
    assert any("the result contains 'Hand grinder'" in p for p in run.problems), run.problems


# --- scaffolding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "Weather", "my-plugin", "2fast", "_private", "with space", "ünits", "a" * 41])
def test_scaffold_rejects_bad_names(tmp_path, bad):
    with pytest.raises(UsageError):
        create_plugin_package(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_scaffold_name_error_suggests_a_name(tmp_path):
    with pytest.raises(UsageError) as err:
        validate_plugin_name("My-Units")
    assert "lowercase" in str(err.value) and "assistant plugins new my_units" in str(err.value)


def test_scaffold_refuses_the_name_of_an_installed_plugin(tmp_path):
    with pytest.raises(UsageError, match="already installed"):
        create_plugin_package("notes", tmp_path)


def test_scaffold_refuses_to_overwrite(tmp_path):
    existing = tmp_path / "assistant-plugin-units"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError, match="already exists"):
        create_plugin_package("units", tmp_path)
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assistant-plugin-units"]  # no staging leftovers


def test_scaffold_writes_a_complete_package(tmp_path):
    root = create_plugin_package("my_units", tmp_path / "new" / "dir")
    assert root == tmp_path / "new" / "dir" / "assistant-plugin-my_units"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == ["README.md", "assistant_plugin_my_units/__init__.py", "pyproject.toml", "tests/test_my_units.py"]
    import tomllib

    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["dependencies"] == ["assistant"]
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["project"]["entry-points"]["assistant.plugins"] == {
        "my_units": "assistant_plugin_my_units:MyUnitsPlugin"
    }
    assert class_name_for("plugin") == "PluginPlugin" and class_name_for("my_plugin") == "MyPlugin"
    assert set(render_files("x")) == {
        "pyproject.toml",
        "README.md",
        "assistant_plugin_x/__init__.py",
        "tests/test_x.py",
    }


def test_scaffolded_plugin_conforms_and_loads_from_its_folder(tmp_path):
    root = create_plugin_package("greeter", tmp_path)
    registry = load_plugins(folders=[root], include_entry_points=False, data_root=tmp_path / "data")
    assert registry.failures == []
    assert sorted(registry.tools) == ["greeter_greet", "greeter_remember"]
    assert registry.tools["greeter_remember"].risk is Risk.SIDE_EFFECTS
    assert_conforms(type(registry.plugins["greeter"]), settings={"greeting": "Hi"})


def test_plugins_new_command(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="plugins_command")
    add_new_action(sub, argparse.ArgumentParser(add_help=False))
    args = parser.parse_args(["new", "demo", "--dest", str(tmp_path)])
    assert args.plugins_command == "new"
    assert run_new(args) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "assistant-plugin-demo" / "assistant_plugin_demo" / "__init__.py").is_file()
    assert "pip install -e ." in out and "pytest" in out and "assistant plugins list" in out
    with pytest.raises(UsageError, match="already exists"):
        run_new(args)


def _install(package: Path, site: Path, work: Path) -> None:
    """pip install --target, without network or build isolation; falls back to wheel + unzip."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_NO_CACHE_DIR": "1"}
    done = subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--target", str(site), str(package)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    if done.returncode == 0:
        return
    wheels = work / "wheels"
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(package)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, f"pip install failed:\n{done.stderr}\npip wheel failed:\n{built.stderr}"
    (wheel,) = wheels.glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)


def test_scaffolded_package_installs_and_is_discovered_through_its_entry_point(tmp_path):
    package = create_plugin_package("greeter", tmp_path / "src")
    site = tmp_path / "site"
    _install(package, site, tmp_path)
    dist_infos = list(site.glob("assistant_plugin_greeter-*.dist-info"))
    assert len(dist_infos) == 1
    assert "greeter = assistant_plugin_greeter:GreeterPlugin" in (dist_infos[0] / "entry_points.txt").read_text()

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    snippet = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from assistant.plugin_api.registry import load_plugins\n"
        "r = load_plugins(data_root=Path(sys.argv[1]))\n"
        "print(json.dumps({'tools': sorted(r.tools), 'sources': r.sources, 'failures': [f.error for f in r.failures],"
        " 'module': getattr(sys.modules.get('assistant_plugin_greeter'), '__file__', None)}))\n"
    )
    # Run from an unrelated folder, so the package can only come from the installed copy.
    done = subprocess.run(
        [sys.executable, "-c", snippet, str(tmp_path / "data")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["failures"] == []
    assert {"greeter_greet", "greeter_remember"} <= set(found["tools"])
    assert {"utilities_calculate", "notes_save"} <= set(found["tools"])  # alongside the built-ins
    assert found["sources"]["greeter"] == "entry point assistant_plugin_greeter:GreeterPlugin"
    assert Path(found["module"]).is_relative_to(site)

    # Without the installed copy on the path, the plugin is not there: discovery is the entry point.
    plain = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    without = subprocess.run(
        [sys.executable, "-c", snippet, str(tmp_path / "data")],
        cwd=tmp_path, env=plain, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert without.returncode == 0, without.stderr
    assert "greeter_greet" not in json.loads(without.stdout)["tools"]

    # The generated package's own tests pass, against the installed copy (-P: the package folder
    # itself is not put on sys.path, so `import assistant_plugin_greeter` finds the one in site/).
    tests = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=package, env={**env, "PYTHONDONTWRITEBYTECODE": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(r"\b6 passed\b", tests.stdout), tests.stdout
