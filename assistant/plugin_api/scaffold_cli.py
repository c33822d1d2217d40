"""`assistant plugins new NAME [--dest DIR]`: the action the `plugins` command delegates to.

The `plugins` command itself (list, doctor) lives in plugin_api/commands.py; it calls
`add_new_action(plugins_subparsers, common_parent)` while building the parser and
`run_new(args)` when the action is `new`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any


def add_new_action(plugins_subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    new = plugins_subparsers.add_parser(
        "new",
        parents=[common_parent],
        help="create a plugin package to start from (pyproject, plugin, tests, README)",
        description="Create assistant-plugin-NAME/: an installable plugin package whose tests pass as generated.",
    )
    new.add_argument("name", metavar="NAME", help="the plugin's name: lowercase letters, digits and _, e.g. weather")
    new.add_argument(
        "--dest", metavar="DIR", default=".", help="folder to create the package in (default: the current one)"
    )
    return new


def run_new(args: argparse.Namespace) -> int:
    from .scaffold import class_name_for, create_plugin_package

    root = create_plugin_package(args.name, Path(args.dest))
    name = args.name
    shown = _shown(root)
    pip = f"{shlex.quote(sys.executable)} -m pip" if sys.executable else "pip"
    print(f"created {shown}/")
    _table(
        [
            (
                "pyproject.toml",
                f"entry point assistant.plugins: {name} = assistant_plugin_{name}:{class_name_for(name)}",
            ),
            (f"assistant_plugin_{name}/__init__.py", "the plugin: a setting, a read-only and a side-effect tool"),
            (f"tests/test_{name}.py", "conformance, run_tool and a scripted dialogue turn"),
            ("README.md", "install, configure, develop"),
        ]
    )
    print("\nnext steps:")
    _table(
        [
            (f"cd {shlex.quote(shown)}", ""),
            (f"{pip} install -e .", "# into the assistant's environment; registers the entry point"),
            ("python -m pytest -q", "# the generated tests pass as they are"),
            ("assistant plugins list", f"# shows {name} with its tools {name}_greet and {name}_remember"),
            ("assistant plugins doctor", "# checks it against the plugin contract"),
        ]
    )
    print('then make it yours: "Writing a plugin" (docs/writing-a-plugin.md) explains every part.')
    return 0


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(left) for left, _ in rows)
    for left, right in rows:
        print(f"  {left:<{width}}  {right}".rstrip())


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) or "."
    except ValueError:
        return str(path)


__all__ = ["add_new_action", "run_new"]
