"""The out-of-the-box path: `assistant ask` with no configuration on a machine with no hub.

The embedded default takes the most capable bundled model that fits the free memory (here the
Qwen2.5-Coder-1.5B), converts it once, starts a vLLM engine for the command, answers, and stops
the engine again.
"""

import os
import subprocess

import pytest

from .conftest import ASSISTANT, ROOT, cli_env

pytestmark = pytest.mark.vllm


def engines_serving(name: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            except OSError:
                continue
            if b"vllm.entrypoints.openai.api_server" in cmdline and name.encode() in cmdline:
                pids.append(int(entry))
    return pids


def test_capital_of_france_with_the_embedded_default(cache_dir, tmp_path):
    env = cli_env(tmp_path, cache_dir)
    env.pop("ASSISTANT_MODEL__NAME", None)
    out = subprocess.run(
        ASSISTANT + ["ask", "--temperature", "0", "What is the capital of France?"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Paris" in out.stdout
    assert "engine ready" in out.stderr  # start-up progress was shown
    assert "qwen2.5-coder-1.5b-instruct" in out.stderr  # auto took the capable model, and said so
    assert engines_serving("qwen2.5-coder-1.5b-instruct") == []  # the per-command engine was stopped


def test_image_to_text_only_model_is_refused_before_starting_an_engine(cache_dir, tmp_path):
    from PIL import Image

    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    out = subprocess.run(
        ASSISTANT + ["ask", "--model", "bundled:smollm2", "--image", str(img), "What is this?"],
        env=cli_env(tmp_path, cache_dir), cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 3
    assert "cannot take images" in out.stderr and "starting vLLM" not in out.stderr
