"""Image generation: the model (or `assistant imagine`) draws a picture from a text prompt.

Two backends:

* `diffusers` (default): a text-to-image pipeline run in-process with Hugging Face diffusers
  (`pip install 'assistant[imagegen]'`). For GPU users the suggested model is a fast distilled
  one, e.g. `stabilityai/sdxl-turbo` (1-4 steps, guidance_scale 0): it is fetched from the model
  hub the first time (so it needs a hub once, then works offline from the hub cache) and needs a
  GPU to be quick (its float16 weights alone are about 7 GB; on a CPU it is slow). Not measured
  on the project's machines, which have neither a GPU nor a model hub.
  A local pipeline folder (anything saved with `DiffusionPipeline.save_pretrained`) works too.
  Nothing is configured by default, because no text-to-image model can be had offline:

      [plugins.imagegen]
      model = "stabilityai/sdxl-turbo"     # or "/path/to/a/diffusers/folder"

* `openai`: any OpenAI-compatible images endpoint (`POST {openai_base_url}/images/generations`):

      [plugins.imagegen]
      backend = "openai"
      openai_base_url = "https://api.openai.com/v1"   # or your own server's /v1
      openai_model = "gpt-image-1"                    # the API key: openai_api_key or OPENAI_API_KEY
      width = 1024
      height = 1024

The pipeline loads once, lazily, on the first image (in `setup()`, off the event loop) and is
reused; generation runs in a worker thread and reports each denoising step as progress. Sizes
are rounded to multiples of 8; `max_width`, `max_height` and `max_steps` bound what the model
may ask for. A seed makes an image reproducible: same settings, prompt and seed, same PNG bytes
(on one machine and torch build). On a CPU shared with a vLLM engine, `cpu_threads = 1` can be
many times faster than torch's default of one thread per core (see bench/bench_imagegen.py).

The model calls the tool `imagegen_generate`; people can also run it directly:

    assistant imagine "a lighthouse at dusk, oil painting" --seed 7 --out lighthouse.png

Tests and benchmarks use a tiny random-weight pipeline (`assistant.testing.tiny_diffusion`):
it draws noise, not pictures, but exercises the whole path.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from assistant.plugin_api import OutputFile, Plugin, ToolContext, ToolOutput, tool

MIN_SIDE = 64
MAX_SEED = 2**63 - 1


class ImageGenSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["diffusers", "openai"] = Field(
        "diffusers", description="diffusers: run a pipeline in-process; openai: an OpenAI-compatible images API."
    )
    model: str = Field(
        "",
        description='diffusers backend: a hub id (GPU users: "stabilityai/sdxl-turbo", needs a model hub once '
        "and a GPU) or a local pipeline folder. Empty: not configured.",
    )
    steps: int = Field(4, ge=1, description="Denoising steps when the request names none (turbo models: 1-4).")
    width: int = Field(512, ge=MIN_SIDE, multiple_of=8, description="Image width when the request names none.")
    height: int = Field(512, ge=MIN_SIDE, multiple_of=8, description="Image height when the request names none.")
    guidance_scale: float = Field(
        0.0, ge=0.0, description="Classifier-free guidance; 0 for turbo models, ~7 for classic Stable Diffusion."
    )
    max_width: int = Field(1024, ge=MIN_SIDE, multiple_of=8, description="Largest width a request may ask for.")
    max_height: int = Field(1024, ge=MIN_SIDE, multiple_of=8, description="Largest height a request may ask for.")
    max_steps: int = Field(50, ge=1, description="Most denoising steps a request may ask for.")
    device: str = Field("auto", description='auto (cuda if available, else cpu), cpu, cuda, cuda:1, mps...')
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto", description="auto: float16 on cuda, float32 on cpu."
    )
    cpu_threads: int = Field(
        0, ge=0, description="On the CPU: torch threads for generating (0: torch's default, one per core). 1 can "
        "be much faster on a busy machine, e.g. beside a CPU vLLM engine.",
    )
    variant: str = Field("", description='Weights variant to load from the hub, e.g. "fp16" (smaller download).')
    openai_base_url: str = Field("https://api.openai.com/v1", description="openai backend: the API's base URL.")
    # SecretStr: `assistant plugins list` and error messages show it as **********.
    openai_api_key: SecretStr = Field(
        SecretStr(""), description="openai backend: the API key (empty: $OPENAI_API_KEY, or none)."
    )
    openai_model: str = Field("gpt-image-1", description="openai backend: the image model's name (empty: not sent).")
    openai_timeout: float = Field(180.0, gt=0, description="openai backend: seconds to wait for an image.")

    @model_validator(mode="after")
    def _defaults_within_limits(self) -> "ImageGenSettings":
        for what, limit in (("width", "max_width"), ("height", "max_height"), ("steps", "max_steps")):
            value, most = getattr(self, what), getattr(self, limit)
            if value <= most:
                continue
            if what in self.model_fields_set:  # set explicitly above its own limit: a contradiction
                raise ValueError(f"{what} = {value} is above {limit} = {most}")
            setattr(self, what, most)  # only the limit was lowered: the default follows it
        return self


@dataclass(frozen=True)
class Request:
    """A checked request: defaults filled in, sizes multiples of 8, within the limits."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    seed: int | None  # None: pick one at random (and report it)
    steps_given: bool  # asked for explicitly (the openai backend says it ignored them)
    notes: tuple[str, ...]  # what was adjusted, told to the model ("width rounded from 70 to 72...")


@dataclass(frozen=True)
class Image:
    """One generated image and what to say about it."""

    png: bytes
    width: int
    height: int
    prompt: str
    seed: int | None  # None: the backend takes no seed (openai)
    steps: int | None
    filename: str  # imagegen-<seed>-<slug>.png
    text: str  # for the model: "Generated a 512x512 image for '...' (seed 42, 4 steps)."


def slug(text: str, limit: int = 40) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:limit].rstrip("-") or "image"


def round_to_8(value: int) -> int:
    return max(8, (value + 4) // 8 * 8)  # to the nearest multiple; halves round up


class ImageGen(Plugin):
    name = "imagegen"
    description = "Generate images from text prompts (diffusers or an OpenAI-compatible images API)"
    produces = frozenset({"image"})
    Settings = ImageGenSettings

    def __init__(self, settings: ImageGenSettings | None = None, **kw) -> None:
        super().__init__(settings if settings is not None else ImageGenSettings(), **kw)
        self._pipeline = None  # pipeline.LoadedPipeline, after setup() (diffusers backend)
        self._openai = None  # openai_backend.OpenAIImages, after setup() (openai backend)

    async def setup(self) -> None:
        s = self.settings
        if s.backend == "openai":
            from .openai_backend import OpenAIImages, check_configured

            check_configured(s.openai_base_url)
            key = s.openai_api_key.get_secret_value()
            self._openai = OpenAIImages(s.openai_base_url, key, s.openai_model, s.openai_timeout)
            return
        from .pipeline import load_pipeline, model_source

        model_source(s.model)  # "not configured" / missing folder: fail before starting a thread
        self._pipeline = await asyncio.to_thread(
            load_pipeline, s.model, device=s.device, dtype=s.dtype, variant=s.variant
        )

    # Read-only on purpose: the tool changes nothing the user has. Its one product is the PNG,
    # which the dialogue stores with the session (like the conversation's own messages) and
    # shows to the user; no file of the user's is written or replaced (`assistant imagine`
    # writes one only because the user asked for it on the command line). With the default
    # policy it therefore runs without a prompt. Caveat: with backend = "openai" each call sends
    # the prompt to that server and may be billed; set [approval] read_only = "ask" to be asked.
    @tool
    def generate(
        self,
        prompt: str,
        ctx: ToolContext,
        negative_prompt: str = "",
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        seed: int | None = None,
    ) -> ToolOutput:
        """Draw a new image from a text description and show it to the user (a PNG). Use it to draw or paint.

        Args:
            prompt: What the image shows, in English, e.g. "a red fox in the snow, watercolor".
            negative_prompt: What the image must not show, e.g. "text, blurry". Optional.
            width: Width in pixels, a multiple of 8 (default from the settings, usually 512).
            height: Height in pixels, a multiple of 8 (default from the settings, usually 512).
            steps: Denoising steps: more is slower and finer (default from the settings, usually 4).
            seed: A number that makes the image reproducible; the same seed and prompt give the same image.
        """
        request = self.check(prompt, negative_prompt, width, height, steps, seed)
        image = self.render(request, ctx.progress)
        file = OutputFile(image.png, "image/png", image.filename, image.prompt)
        return ToolOutput(image.text, (file,))

    def check(
        self,
        prompt: str,
        negative_prompt: str = "",
        width: int | None = None,
        height: int | None = None,
        steps: int | None = None,
        seed: int | None = None,
    ) -> Request:
        """The request with the settings' defaults filled in, sizes rounded to multiples of 8 and
        every limit checked. Bad input raises ValueError with a message for whoever asked (the
        model or the user). Cheap: nothing is loaded."""
        s = self.settings
        prompt = prompt.strip()
        if not prompt:
            raise ValueError("the prompt is empty: describe the image to draw")
        notes: list[str] = []
        size = {}
        for what, asked, default, limit_name in (("width", width, s.width, "max_width"),
                                                 ("height", height, s.height, "max_height")):  # fmt: skip
            value = default if asked is None else asked
            if value < MIN_SIDE:
                raise ValueError(f"{what} {value} is too small: it must be at least {MIN_SIDE} pixels")
            rounded = round_to_8(value)
            limit = getattr(s, limit_name)
            if rounded > limit:
                raise ValueError(
                    f"{what} {value} is above the limit {limit_name} = {limit} ([plugins.imagegen] {limit_name}); "
                    f"ask for at most {limit}"
                )
            if rounded != value:
                notes.append(f"{what} rounded from {value} to {rounded}, a multiple of 8")
            size[what] = rounded
        n_steps = s.steps if steps is None else steps
        if n_steps < 1:
            raise ValueError(f"steps must be at least 1, got {n_steps}")
        if n_steps > s.max_steps:
            raise ValueError(
                f"steps {n_steps} is above the limit max_steps = {s.max_steps} ([plugins.imagegen] max_steps); "
                f"ask for at most {s.max_steps}"
            )
        if seed is not None and not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        return Request(prompt, negative_prompt.strip(), size["width"], size["height"], n_steps, seed,
                       steps is not None, tuple(notes))  # fmt: skip

    def render(self, request: Request, progress: Callable[[str, float | None], None] | None = None) -> Image:
        """Make the image for a checked request (blocking: run it in a thread; after setup())."""
        s, req = self.settings, request
        if (self._openai if s.backend == "openai" else self._pipeline) is None:
            raise RuntimeError("the plugin is not set up: await plugin.ensure_setup() first")
        notes = list(req.notes)
        shown = req.prompt if len(req.prompt) <= 120 else req.prompt[:117] + "..."
        if s.backend == "openai":
            png, (w, h) = self._openai.generate(req.prompt, req.width, req.height)
            ignored = [name for name, given in (("seed", req.seed is not None), ("steps", req.steps_given),
                                                 ("negative_prompt", bool(req.negative_prompt))) if given]  # fmt: skip
            if ignored:
                notes.append(f"{', '.join(ignored)} not supported by the images API, ignored")
            if (w, h) != (req.width, req.height):
                notes.append(f"the server made {w}x{h} instead of {req.width}x{req.height}")
            seed, steps = None, None
            filename = f"imagegen-{slug(req.prompt)}.png"
            text = f"Generated a {w}x{h} image for '{shown}' ({s.openai_model or 'images API'})."
        else:
            from .pipeline import ImageRequest, generate

            seed = secrets.randbelow(2**32) if req.seed is None else req.seed  # reported: it can be made again
            steps = req.steps
            if req.negative_prompt and s.guidance_scale <= 1:
                notes.append("negative_prompt has no effect with guidance_scale <= 1")
            job = ImageRequest(req.prompt, req.negative_prompt, req.width, req.height, steps, seed, s.guidance_scale)
            png, (w, h), more = generate(self._pipeline, job, progress, cpu_threads=s.cpu_threads)
            notes += more
            filename = f"imagegen-{seed}-{slug(req.prompt)}.png"
            text = f"Generated a {w}x{h} image for '{shown}' (seed {seed}, {steps} steps)."
        if notes:
            text += " Note: " + "; ".join(notes) + "."
        return Image(png, w, h, req.prompt, seed, steps, filename, text)
