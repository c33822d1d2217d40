"""Plugin discovery: failures are reported and skipped; duplicate tool names are loud."""

import json

import pytest
from pydantic import BaseModel, ConfigDict

from assistant.cli import main
from assistant.errors import PluginError
from assistant.plugin_api import Plugin, Risk, tool
from assistant.plugin_api.registry import load_plugins


class Alpha(Plugin):
    name = "alpha"
    description = "first"

    @tool
    def ping(self, text: str) -> str:
        """Echo.

        Args:
            text: What to echo.
        """
        return text


class Configured(Plugin):
    name = "configured"
    description = "has settings"

    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid")
        level: int = 1

    @tool(risk=Risk.SIDE_EFFECTS)
    def act(self) -> str:
        """Act."""
        return str(self.settings.level)


def load(tmp_path, *classes, **kw):
    return load_plugins(extra=list(classes), include_entry_points=False, data_root=tmp_path, **kw)


def test_tools_are_namespaced_and_carry_risk(tmp_path):
    reg = load(tmp_path, Alpha, Configured, options={"configured": {"level": 3}})
    assert set(reg.tools) == {"alpha_ping", "configured_act"}
    assert reg.tools["configured_act"].risk is Risk.SIDE_EFFECTS
    assert reg.plugins["configured"].settings.level == 3
    assert reg.plugins["alpha"].data_dir == tmp_path / "alpha"


def test_duplicate_tool_names_are_a_loud_error(tmp_path):
    class Dup(Plugin):
        name = "alpha"  # same plugin name as Alpha
        description = "dup"

    with pytest.raises(PluginError, match="two plugins are named 'alpha'"):
        load(tmp_path, Alpha, Dup)

    class Twin(Plugin):
        name = "twin"
        description = "makes alpha_ping too"

        @tool(name="ping")
        def x(self) -> str:
            """x."""
            return ""

    Twin.name = "alpha"
    with pytest.raises(PluginError):
        load(tmp_path, Alpha, Twin)


def test_same_tool_name_from_two_plugins(tmp_path):
    class P1(Plugin):
        name = "p"
        description = "1"

        @tool(name="x_y")
        def a(self) -> str:
            """a."""
            return ""

    class P2(Plugin):
        name = "p_x"
        description = "2"

        @tool(name="y")
        def b(self) -> str:
            """b."""
            return ""

    with pytest.raises(PluginError, match="duplicate tool name 'p_x_y'"):
        load(tmp_path, P1, P2)


def test_bad_settings_unknown_config_and_broken_files_are_skipped_and_reported(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "broken.py").write_text("import not_a_module_anywhere\n")
    (folder / "empty.py").write_text("x = 1\n")
    (folder / "good.py").write_text(
        "from assistant.plugin_api import Plugin, tool\n"
        "class Good(Plugin):\n"
        "    name = 'good'\n"
        "    description = 'ok'\n"
        "    @tool\n"
        "    def hi(self) -> str:\n"
        "        '''Say hi.'''\n"
        "        return 'hi'\n"
    )
    reg = load(tmp_path, Configured, folders=[folder], options={"configured": {"levle": 2}, "ghost": {"a": 1}})
    assert set(reg.plugins) == {"good"}
    failures = {f.name: f.error for f in reg.failures}
    assert "ModuleNotFoundError" in failures["broken"]
    assert "exactly one Plugin subclass" in failures["empty"]
    assert "levle" in failures["configured"]
    assert "no such plugin is installed" in failures["ghost"]


def test_disabled_plugins_are_not_loaded(tmp_path):
    reg = load(tmp_path, Alpha, Configured, disabled={"alpha"})
    assert set(reg.plugins) == {"configured"}


def test_consumers_by_kind(tmp_path):
    class Ears(Plugin):
        name = "ears"
        description = "listens"
        consumes = frozenset({"audio"})

        async def handle_attachment(self, attachment, ctx):
            raise NotImplementedError

    assert load(tmp_path, Ears, Alpha).consumers() == {"audio": ["ears"]}


def test_plugins_list_and_doctor_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert main(["plugins", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    names = {p["name"] for p in listed["plugins"]}
    assert {"utilities", "notes"} <= names
    notes = next(p for p in listed["plugins"] if p["name"] == "notes")
    assert {t["name"]: t["risk"] for t in notes["tools"]}["notes_save"] == "side_effects"
    assert main(["plugins", "doctor", "--no-model"]) == 0
    assert "✓ utilities" in capsys.readouterr().out
    # A typo in a plugin's table makes doctor fail with the problem named.
    assert main(["plugins", "doctor", "--no-model", "--set", "plugins.notes={foldr='x'}"]) == 2
    assert "foldr" in capsys.readouterr().out


def test_opt_in_plugins_load_only_when_enabled(tmp_path):
    from assistant.plugin_api import Plugin, tool
    from assistant.plugin_api.registry import load_plugins

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "desk.py").write_text(
        "from assistant.plugin_api import Plugin, tool\n"
        "class Desk(Plugin):\n"
        "    name = 'desk'\n"
        "    opt_in = True\n"
        "    @tool\n"
        "    def ping(self) -> str:\n"
        "        '''Ping.'''\n"
        "        return 'pong'\n"
    )
    off = load_plugins(folders=[folder], data_root=tmp_path, include_entry_points=False,
                       options={"desk": {}})
    assert "desk" not in off.plugins and off.not_enabled == ["desk"] and not off.failures
    on = load_plugins(folders=[folder], data_root=tmp_path, include_entry_points=False, enabled={"desk"})
    assert "desk_ping" in on.tools
