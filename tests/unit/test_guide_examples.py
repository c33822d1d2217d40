"""docs/writing-a-plugin.md's third-party examples, built from the guide's own text: the
subcommand distribution is pip-installed into a temporary target and its command run as a
subprocess; the front-end capability example is loaded as a plugin and offers its recorder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

from ..conftest import ROOT

GUIDE = (ROOT / "docs" / "writing-a-plugin.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = GUIDE.index(f"## {title}")
    end = GUIDE.find("\n## ", start + 1)
    return GUIDE[start : end if end > 0 else None]


def file_block(text: str, filename: str) -> str:
    """The fenced block right after a line `filename:`."""
    m = re.search(rf"^{re.escape(filename)}:\n\n```\w*\n(.*?)^```", text, re.M | re.S)
    assert m, f"the guide has no `{filename}:` block"
    return m.group(1)


def test_the_subcommand_example_installs_and_runs(tmp_path):
    text = section("Adding a subcommand")
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(file_block(text, "pyproject.toml"))
    (src / "shop_commands.py").write_text(file_block(text, "shop_commands.py"))
    target = tmp_path / "target"
    # --no-deps: "assistant" is this checkout, already installed; --no-build-isolation: offline.
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                          "--target", str(target), str(src)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    assert list(target.glob("assistant_shop_commands-*.dist-info/entry_points.txt"))
    env = dict(os.environ, PYTHONPATH=str(target), XDG_CONFIG_HOME=str(tmp_path / "config"))

    def assistant(*args):
        return subprocess.run([sys.executable, "-m", "assistant", *args], env=env, capture_output=True, text=True, timeout=60)

    helped = assistant("--help")
    assert helped.returncode == 0, helped.stderr
    assert re.search(r"^\s+shop\s+shop tools: greet a customer", helped.stdout, re.M), helped.stdout
    hello = assistant("shop", "hello", "Ana", "--shout")
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout.strip() == "HELLO, ANA! (THE ASSISTANT WOULD ANSWER WITH AUTO)"
    empty = assistant("shop", "hello", " ")
    assert empty.returncode == 2 and "the name is empty" in empty.stderr


def test_the_capability_example_offers_a_recorder(tmp_path):
    from assistant.plugin_api import Recorder
    from assistant.plugin_api.registry import load_plugins

    code = re.search(r"```python\n(.*?)```", section("Front-end capabilities"), re.S).group(1)
    namespace: dict = {"__name__": "dictaphone_example"}
    exec(compile(textwrap.dedent(code), "writing-a-plugin.md", "exec"), namespace)
    registry = load_plugins(extra=[namespace["Dictaphone"]], include_entry_points=False, data_root=tmp_path)
    assert not registry.failures, registry.failures
    (recorder,) = registry.plugins["dictaphone"].capabilities()
    assert isinstance(recorder, Recorder) and recorder.label == "Dictate" and recorder.unavailable() is None

