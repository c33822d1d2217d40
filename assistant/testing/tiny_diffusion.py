"""Build a tiny random-weight Stable Diffusion pipeline folder for tests and benchmarks.

No model hub is reachable on the project's machines and no text-to-image weights ship on
PyPI, so the image-generation plugin is tested against a pipeline built here from configs:

  * UNet2DConditionModel with two small blocks (cross-attention in the lower one, so the
    prompt really conditions the result),
  * AutoencoderKL with four blocks: a VAE scale factor of 8 like real Stable Diffusion, so
    sizes behave as they do with a real model (64x64 pixels -> 8x8 latents),
  * a small random CLIPTextModel and a byte-level CLIP tokenizer written offline (the 256
    byte symbols and their end-of-word forms, no merges: any text tokenizes),
  * an Euler scheduler, no safety checker.

`DiffusionPipeline.from_pretrained(folder)` and `AutoPipelineForText2Image.from_pretrained(folder)`
load it like any Stable Diffusion 1.x folder (1.3 MB). It draws noise-like pictures: ~0.06-0.15 s
for 64x64 with 4 steps on one CPU thread (bench/bench_imagegen.py). The build takes a few
seconds, is deterministic for a seed, atomic (a temporary sibling folder renamed into place, a
marker file written last) and idempotent (a complete build of the same version and seed is reused).

Usage:  python -m assistant.testing.tiny_diffusion OUT_DIR [--seed N]
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path
from typing import Callable, Optional

from ..atomic_folder import build_folder

# Bump whenever the produced folder changes, so stale builds are rebuilt.
BUILD_VERSION = 1
MARKER = "tiny_diffusion_build.json"  # written last; its presence means "complete build"
MAX_PROMPT_TOKENS = 77  # CLIP's context length, as in real Stable Diffusion
TEXT_HIDDEN = 32


def _is_complete(out_dir: Path, seed: int) -> bool:
    try:
        marker = json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("build_version") == BUILD_VERSION and marker.get("seed") == seed


def _byte_level_vocab() -> dict[str, int]:
    """CLIP's byte-level alphabet (GPT-2's bytes_to_unicode), each symbol also as a word end."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def _write_tokenizer(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = _byte_level_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>",
    }))  # fmt: skip
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": MAX_PROMPT_TOKENS,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>", "do_lower_case": True,
    }))  # fmt: skip
    return len(vocab)


def _build(tmp: Path, seed: int, say: Callable[[str], None]) -> None:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    say("writing the byte-level CLIP tokenizer")
    vocab_size = _write_tokenizer(tmp / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(tmp / "tokenizer")
    ids = tokenizer("a red fox").input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id, ids
    shutil.rmtree(tmp / "tokenizer")  # saved again below, by the pipeline, in its own format

    say("building random-weight UNet, VAE and text encoder")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(16, 32), norm_num_groups=8,
        # Cross-attention at the lower resolution only: cheap at 256x256 and still conditioned.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=TEXT_HIDDEN, attention_head_dim=8,
    )  # fmt: skip
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, sample_size=64,
        block_out_channels=(8, 8, 16, 16), norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )  # fmt: skip
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=TEXT_HIDDEN, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_PROMPT_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )).eval()  # fmt: skip
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        timestep_spacing="trailing", steps_offset=1,  # trailing: as the few-step turbo models use
    )  # fmt: skip
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    say("saving the pipeline")
    pipe.save_pretrained(tmp, safe_serialization=True)
    (tmp / "README.md").write_text("Tiny random-weight Stable Diffusion pipeline for tests (noise, not pictures).\n")
    # mkdtemp makes the folder 0700: open it up so other users/containers can read the model.
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    # Marker last: a folder without it is never mistaken for a complete build.
    (tmp / MARKER).write_text(json.dumps({"build_version": BUILD_VERSION, "seed": seed}) + "\n")


@contextlib.contextmanager
def _quiet():
    """No tqdm bars or library notices (e.g. transformers' "requires torchvision") while building."""
    import transformers.utils.logging as tlog

    verbosity, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(verbosity)
        if bars:
            tlog.enable_progress_bar()


def build_tiny_sd(out_dir: Path, seed: int = 0, *, progress: Optional[Callable[[str], None]] = None) -> Path:
    """Build (or reuse) the tiny Stable Diffusion folder at ``out_dir`` and return its path."""
    say = progress or (lambda _msg: None)

    def build(tmp: Path) -> None:
        with _quiet():
            _build(tmp, seed, say)

    return build_folder(out_dir, is_complete=lambda d: _is_complete(d, seed), build=build, say=say)


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_tiny_sd(args.out_dir, seed=args.seed, progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
