"""The diffusers backend: load a text-to-image pipeline once, then generate seeded PNGs.

torch and diffusers are imported inside the functions (a cold `import diffusers` takes seconds),
so importing this module, and with it the plugin, stays cheap.

A loaded pipeline is kept in a one-entry, process-wide cache keyed by (model, device, dtype,
variant): several plugin instances with the same model (a TUI and a batch run in one process,
or a test suite) share one copy of the weights instead of loading it again. A diffusers
pipeline is not safe to call from two threads at once, so each one has a lock.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from assistant.errors import ModelError, PluginError

# ctx.progress-like: (message, fraction done)
ProgressFn = Callable[[str, "float | None"], None]


class OutOfMemory(ModelError):
    """The device ran out of memory while generating."""


class GenerationFailed(ModelError):
    """The pipeline raised something else while generating."""


@dataclass(frozen=True)
class ImageRequest:
    """One image to make. Sizes are already multiples of 8 and within the limits."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    seed: int
    guidance_scale: float


@dataclass
class LoadedPipeline:
    pipe: Any
    model: str
    device: str
    dtype: str
    lock: threading.Lock = field(default_factory=threading.Lock)


_CACHE: dict[tuple, LoadedPipeline] = {}
_CACHE_LOCK = threading.Lock()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when a CUDA device is usable, else "cpu"; anything else is checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PluginError(
            f"[plugins.imagegen] device = {device!r}, but no CUDA device is available to torch",
            hint='set device = "auto" or "cpu" (a CUDA build of torch and a GPU are needed for "cuda")',
        )
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """"auto" -> float16 on CUDA (half the memory, the speed GPU users expect), float32 elsewhere."""
    if dtype != "auto":
        return dtype
    return "float16" if device.startswith("cuda") else "float32"


def _looks_like_path(model: str) -> bool:
    """A hub id is `name` or `org/name`; anything else (absolute, ./, ~, a\\b, a/b/c) is a folder."""
    return (
        model.startswith(("/", ".", "~"))
        or "\\" in model
        or model.count("/") > 1
        or Path(model).expanduser().exists()
    )


def model_source(model: str) -> tuple[str, bool]:
    """The configured model as from_pretrained wants it, and whether it is a local folder
    (checked to exist and hold a pipeline) rather than a hub id."""
    if not model.strip():
        raise PluginError(
            "image generation is not configured: no model is set",
            hint='set [plugins.imagegen] model = "stabilityai/sdxl-turbo" (a hub id: needs a model hub the first '
            "time and, to be fast, a GPU) or the path of a local diffusers pipeline folder in config.toml, "
            "or use backend = \"openai\" with an images API",
        )
    if not _looks_like_path(model):
        return model, False
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise PluginError(
            f"the image model folder {str(folder)!r} does not exist",
            hint="fix [plugins.imagegen] model: a diffusers pipeline folder (with model_index.json) or a hub id",
        )
    if not (folder / "model_index.json").is_file():
        raise PluginError(
            f"{str(folder)!r} is not a diffusers pipeline folder (it has no model_index.json)",
            hint="point [plugins.imagegen] model at a folder saved by DiffusionPipeline.save_pretrained, or a hub id",
        )
    return str(folder.resolve()), True


def load_pipeline(model: str, *, device: str = "auto", dtype: str = "auto", variant: str = "",
                  say: Callable[[str], None] | None = None) -> LoadedPipeline:  # fmt: skip
    """Load (or reuse) the pipeline for `model`. Blocking: call it through asyncio.to_thread."""
    source, is_folder = model_source(model)
    with _quiet_libraries():
        return _load(model, source, is_folder, device, dtype, variant, say)


@contextlib.contextmanager
def _quiet_libraries():
    """No tqdm bars and no library chatter while loading: they would scribble over the TUI and
    the command line's own progress line (e.g. transformers' "requires torchvision" notices).
    Errors still show. diffusers' bars stay off (its only bars are loading and denoising ones)."""
    restore = []
    for name in ("transformers.utils.logging", "diffusers.utils.logging"):
        try:
            log = importlib.import_module(name)
        except ImportError:  # reported by _load with an install hint
            continue
        restore.append((log, log.get_verbosity(), log.is_progress_bar_enabled()))
        log.set_verbosity_error()
        log.disable_progress_bar()
    try:
        yield
    finally:
        for log, verbosity, bars in restore:
            log.set_verbosity(verbosity)
            if bars and log.__name__.startswith("transformers"):
                log.enable_progress_bar()


def _load(model: str, source: str, is_folder: bool, device: str, dtype: str, variant: str,
          say: Callable[[str], None] | None) -> LoadedPipeline:  # fmt: skip
    try:
        import torch
        from diffusers import AutoPipelineForText2Image, DiffusionPipeline
    except ImportError as exc:
        raise PluginError(
            f"image generation needs diffusers and torch, which cannot be imported: {exc}",
            hint="install the extra: pip install 'assistant[imagegen]'",
        ) from None
    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    key = (source, device, dtype, variant)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        _CACHE.clear()  # one model at a time: free the old one before loading the next
        if say:
            say(f"loading {model} on {device} ({dtype})")
        kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
        if variant:
            kwargs["variant"] = variant
        if hub_offline() and not is_folder:  # a hub id with no hub: only what is cached
            kwargs["local_files_only"] = True
        try:
            try:
                pipe = AutoPipelineForText2Image.from_pretrained(source, **kwargs)
            except ValueError as exc:  # a pipeline class AutoPipeline has no mapping for
                if "AutoPipeline" not in str(exc) and "not supported" not in str(exc):
                    raise
                pipe = DiffusionPipeline.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            if is_folder:
                where = "the folder's files could not be loaded"
            elif kwargs.get("local_files_only"):
                where = "it is not in the local hub cache and HF_HUB_OFFLINE=1 forbids downloading it"
            else:
                where = "the download failed or the files are not a diffusers pipeline"
            raise PluginError(
                f"cannot load the image model {model!r}: {where} ({type(exc).__name__}: {str(exc)[:300]})",
                hint="download it once where a model hub is reachable (e.g. `hf download " + model + "`), "
                "or point [plugins.imagegen] model at a local diffusers pipeline folder",
            ) from None
        try:
            pipe = pipe.to(device)
        except RuntimeError as exc:
            if _is_oom(exc):
                raise OutOfMemory(
                    f"not enough memory on {device} to load {model!r} in {dtype}",
                    hint='free the GPU, use dtype = "float16", or a smaller model',
                ) from None
            raise
        pipe.set_progress_bar_config(disable=True)
        loaded = LoadedPipeline(pipe, model, device, dtype)
        _CACHE[key] = loaded
        return loaded


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def _is_oom(exc: BaseException) -> bool:
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and (
        isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()
    )


def generate(loaded: LoadedPipeline, req: ImageRequest, progress: ProgressFn | None = None, *,
             cpu_threads: int = 0) -> tuple[bytes, tuple[int, int], list[str]]:  # fmt: skip
    """Run the pipeline: PNG bytes, (width, height) and notes for the model (e.g. a truncated
    prompt). Same request and seed -> same bytes (on one device, with one torch build).
    `cpu_threads` > 0: torch's CPU threads for this call."""
    import torch

    notes = []
    cut = _truncated_at(loaded.pipe, req.prompt)
    if cut:
        notes.append(f"the prompt was cut to the text encoder's {cut} tokens; put what matters first")
    accepts = _call_parameters(loaded.pipe)

    def on_step_end(pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        if progress is not None:
            total = getattr(pipe, "_num_timesteps", None) or req.steps
            progress(f"step {step + 1}/{total}", (step + 1) / total)
        return callback_kwargs

    kwargs: dict[str, Any] = dict(
        prompt=req.prompt,
        width=req.width,
        height=req.height,
        num_inference_steps=req.steps,
        guidance_scale=req.guidance_scale,
        # A CPU generator: the starting noise is the same whatever device runs the model.
        generator=torch.Generator("cpu").manual_seed(req.seed),
    )
    if accepts is None or "callback_on_step_end" in accepts:
        kwargs["callback_on_step_end"] = on_step_end
    if req.negative_prompt:
        if accepts is None or "negative_prompt" in accepts:
            kwargs["negative_prompt"] = req.negative_prompt
        else:
            notes.append("this model takes no negative prompt; it was ignored")
    with loaded.lock:
        if cpu_threads and loaded.device == "cpu":
            # torch's thread count belongs to the calling thread (OpenMP), and this runs in a worker
            # thread: set it here, for every call, not once at load time.
            torch.set_num_threads(cpu_threads)
        try:
            with _quiet_libraries():  # e.g. diffusers' own truncation warning on stderr (noted above instead)
                image = loaded.pipe(**kwargs).images[0]
        except Exception as exc:  # noqa: BLE001 - translated into messages a person can act on
            if _is_oom(exc):
                _free_cuda()
                raise OutOfMemory(
                    f"out of memory on {loaded.device} generating a {req.width}x{req.height} image "
                    f"with {req.steps} steps",
                    hint="try a smaller width/height (e.g. 512x512), or set [plugins.imagegen] max_width/max_height "
                    "lower so the model cannot ask for this much",
                ) from None
            raise GenerationFailed(f"the image pipeline failed: {type(exc).__name__}: {exc}") from exc
    # PNG text chunks, as other image tools write them: what made the image, so it can be made again.
    about = {"prompt": req.prompt, "negative_prompt": req.negative_prompt, "seed": str(req.seed),
             "steps": str(req.steps), "model": _public_name(loaded.model)}  # fmt: skip
    return png_bytes(image, about), image.size, notes


def _public_name(model: str) -> str:
    """What the PNG may say about the model: a hub id, or only a local folder's name (not its path)."""
    return Path(model).name if _looks_like_path(model) else model


def _call_parameters(pipe: Any) -> set[str] | None:
    """The keyword arguments the pipeline's __call__ takes; None when it takes any (**kwargs)."""
    try:
        params = inspect.signature(pipe.__call__ if not inspect.isfunction(pipe) else pipe).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def _truncated_at(pipe: Any, prompt: str) -> int:
    """The token limit the prompt was cut at, or 0 when some text encoder reads all of it
    (Flux and SD3 add a T5 encoder with a longer limit beside CLIP's 77 tokens)."""
    limits = []
    for name in ("tokenizer", "tokenizer_2", "tokenizer_3"):
        tok = getattr(pipe, name, None)
        if tok is None:
            continue
        limit = getattr(tok, "model_max_length", 0) or 0
        if not 0 < limit < 100_000:  # "no limit" is written as a huge number
            return 0
        if len(tok(prompt).input_ids) <= limit:
            return 0
        limits.append(limit)
    return max(limits, default=0)


def _free_cuda() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - best effort
        pass


def png_bytes(image: Any, text: dict[str, str] | None = None) -> bytes:
    """Encode a PIL image as PNG (deterministic: same pixels and text -> same bytes)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (text or {}).items():
        if value:
            info.add_itxt(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()
