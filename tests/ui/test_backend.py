"""The real program's backend and the `chat` command, without a model server."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from assistant.sessions import SessionNotFound
from assistant.settings import load_settings
from assistant.ui import cli
from assistant.ui.backend import EngineBackend, build_backend

from . import make_dialogue

ROOT = Path(__file__).resolve().parents[2]

REAL_APP = textwrap.dedent(
    """
    import asyncio, json, sys, time
    started = time.perf_counter()
    from assistant.settings import load_settings
    from assistant.ui.app import create_app
    from assistant.ui.backend import build_backend

    settings = load_settings(
        overrides={"model": {"base_url": "http://127.0.0.1:9/v1", "max_retries": 0, "connect_timeout": 1}},
        environ={"XDG_STATE_HOME": sys.argv[1], "XDG_CONFIG_HOME": sys.argv[1] + "/config"},
    )
    app = create_app(build_backend(settings))
    seen = []
    app.notify = lambda message, **kw: seen.append((kw.get("severity"), message))

    async def main():
        async with app.run_test() as pilot:
            await pilot.pause()
            painted, painted_cpu = time.perf_counter() - started, time.process_time()
            while not app.backend_ready.is_set():
                await pilot.pause(0.05)
            ready = time.perf_counter() - started
            heavy = sorted(m for m in ("torch", "vllm", "transformers") if m in sys.modules)
            app.chat.prompt.value = "Hello?"
            await pilot.press("enter")
            while app.chat.turn_running or not seen:
                await pilot.pause(0.05)
            print(json.dumps({"painted": painted, "painted_cpu": painted_cpu, "ready": ready, "heavy": heavy, "seen": seen,
                              "input": app.chat.prompt.value, "error": repr(app.backend_error)}))
        app.backend.close()

    asyncio.run(main())
    """
)


def test_real_backend_starts_without_heavy_libraries_and_reports_an_unreachable_server(tmp_path):
    """The app with the real backend pointed at a closed port: it paints, loads the plugins
    in the background, imports no torch/vllm/transformers, and a question gives a notification
    naming the problem (not a traceback), with the question put back."""
    out = subprocess.run(
        [sys.executable, "-c", REAL_APP, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"real backend, from process start: first paint {result['painted'] * 1000:.0f} ms "
        f"({result['painted_cpu'] * 1000:.0f} ms CPU), plugins loaded {result['ready'] * 1000:.0f} ms"
    )
    assert result["heavy"] == [] and result["error"] == "None"
    severity, message = result["seen"][-1]
    assert severity == "error" and "127.0.0.1:9" in message and "→" in message and "Traceback" not in message
    assert result["input"] == "Hello?"


def test_build_backend_resolves_the_session_and_refuses_an_unknown_one(tmp_path):
    settings = load_settings(overrides={"paths": {"state_dir": str(tmp_path / "state")}}, environ={})
    dialogue = make_dialogue(tmp_path, "Hi.")  # same state dir: its store is the one build_backend opens

    async def talk():
        async for _ in dialogue.turn("hello"):
            pass

    import asyncio

    asyncio.run(talk())
    backend = build_backend(settings, session="last")
    try:
        assert isinstance(backend, EngineBackend) and backend.session_id == dialogue.session_id
        assert [r.title for r in backend.sessions()] == ["hello"]
        assert [(s.role, s.text) for s in backend.transcript(backend.session_id)] == [("user", "hello"), ("assistant", "Hi.")]
    finally:
        backend.close()
    with pytest.raises(SessionNotFound):
        build_backend(settings, session="nope")


def test_chat_subcommand_has_session_and_the_common_flags():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model")
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub, common)
    args = parser.parse_args(["chat", "--session", "last", "--model", "bundled:smollm2"])
    assert (args.command, args.session, args.model) == ("chat", "last", "bundled:smollm2")
    assert parser.parse_args(["chat"]).session is None


def test_standalone_entry_reports_a_bad_session_before_opening_the_ui(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert cli.main(["--session", "nope", "--base-url", "http://127.0.0.1:9/v1"]) == 2
    assert "no session" in capsys.readouterr().err


def test_only_the_backend_imports_the_model_and_dialogue_layers():
    import ast

    layers = ("assistant.model", "assistant.dialogue", "assistant.runtime", "assistant.sessions", "assistant.plugin_api", "assistant.ask")
    offenders = []
    for path in sorted((ROOT / "assistant" / "ui").rglob("*.py")):
        if path.name == "backend.py":
            continue
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                names = [".".join(base + ([node.module] if node.module else []))]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith(layers)]
    assert offenders == []
