"""Subcommands from plugin distributions (the `assistant.commands` entry-point group).

The third-party distributions here are made by hand, a module and a `*.dist-info/entry_points.txt`
in a folder put on PYTHONPATH, which is all an installed wheel amounts to; each CLI run is a real
subprocess, so what `assistant --help` imports is what a user's shell would import.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.cli import _index, main
from assistant.command_discovery import _dist_name, discover_commands, help_line

from ..conftest import ROOT

SHOP = '''
"""Shop tools: look products up.

The rest of the docstring is not part of the help line.
"""
import argparse
from pathlib import Path

Path(__file__).with_name("shopcli.imported").touch()  # shows whether `--help` imported this module


def add_parser(subparsers, common):
    p = subparsers.add_parser("shop", parents=[common], help="shop tools")
    p.add_argument("action", choices=["hello"])
    p.add_argument("--shout", action="store_true", help="say it loudly")
    return p


def run(args, settings):
    text = f"hello from the shop, model {settings.model.name}"
    print(text.upper() if args.shout else text)
    return 0
'''


def distribution(root: Path, folder: str, commands: dict[str, str], modules: dict[str, str] = {}) -> Path:
    """A distribution as an installer leaves it: modules, and `folder` (NAME-VERSION.dist-info or
    NAME.egg-info) with the entry_points.txt that declares `commands`."""
    root.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    meta = root / folder
    meta.mkdir()
    name, version = _dist_name(folder)
    (meta / ("METADATA" if folder.endswith(".dist-info") else "PKG-INFO")).write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version or '0'}\n"
    )
    lines = "".join(f"{k} = {v}\n" for k, v in commands.items())
    (meta / "entry_points.txt").write_text(f"[console_scripts]\nshop = shopcli:main\n\n[assistant.commands]\n{lines}")
    return root


def assistant(tmp_path: Path, *argv: str, paths: list[Path] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths)), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "assistant", *argv], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)  # fmt: skip


def imported_by(tmp_path: Path, *argv: str) -> set[str]:
    """The modules in sys.modules once `assistant ARGV...` is done (bench_cli_startup's check)."""
    spec = importlib.util.spec_from_file_location("bench_cli_startup", ROOT / "bench" / "bench_cli_startup.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    return bench.imported_modules(list(argv), env, tmp_path / "modules.json")


def test_help_lists_the_builtin_plugin_commands_without_importing_any_plugin(tmp_path):
    done = assistant(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ")}
    assert {"kb", "imagine", "support", "ask", "config"} <= listed
    assert "knowledge bases: ingest documents, search them" in done.stdout  # kb/cli.py's docstring, lowercased
    imported = imported_by(tmp_path, "--help")
    assert not {m for m in imported if m.startswith("assistant_plugins")}
    assert "assistant.cli" in imported and "importlib.metadata" not in imported  # the 100 ms budget
    assert "assistant.plugin_api" not in imported
    assert "assistant_plugins.kb.cli" in imported_by(tmp_path, "kb", "--help")  # the check can see an import


def test_a_third_party_command_is_listed_without_import_and_runs(tmp_path):
    site = distribution(tmp_path / "site", "shop_dist-1.0.dist-info", {"shop": "shopcli"}, {"shopcli": SHOP})
    marker = site / "shopcli.imported"

    done = assistant(tmp_path, "--help", paths=[site])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:1] == ["shop"] and "shop tools: look products up" in line for line in lines)
    assert not marker.exists()
    assert assistant(tmp_path, "config", "path", paths=[site]).returncode == 0 and not marker.exists()

    done = assistant(tmp_path, "shop", "--help", paths=[site])
    assert done.returncode == 0 and "--shout" in done.stdout and marker.exists()  # its own parser, built now

    done = assistant(tmp_path, "--model", "m1", "shop", "hello", "--shout", paths=[site])
    assert (done.returncode, done.stdout) == (0, "HELLO FROM THE SHOP, MODEL M1\n"), done.stderr
    done = assistant(tmp_path, "shop", "bye", paths=[site])
    assert done.returncode == 2 and "invalid choice: 'bye'" in done.stderr


def test_a_command_named_like_a_core_command_is_refused_naming_both(tmp_path):
    site = distribution(tmp_path / "site", "shop_dist-1.0.dist-info", {"config": "shopcli"}, {"shopcli": SHOP})
    done = assistant(tmp_path, "--help", paths=[site])
    assert done.returncode == 0
    assert "warning: `assistant config` is declared more than once" in done.stdout
    assert "the core command" in done.stdout and "shop_dist 1.0" in done.stdout

    done = assistant(tmp_path, "config", "path", paths=[site])
    assert done.returncode == 2 and done.stdout == ""
    assert "the core command (assistant/cli.py)" in done.stderr and "distribution shop_dist 1.0" in done.stderr
    assert "pip uninstall" in done.stderr
    assert assistant(tmp_path, "sessions", "--help", paths=[site]).returncode == 0  # the others still work


def test_two_distributions_with_one_command_name_are_refused_naming_both(tmp_path):
    one = distribution(tmp_path / "one", "shop_dist-1.0.dist-info", {"shop": "shopcli"}, {"shopcli": SHOP})
    two = distribution(tmp_path / "two", "other_shop-2.0.dist-info", {"shop": "shopcli"})
    done = assistant(tmp_path, "--help", paths=[one, two])
    assert done.returncode == 0 and "NOT RUNNABLE" in done.stdout and "warning: `assistant shop`" in done.stdout

    done = assistant(tmp_path, "shop", "hello", paths=[one, two])
    assert done.returncode == 2 and "shop_dist 1.0" in done.stderr and "other_shop 2.0" in done.stderr
    assert not (one / "shopcli.imported").exists()  # neither was picked


def test_a_module_that_fails_to_import_is_a_clear_error_and_breaks_nothing_else(tmp_path):
    broken = "import no_such_database_driver\n"
    site = distribution(tmp_path / "site", "broken_dist.egg-info", {"broken": "brokencli", "gone": "gonecli"},
                        {"brokencli": broken})  # fmt: skip
    done = assistant(tmp_path, "--help", paths=[site])
    assert done.returncode == 0, done.stderr
    assert "broken" in done.stdout and "(broken: gonecli from broken_dist is not installed)" in done.stdout

    done = assistant(tmp_path, "broken", "--anything", paths=[site])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    err = done.stderr
    assert "importing brokencli" in err and "distribution broken_dist" in err
    assert "ModuleNotFoundError: No module named 'no_such_database_driver'" in err
    assert "reinstall or upgrade broken_dist" in err

    done = assistant(tmp_path, "gone", paths=[site])
    assert done.returncode == 2 and "importing gonecli" in done.stderr
    assert assistant(tmp_path, "config", "path", paths=[site]).returncode == 0


def test_a_module_without_the_contract_is_a_clear_error(tmp_path):
    modules = {"halfcli": '"""Half a command."""\ndef run(args, settings):\n    return 0\n',
               "misnamedcli": SHOP.replace('add_parser("shop"', 'add_parser("shopping"')}  # fmt: skip
    site = distribution(tmp_path / "site", "half-0.1.dist-info", {"half": "halfcli", "misnamed": "misnamedcli",
                                                                 "obj": "halfcli:run"}, modules)  # fmt: skip
    done = assistant(tmp_path, "half", paths=[site])
    assert done.returncode == 2 and "halfcli" in done.stderr and "has no add_parser()" in done.stderr
    done = assistant(tmp_path, "misnamed", paths=[site])
    assert done.returncode == 2 and "did not add a subcommand named 'misnamed'" in done.stderr
    done = assistant(tmp_path, "obj", paths=[site])
    assert done.returncode == 2 and "must name a module" in done.stderr


def test_a_distribution_found_twice_counts_once_where_it_comes_first(tmp_path):
    first = distribution(tmp_path / "a", "Shop.Dist-2.0.dist-info", {"shop": "shop_new"})
    second = distribution(tmp_path / "b", "shop_dist-1.0.dist-info", {"shop": "shop_old", "extra": "shop_old"})
    found = discover_commands([str(first), str(tmp_path / "missing"), str(second)])
    assert [(c.name, c.module, c.dist) for c in found] == [("shop", "shop_new", "Shop.Dist 2.0")]
    assert not _index(found).clashes
    assert _dist_name("shop_dist-1.0-py3.11.egg-info") == ("shop_dist", "1.0") and _dist_name("x.egg-info") == ("x", "")


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ('#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n\n"""Sells things.\n\nMore."""\n', "sells things"),
        ("'''\n    Indented first line.\n'''\n", "indented first line"),
        ('r"""MCP tools over HTTP"""\n', "MCP tools over HTTP"),
        ("'one-liner.'\nx = 1\n", "one-liner"),
        ("import os\n'''not a docstring'''\n", ""),
        ("", ""),
    ],
)
def test_the_help_line_is_the_docstring_read_without_import(tmp_path, monkeypatch, source, line):
    (tmp_path / "helpmod.py").write_text(source + "raise SystemExit('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert help_line("helpmod") == line
    assert help_line("no_such_module_anywhere") is None and help_line("assistant_plugins.kb.nope") is None


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["kb", "--help"], "ingest"), (["imagine", "--help"], "--negative"), (["support", "--help"], "queue"),
     (["support", "queue", "--help"], "claim")],
)  # fmt: skip
def test_the_builtin_plugin_commands_have_their_real_parsers(isolated, capsys, argv, flag):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0 and flag in capsys.readouterr().out


def test_support_queue_reads_the_queue_the_settings_name(isolated, tmp_path, capsys):
    db = tmp_path / "elsewhere" / "q.sqlite"
    assert main(["support", "queue", "show", "H-1", "--set", f"plugins.handoff={{database = '{db}'}}"]) == 1
    assert f"no hand-off queue at {db} yet" in capsys.readouterr().err
    assert main(["support", "queue", "list", "--set", f"paths.state_dir='{tmp_path / 'st'}'"]) == 0
    assert str(tmp_path / "st" / "plugins" / "handoff" / "handoffs.sqlite") in capsys.readouterr().err


def test_the_queue_cli_module_is_an_alias_of_assistant_support_queue(tmp_path):
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-m", "assistant_plugins.support.queue_cli", "claim", "H-1"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "usage: assistant support queue claim" in done.stderr and "--by" in done.stderr
    done = subprocess.run([sys.executable, "-m", "assistant_plugins.support.queue_cli", "list"],
                          capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert done.returncode == 0 and str(tmp_path / "state" / "assistant" / "plugins" / "handoff") in done.stderr
