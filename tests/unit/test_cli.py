"""Exit codes and messages of the CLI, without any engine."""

import json

import pytest

from assistant.cli import main


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_bare_assistant_opens_the_chat_ui(monkeypatch):
    import assistant.ui.cli as ui_cli

    seen = []
    monkeypatch.setattr(ui_cli, "run", lambda args, settings: seen.append(args.command) or 0)
    assert main([]) == 0 and seen == ["chat"]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("ask", "engine", "plugins", "sessions", "batch", "imagine", "chat"):
        assert command in out


def test_bad_config_key_exits_2_naming_key_and_file(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[engine]\nprot = 1\n")
    assert main(["ask", "--config", str(cfg), "hi"]) == 2
    err = capsys.readouterr().err
    assert "engine.prot" in err and str(cfg) in err and "engine.port" in err


def test_bad_image_fails_before_any_engine_starts(tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"garbage")
    # No base_url and no engine: if the image were not checked first this would try to start vLLM.
    assert main(["ask", "--image", str(bad), "what is it?"]) == 2
    assert "not a readable image" in capsys.readouterr().err


def test_unreachable_server_exits_3_with_hint(capsys):
    code = main(["ask", "--base-url", "http://127.0.0.1:9/v1", "--set", "model.max_retries=0", "--set", "model.served_name='m'", "hi"])
    assert code == 3
    assert "assistant engine start" in capsys.readouterr().err


def test_json_mode_prints_error_object(capsys):
    code = main(["ask", "--json", "--base-url", "http://127.0.0.1:9/v1", "--set", "model.max_retries=0", "hi"])
    assert code == 3
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["type"] == "EngineUnreachable" and err["hint"]


def test_empty_question_is_usage_error(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("   "))
    assert main(["ask"]) == 2
    assert "empty" in capsys.readouterr().err


def test_engine_status_when_nothing_runs_exits_3(capsys):
    assert main(["engine", "status"]) == 3
    assert "not running" in capsys.readouterr().out


def test_config_show_lists_documented_keys(capsys):
    assert main(["config", "show", "--set", "model.temperature=0"]) == 0
    out = capsys.readouterr().out
    assert "model.temperature = 0" in out and "engine.cpu_kv_cache_gib" in out


def test_unhandled_attachment_fails_before_any_engine_starts(tmp_path, capsys):
    import zipfile

    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.txt", "x")
    assert main(["ask", "--attach", str(archive), "what is in it?"]) == 2
    err = capsys.readouterr().err
    assert "photos.zip" in err and "application/zip" in err


def test_unknown_forced_tool_is_a_usage_error(capsys):
    code = main(["ask", "--base-url", "http://127.0.0.1:9/v1", "--set", "model.served_name='m'", "--tool", "nope_tool", "hi"])
    assert code == 2 and "no tool named 'nope_tool'" in capsys.readouterr().err


def test_global_flags_without_a_command_open_the_chat_ui_with_them(monkeypatch):
    import assistant.ui.cli as ui_cli

    seen = []
    monkeypatch.setattr(ui_cli, "run", lambda args, settings: seen.append(settings.model.base_url) or 0)
    assert main(["--base-url", "http://127.0.0.1:9/v1"]) == 0 and seen == ["http://127.0.0.1:9/v1"]


def test_config_path_imports_no_command_module_nor_pydantic(tmp_path):
    """Commands are registered lazily: a cheap command does not import the others' modules."""
    import subprocess
    import sys

    code = (
        "import sys; from assistant.cli import main; code = main(['config', 'path']); "
        "heavy = ('pydantic', 'asyncio', 'assistant_plugins.imagegen', 'assistant.batch', 'assistant.ui', 'httpx'); "
        "print(sorted(m for m in sys.modules if m.startswith(heavy)), code)"
    )
    env = {**__import__("os").environ, "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[] 0"


def test_a_lazy_command_has_its_real_parser_for_help_and_errors(capsys):
    for command, flag in (("imagine", "--negative"), ("batch", "--concurrency"), ("sessions", "list")):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0 and flag in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["batch", "in.jsonl"])  # --out is required: the real parser says so
    assert exc.value.code == 2 and "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--model", "m", "imagine", "--no-such-flag", "a cat"])
    assert exc.value.code == 2 and "--no-such-flag" in capsys.readouterr().err


def test_every_registered_command_module_exists_and_has_add_parser_and_run():
    import importlib

    from assistant.cli import _COMMAND_MODULES, _available_dotted, _index, build_parser, discover_commands

    plugins = _index(discover_commands())
    assert {"kb", "imagine", "support"} <= set(plugins.commands) and not plugins.clashes  # from pyproject.toml
    modules = {name: cmd.module for name, cmd in (_COMMAND_MODULES | plugins.commands).items()}
    for name, dotted in modules.items():
        assert _available_dotted(dotted), name
        module = importlib.import_module(dotted)
        assert callable(module.add_parser) and callable(module.run)
        real, stub = (_subparser(build_parser(c, plugins), name) for c in (name, None))
        assert real.add_help and not stub.add_help  # the stub takes --help on to the real parser
    assert all(cmd.help for cmd in _COMMAND_MODULES.values())
    assert not _available_dotted("assistant_plugins.no_such_plugin.cli") and not _available_dotted("no_such_pkg.cli")


def _subparser(parser, name):
    import argparse

    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
