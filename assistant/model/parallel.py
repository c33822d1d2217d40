"""vLLM's own parallelism (`engine.tensor_parallel_size`, `pipeline_parallel_size`,
`data_parallel_size`, `distributed_executor_backend`): the flags, and the checks that turn a
value this machine cannot satisfy into a clear error before an engine is started (vLLM would
otherwise fail minutes into start-up, deep in its worker logs)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

from ..errors import SettingsError


def world_size(e) -> int:
    """Workers one engine needs: tensor x pipeline x data parallel."""
    return e.tensor_parallel_size * e.pipeline_parallel_size * e.data_parallel_size


def parallel_args(e, device: str) -> list[str]:
    args = []
    for flag, value in (("--tensor-parallel-size", e.tensor_parallel_size), ("--pipeline-parallel-size", e.pipeline_parallel_size),
                        ("--data-parallel-size", e.data_parallel_size)):  # fmt: skip
        if value != 1:
            args += [flag, str(value)]
    backend = e.distributed_executor_backend
    if backend != "auto":
        args += ["--distributed-executor-backend", backend]
    elif device == "cpu" and world_size(e) == 1:
        # One process instead of a multiprocessing executor: faster start, less memory.
        args += ["--distributed-executor-backend", "uni"]
    return args


def check_parallelism(e, device: str, model_folder: str = "", *, gpus: int | None = None, cpus: int | None = None) -> None:
    """SettingsError, saying what to set, when the machine cannot run this split."""
    n = world_size(e)
    sizes = f"tensor {e.tensor_parallel_size} x pipeline {e.pipeline_parallel_size} x data {e.data_parallel_size}"
    if e.distributed_executor_backend == "ray" and importlib.util.find_spec("ray") is None:
        raise SettingsError("engine.distributed_executor_backend = 'ray' needs Ray, which is not installed",
                            hint="pip install 'ray[default]' (and start or join a cluster: `ray start --head`), or use 'mp'")  # fmt: skip
    if n > 1 and device == "cpu":
        cpus = cpus or os.cpu_count() or 1
        if n > cpus:
            raise SettingsError(f"{sizes} = {n} engine workers, but this machine has {cpus} CPU cores",
                                hint="on a CPU each worker needs at least one core of its own: lower the sizes (1 is the "
                                "usual choice for a CPU engine)")  # fmt: skip
    if n > 1 and device == "cuda" and e.distributed_executor_backend != "ray":
        gpus = visible_gpus() if gpus is None else gpus
        if n > gpus:
            raise SettingsError(f"{sizes} = {n} GPUs, but {gpus} {'is' if gpus == 1 else 'are'} visible here",
                                hint="lower the sizes, make the GPUs visible (CUDA_VISIBLE_DEVICES), or use "
                                "engine.distributed_executor_backend = 'ray' with a Ray cluster that has them")  # fmt: skip
    heads = _attention_heads(model_folder)
    if heads and heads % e.tensor_parallel_size:
        raise SettingsError(f"the model has {heads} attention heads, which tensor_parallel_size {e.tensor_parallel_size} does "
                            "not divide", hint=f"use a size that divides {heads}: {', '.join(str(d) for d in range(1, 9) if heads % d == 0)}")  # fmt: skip


def visible_gpus() -> int:
    """CUDA GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def _attention_heads(folder: str) -> int | None:
    """num_attention_heads from a local model's config.json (also a VLM's text_config)."""
    path = Path(folder) / "config.json" if folder else None
    if not path or not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for cfg in (config, config.get("text_config") or {}, config.get("llm_config") or {}):
        if isinstance(cfg.get("num_attention_heads"), int):
            return cfg["num_attention_heads"]
    return None
