"""Real components: vLLM servers on 127.0.0.1 serving the tiny VLM and the bundled SmolLM2."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from assistant.model.engine import EngineManager
from assistant.model.models import engine_device, resolve_model
from assistant.settings import load_settings

from ..conftest import ROOT, TEST_CACHE

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="session")
def tiny_vlm_dir() -> Path:
    from assistant.testing.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(TEST_CACHE / "tiny-vlm")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """Shared assistant cache (the bundled model is converted into it once)."""
    return TEST_CACHE / "assistant-cache"


def engine_settings(state_dir: Path, cache_dir: Path, model: str, **model_overrides):
    return load_settings(
        overrides={
            "model": {"name": model, **model_overrides},
            "engine": {"cpu_kv_cache_gib": 1},
            "paths": {"state_dir": str(state_dir), "cache_dir": str(cache_dir)},
        },
        environ={},
    )


@pytest.fixture(scope="session")
def tiny_engine(tiny_vlm_dir, cache_dir, tmp_path_factory):
    """One tiny-VLM server for the whole session, started by the project's engine manager."""
    settings = engine_settings(tmp_path_factory.mktemp("state"), cache_dir, str(tiny_vlm_dir))
    device = engine_device(settings)
    spec = resolve_model(settings, device)
    manager = EngineManager(settings)
    state = manager.start(spec, device, background=False)
    yield state
    manager.stop(state)


def cli_env(tmp_path: Path, cache_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for `assistant` subprocesses: isolated config/state, shared model cache."""
    env = dict(os.environ)
    env.update(
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        ASSISTANT_PATHS__CACHE_DIR=str(cache_dir),
        ASSISTANT_ENGINE__CPU_KV_CACHE_GIB="1",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


ASSISTANT = [sys.executable, "-m", "assistant"]
__all__ = ["ASSISTANT", "ROOT", "cli_env", "engine_settings"]
