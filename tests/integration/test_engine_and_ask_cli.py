"""`assistant engine start|status|stop` and `assistant ask` as real subprocesses."""

import io
import json
import os
import subprocess

import pytest
from PIL import Image

from .conftest import ASSISTANT, ROOT, cli_env

pytestmark = pytest.mark.vllm


def run(args, env, timeout=600, **kw):
    return subprocess.run(ASSISTANT + args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kw)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def background(tiny_vlm_dir, cache_dir, tmp_path_factory):
    env = cli_env(tmp_path_factory.mktemp("cli"), cache_dir, ASSISTANT_MODEL__NAME=str(tiny_vlm_dir))
    started = run(["engine", "start"], env)
    assert started.returncode == 0, started.stderr
    status = json.loads(run(["engine", "status", "--json"], env).stdout)
    yield env, status
    run(["engine", "stop"], env)


def test_start_reports_and_status_describes_the_engine(background):
    env, status = background
    assert status["running"] is True and status["background"] is True
    assert status["base_url"].startswith("http://127.0.0.1:") and alive(status["pid"])
    again = run(["engine", "start"], env)  # idempotent: reuses the running engine
    assert again.returncode == 0 and f"pid {status['pid']}" in again.stdout


def test_ask_reuses_the_background_engine_and_streams(background):
    env, status = background
    out = run(["ask", "--max-tokens", "12", "--temperature", "0", "Say something."], env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("\n") and "starting vLLM" not in out.stderr


def test_ask_json_has_answer_usage_and_timings(background):
    env, status = background
    out = run(["ask", "--json", "--max-tokens", "12", "--temperature", "0", "Say something."], env, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["engine"] == {"base_url": status["base_url"], "embedded": True, "reused_background": True}
    assert data["usage"]["completion_tokens"] >= 1 and data["usage"]["prompt_tokens"] > 0
    assert data["timings"]["turn_s"] > 0 and data["finish_reason"] in ("stop", "length")
    assert isinstance(data["answer"], str)


def test_ask_with_image_file(background, tmp_path):
    env, _ = background
    img = tmp_path / "cat.jpg"
    Image.new("RGB", (640, 480), (10, 200, 30)).save(img, format="JPEG")
    text = run(["ask", "--json", "--max-tokens", "4", "hi"], env, timeout=120)
    out = run(["ask", "--json", "--max-tokens", "4", "--image", str(img), "hi"], env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["usage"]["prompt_tokens"] > json.loads(text.stdout)["usage"]["prompt_tokens"]


def test_question_from_stdin(background):
    env, _ = background
    out = run(["ask", "--json", "--max-tokens", "4"], env, timeout=120, input="a question on stdin\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["usage"]["prompt_tokens"] > 0


def test_context_too_long_exits_3_with_advice(background):
    env, _ = background
    out = run(["ask", "--max-tokens", "8"], env, timeout=120, input="word " * 9000)
    assert out.returncode == 3
    assert "context window" in out.stderr and "max_tokens" in out.stderr


def test_stop_ends_the_engine_and_its_children(tiny_vlm_dir, cache_dir, tmp_path):
    env = cli_env(tmp_path, cache_dir, ASSISTANT_MODEL__NAME=str(tiny_vlm_dir))
    assert run(["engine", "start"], env).returncode == 0
    pid = json.loads(run(["engine", "status", "--json"], env).stdout)["pid"]
    stopped = run(["engine", "stop"], env)
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stdout
    assert not alive(pid)
    assert run(["engine", "status"], env).returncode == 3
    assert not any(_group_members(pid)), "vLLM child processes outlived the stop"


def _group_members(pgid: int):
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    yield int(entry)
            except OSError:
                continue
