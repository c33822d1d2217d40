"""`assistant batch` as a command: flags, wiring beside the other commands, summary, report,
exit codes, the real ChatClient path on scripted HTTP, and Ctrl-C / SIGTERM in a subprocess."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import httpx
import pytest

from assistant.batch import cli as batch_cli
from assistant.batch.pool import Target
from assistant.batch.report import BatchProgress, BatchStats, ScoreRow, score_table
from assistant.batch.runner import BatchOptions
from assistant.cli import _common
from assistant.errors import SettingsError
from assistant.settings import load_settings

from ..conftest import ROOT
from .test_batch_runner import EchoModel


def parser():
    p = argparse.ArgumentParser(prog="assistant", parents=[_common()])
    sub = p.add_subparsers(dest="command")
    common = _common()
    ask = sub.add_parser("ask", parents=[common])
    ask.add_argument("question", nargs="*")
    batch_cli.add_parser(sub, common)
    late = sub.add_parser("later", parents=[common])  # a command added after batch
    late.add_argument("--x")
    return p, common


def test_base_url_repeats_in_batch_and_stays_single_elsewhere():
    p, common = parser()
    args = p.parse_args(["batch", "in.jsonl", "--out", "o.jsonl", "--base-url", "http://a/v1", "--base-url", "http://b/v1,http://c/v1"])
    assert args.base_urls == ["http://a/v1", "http://b/v1,http://c/v1"] and not hasattr(args, "base_url")
    # Flags not given stay None, so the [batch] settings decide (see test_batch_settings_...).
    assert (args.concurrency, args.retry_failed, args.score, args.quiet, args.save_sessions) == (None, None, None, False, None)
    batch = batch_cli.apply_flags(load_settings(environ={}), args).batch
    assert (batch.concurrency, batch.retry_failed, batch.score, batch.save_sessions) == (8, True, "normalized", False)
    assert p.parse_args(["ask", "--base-url", "http://x/v1", "hi"]).base_url == "http://x/v1"
    assert p.parse_args(["later", "--base-url", "http://y/v1"]).base_url == "http://y/v1"
    assert any("--base-url" in a.option_strings for a in common._actions)  # the shared parent is untouched
    top = p.parse_args(["--base-url", "http://top/v1", "batch", "i", "-o", "o", "--model", "m", "--no-retry-failed"])
    assert top.base_url == "http://top/v1" and top.model == "m" and top.retry_failed is False


def test_flag_validation():
    p, _ = parser()
    for bad in (["-c", "0"], ["--extra-body", "[1]"], ["--extra-body", "{nope"], ["--score", "fuzzy"], ["--max-tokens", "-1"]):
        with pytest.raises(SystemExit):
            p.parse_args(["batch", "i", "-o", "o", *bad])
    args = p.parse_args(["batch", "i", "-o", "o", "--extra-body", '{"ignore_eos": true}', "-t", "0", "--seed", "3"])
    assert args.extra_body == {"ignore_eos": True} and (args.temperature, args.seed) == (0.0, 3)
    settings = batch_cli.apply_flags(load_settings(environ={}), args)
    assert (settings.model.temperature, settings.model.seed) == (0.0, 3)


def test_batch_settings_come_from_config_and_environment_and_flags_override_them(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[batch]\nscore = "contains"\nmax_attempts = 5\nretry_failed = false\n')
    settings = load_settings(cfg, environ={"ASSISTANT_BATCH__CONCURRENCY": "3", "ASSISTANT_BATCH__COOLDOWN": "2.5"})
    p, _ = parser()
    unflagged = batch_cli.apply_flags(settings, p.parse_args(["batch", "i", "-o", "o"])).batch
    assert (unflagged.concurrency, unflagged.cooldown, unflagged.score, unflagged.max_attempts) == (3, 2.5, "contains", 5)
    assert unflagged.retry_failed is False and unflagged.save_sessions is False
    flags = ["-c", "12", "--cooldown", "1", "--score", "exact", "--max-attempts", "1", "--retry-failed", "--save-sessions"]
    flagged = batch_cli.apply_flags(settings, p.parse_args(["batch", "i", "-o", "o", *flags])).batch
    assert (flagged.concurrency, flagged.cooldown, flagged.score, flagged.max_attempts) == (12, 1.0, "exact", 1)
    assert flagged.retry_failed is True and flagged.save_sessions is True
    opts = BatchOptions.from_settings(flagged, system="s")
    assert (opts.concurrency, opts.default_match, opts.max_attempts, opts.system) == (12, "exact", 1, "s")
    with pytest.raises(SettingsError, match="batch.concurrency"):
        load_settings(environ={"ASSISTANT_BATCH__CONCURRENCY": "0"})


def test_base_urls_from_flags_or_settings():
    ns = argparse.Namespace(base_urls=["http://a/v1, http://b/v1", "http://a/v1"])
    assert batch_cli.base_urls(ns, load_settings(environ={})) == ["http://a/v1", "http://b/v1"]
    configured = load_settings(overrides={"model": {"base_url": "http://cfg/v1"}}, environ={})
    assert batch_cli.base_urls(argparse.Namespace(base_urls=[]), configured) == ["http://cfg/v1"]
    assert batch_cli.base_urls(argparse.Namespace(base_urls=[]), load_settings(environ={})) == []
    with pytest.raises(batch_cli.UsageError, match="not an http"):
        batch_cli.base_urls(argparse.Namespace(base_urls=["gpu-box:8000"]), load_settings(environ={}))


# --- the command end to end, on fake targets -----------------------------------------------------


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("ASSISTANT_PLUGINS__DISABLED", "speech imagegen")
    for name in list(os.environ):
        if name.startswith("ASSISTANT_MODEL__"):
            monkeypatch.delenv(name)
    return tmp_path


def fake_targets(monkeypatch, *models):
    opened = []

    @contextlib.contextmanager
    def open_targets(settings, urls, progress):
        opened.append(urls)
        yield [Target(f"http://fake{i}/v1", (lambda m=m: m), "fake-model", True) for i, m in enumerate(models)]

    monkeypatch.setattr(batch_cli, "open_targets", open_targets)
    return opened


def write_items(path, n, **extra):
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"question {i}", **extra}) + "\n" for i in range(n)))
    return path


def test_command_runs_scores_and_writes_a_report(env, monkeypatch, capsys):
    inp = env / "in.csv"
    inp.write_text("id,question,expected,match\na,capital?,Paris,contains\nb,sum?,41,exact\nc,free,,\n")
    fake_targets(monkeypatch, EchoModel(answers={"capital?": "It is Paris.", "sum?": "42"}))
    code = batch_cli.main([str(inp), "--out", str(env / "out.jsonl"), "--report", str(env / "report.md"), "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "batch finished: 3 items: 3 done, 0 failed, 0 skipped" in err and "requests/s" in err
    assert "| contains | 1 | 1 | 100.0% | 0 | 0 |" in err and "| exact | 1 | 0 | 0.0% | 0 | 0 |" in err
    assert "| all | 2 | 1 | 50.0% | 0 | 0 |" in err
    report = (env / "report.md").read_text()
    assert report.startswith("# Batch report") and "| contains | 1 | 1 | 100.0% |" in report and "fake-model" in report
    assert len((env / "out.jsonl").read_text().splitlines()) == 3


def test_failed_items_give_exit_3_and_a_rerun_with_nothing_to_do_starts_no_engine(env, monkeypatch, capsys):
    from assistant.errors import RequestRejected

    inp = write_items(env / "in.jsonl", 3)
    opened = fake_targets(monkeypatch, EchoModel(answers={"question 1": RequestRejected("nope")}))
    assert batch_cli.main([str(inp), "-o", str(env / "out.jsonl")]) == 3
    assert "[q1 failed: RequestRejected: nope]" in capsys.readouterr().err
    assert batch_cli.main([str(inp), "-o", str(env / "out.jsonl"), "--no-retry-failed"]) == 3
    assert len(opened) == 1  # nothing to do: no engine or server was opened
    fake_targets(monkeypatch, EchoModel())
    assert batch_cli.main([str(inp), "-o", str(env / "out.jsonl")]) == 0
    assert "1 done, 0 failed, 2 skipped" in capsys.readouterr().err


def test_concurrency_and_score_from_the_environment_and_the_flag_over_it(env, monkeypatch, capsys):
    inp = env / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": f"q{i}", "question": f"question {i}", "expected": f"ANSWER TO QUESTION {i}"}) + "\n" for i in range(6)))
    monkeypatch.setenv("ASSISTANT_BATCH__CONCURRENCY", "2")
    monkeypatch.setenv("ASSISTANT_BATCH__SCORE", "exact")
    model = EchoModel(delay=0.02)
    fake_targets(monkeypatch, model)
    assert batch_cli.main([str(inp), "-o", str(env / "a.jsonl"), "-q"]) == 0
    recs = [json.loads(x) for x in (env / "a.jsonl").read_text().splitlines()]
    assert model.max_in_flight == 2 and {r["score"]["mode"] for r in recs} == {"exact"}
    assert not any(r["score"]["correct"] for r in recs)  # exact: the case differs
    model = EchoModel(delay=0.02)
    fake_targets(monkeypatch, model)
    assert batch_cli.main([str(inp), "-o", str(env / "b.jsonl"), "-q", "-c", "3", "--score", "normalized"]) == 0
    recs = [json.loads(x) for x in (env / "b.jsonl").read_text().splitlines()]
    assert model.max_in_flight == 3 and all(r["score"] == {"mode": "normalized", "correct": True} for r in recs)
    capsys.readouterr()


def test_bad_input_is_a_usage_error_before_anything_opens(env, monkeypatch, capsys):
    inp = env / "in.jsonl"
    inp.write_text('{"id": "a", "question": "q"}\n{"id": "a", "question": "q2"}\n')
    opened = fake_targets(monkeypatch, EchoModel())
    assert batch_cli.main([str(inp), "-o", str(env / "out.jsonl")]) == 2
    assert "line 2: field 'id': duplicate id 'a' (first used on line 1)" in capsys.readouterr().err
    assert opened == [] and not (env / "out.jsonl").exists()


def test_progress_line_counts_throughput_and_eta():
    stats = BatchStats(total=12, to_run=10, skipped=2, done=4, failed=1, completion_tokens=500)
    stats.started = time.perf_counter() - 5.0
    stream = io.StringIO()
    progress = BatchProgress(stats, stream=stream)
    progress.update(force=True)
    line = stream.getvalue()
    assert line.startswith("[batch] 5/10 done, 1 failed · 1.00 items/s · 100 output tok/s · ETA 5 s"), line
    assert score_table([]) .startswith("(no item has an expected answer")
    assert ScoreRow("x", items=4, correct=3).accuracy == 0.75


# --- the real ChatClient on scripted HTTP ------------------------------------------------------------


def sse_answer(text: str) -> bytes:
    chunks = [
        {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
    ]
    return ("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n").encode()


def test_real_client_path_sends_the_options_and_fails_over_from_a_dead_server(env, monkeypatch, capsys):
    """open_targets' ChatClients with a scripted transport: the HTTP bodies carry seed,
    temperature, max_tokens and the extra body; the refused server is left after one try."""
    from assistant.model import client as client_mod

    bodies: list[dict] = []
    refused: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "dead":
            refused.append(str(request.url))
            raise httpx.ConnectError("connection refused", request=request)
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "served-model"}]})
        bodies.append(json.loads(request.content))
        return httpx.Response(200, content=sse_answer("ok"), headers={"content-type": "text/event-stream"})

    real = client_mod.ChatClient

    class Scripted(real):
        def __init__(self, config, transport=None):
            super().__init__(config, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(client_mod, "ChatClient", Scripted)
    inp = write_items(env / "in.jsonl", 6)
    code = batch_cli.main([
        str(inp), "-o", str(env / "out.jsonl"), "--base-url", "http://dead:1/v1,http://live:2/v1",
        "-t", "0", "--seed", "42", "--max-tokens", "16", "--extra-body", '{"ignore_eos": true}', "-c", "2",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    recs = [json.loads(x) for x in (env / "out.jsonl").read_text().splitlines()]
    assert {r["endpoint"] for r in recs} == {"http://live:2/v1"} and {r["model"] for r in recs} == {"served-model"}
    assert len(bodies) == 6 and 1 <= len(refused) <= 2  # no retries on the dead one: it fails over at once
    for body in bodies:
        assert (body["temperature"], body["seed"], body["max_tokens"], body["ignore_eos"]) == (0.0, 42, 16, True)
        assert body["model"] == "served-model" and body["stream"] is True


# --- interrupts, for real ------------------------------------------------------------------------------

SLOW_BATCH = textwrap.dedent(
    """
    import asyncio, contextlib, sys
    from assistant.batch import cli
    from assistant.batch.pool import Target
    from assistant.events import Completion, TextDelta, Timings, Usage

    DELAY = float(sys.argv[1])

    class Slow:
        async def stream_chat(self, messages, **kw):
            await asyncio.sleep(DELAY)
            yield TextDelta("ok")
            yield Completion("ok", "stop", Usage(3, 1), Timings(0.001, DELAY), "slow")

    @contextlib.contextmanager
    def fake_targets(settings, urls, progress):
        yield [Target("http://slow/v1", Slow, "slow")]

    cli.open_targets = fake_targets
    sys.exit(cli.main(sys.argv[2:]))
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_leaves_valid_jsonl_and_a_rerun_completes_without_duplicates(env, sig):
    inp = write_items(env / "in.jsonl", 30)
    out = env / "out.jsonl"
    run_env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-c", SLOW_BATCH]
    proc = subprocess.Popen(
        cmd + ["0.25", str(inp), "-o", str(out), "-c", "3"], cwd=ROOT, env=run_env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or len(out.read_bytes().splitlines()) < 4):
            time.sleep(0.05)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "batch interrupted" in err and "re-run the same command" in err
    lines = out.read_bytes().splitlines(keepends=True)
    assert all(line.endswith(b"\n") for line in lines)
    first = [json.loads(line) for line in lines]  # every line is whole, valid JSON
    assert 4 <= len(first) < 30 and all(r["error"] is None for r in first)

    again = subprocess.run(cmd + ["0", str(inp), "-o", str(out)], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert f"{30 - len(first)} done, 0 failed, {len(first)} skipped" in again.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert sorted(ids) == sorted(f"q{i}" for i in range(30))  # all there, none twice


def test_servers_from_urls_or_the_local_engine_like_ask(monkeypatch):
    from types import SimpleNamespace

    from assistant.model import endpoint as endpoint_mod
    from assistant.model.client import ClientConfig

    settings = load_settings(overrides={"model": {"max_retries": 5}}, environ={})
    with batch_cli.open_targets(settings, ["http://a/v1"], print) as (one,):
        assert one.make_model.args[0].max_retries == 5  # one server: the client's own retries
    with batch_cli.open_targets(settings, ["http://a/v1", "http://b/v1"], print) as targets:
        assert [t.make_model.args[0].max_retries for t in targets] == [0, 0]  # several: fail over instead
        assert [t.url for t in targets] == ["http://a/v1", "http://b/v1"]

    opened = []

    @contextlib.contextmanager
    def fake_open_endpoint(settings, progress, *, needs_vision=False):
        opened.append(needs_vision)
        config = ClientConfig(base_url="http://127.0.0.1:9/v1", model="served", vision=False)
        yield SimpleNamespace(client=config, engine=None, spec=SimpleNamespace(tool_call_parser=None))
        opened.append("stopped")

    monkeypatch.setattr(endpoint_mod, "open_endpoint", fake_open_endpoint)
    with batch_cli.open_targets(settings, [], print) as (local,):
        assert (local.url, local.model_name, local.vision, local.native_tools) == ("http://127.0.0.1:9/v1", "served", False, False)
    assert opened == [False, "stopped"]


def test_every_server_down_stops_with_a_summary_and_the_error(env, monkeypatch, capsys):
    from assistant.errors import EngineUnreachable

    inp = write_items(env / "in.jsonl", 4)
    fake_targets(monkeypatch, EchoModel(answers={"question 2": EngineUnreachable("cannot connect")}))
    assert batch_cli.main([str(inp), "-o", str(env / "out.jsonl"), "-c", "1"]) == 3
    err = capsys.readouterr().err
    assert "batch interrupted: 4 items: 2 done, 0 failed" in err and "re-run the same command" in err
    assert "error: every endpoint is unreachable: http://fake0/v1" in err and "finished items are kept" in err
    assert [json.loads(x)["id"] for x in (env / "out.jsonl").read_text().splitlines()] == ["q0", "q1"]
