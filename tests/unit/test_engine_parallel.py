"""vLLM's own scale-out settings: passed through to its command line, and a split the machine
cannot run is a clear error before any engine starts."""

import json

import pytest

from assistant.errors import SettingsError
from assistant.model.engine import EngineManager, build_command
from assistant.model.parallel import check_parallelism, visible_gpus

from .test_engine_command import TEXT, arg, settings


def test_sizes_and_backend_reach_vllms_command_line():
    s = settings("engine.tensor_parallel_size=2", "engine.pipeline_parallel_size=2", "engine.data_parallel_size=3",
                 "engine.distributed_executor_backend='ray'")  # fmt: skip
    cmd = build_command(s, TEXT, 9000, "cuda")
    assert arg(cmd, "--tensor-parallel-size") == "2" and arg(cmd, "--pipeline-parallel-size") == "2"
    assert arg(cmd, "--data-parallel-size") == "3" and arg(cmd, "--distributed-executor-backend") == "ray"


def test_defaults_keep_the_one_process_cpu_engine_and_leave_gpu_choices_to_vllm():
    cpu = build_command(settings(), TEXT, 9000, "cpu")
    assert arg(cpu, "--distributed-executor-backend") == "uni" and "--tensor-parallel-size" not in cpu
    gpu = build_command(settings(), TEXT, 9000, "cuda")
    assert "--distributed-executor-backend" not in gpu and "--data-parallel-size" not in gpu
    split = build_command(settings("engine.tensor_parallel_size=2"), TEXT, 9000, "cpu")
    assert "uni" not in split  # two workers cannot share one process


def test_more_gpus_than_visible_is_a_clear_error():
    e = settings("engine.tensor_parallel_size=4", "engine.data_parallel_size=2").engine
    with pytest.raises(SettingsError, match=r"tensor 4 x pipeline 1 x data 2 = 8 GPUs, but 4 are visible") as err:
        check_parallelism(e, "cuda", gpus=4)
    assert "CUDA_VISIBLE_DEVICES" in str(err.value) and "ray" in str(err.value)
    check_parallelism(e, "cuda", gpus=8)  # enough
    ray = settings("engine.tensor_parallel_size=4", "engine.data_parallel_size=2", "engine.distributed_executor_backend='ray'").engine
    try:  # a Ray cluster may hold GPUs on other nodes: the local count is not the limit
        check_parallelism(ray, "cuda", gpus=1)
    except SettingsError as exc:
        assert "needs Ray, which is not installed" in str(exc)


def test_more_cpu_workers_than_cores_is_a_clear_error():
    e = settings("engine.tensor_parallel_size=4").engine
    with pytest.raises(SettingsError, match="4 engine workers, but this machine has 2 CPU cores"):
        check_parallelism(e, "cpu", cpus=2)


def test_tensor_parallel_size_must_divide_the_attention_heads(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"num_attention_heads": 12}}))
    e = settings("engine.tensor_parallel_size=5").engine
    with pytest.raises(SettingsError, match="12 attention heads, which tensor_parallel_size 5 does not divide") as err:
        check_parallelism(e, "cuda", str(tmp_path), gpus=8)
    assert "1, 2, 3, 4, 6" in str(err.value)


def test_visible_gpus_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    assert visible_gpus() == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == 0


def test_the_check_runs_before_an_engine_is_spawned(tmp_path, monkeypatch):
    s = settings(f"paths.state_dir='{tmp_path}'", "engine.tensor_parallel_size=64")
    manager = EngineManager(s)
    monkeypatch.setattr(manager, "_spawn", lambda *a, **k: pytest.fail("an engine was spawned"))
    with pytest.raises(SettingsError, match="64 engine workers"):
        manager.start(TEXT, "cpu", background=False)
