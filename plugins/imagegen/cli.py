"""Generate an image from a prompt (the imagegen plugin).

`assistant imagine "prompt"` makes one image straight from the command line, no chat model:

    assistant imagine "a lighthouse at dusk, oil painting" --seed 7 --out lighthouse.png

The plugin is loaded through the registry like everywhere else, so `[plugins.imagegen]` in
config.toml (or `--set 'plugins.imagegen={model = "..."}'`, or `--image-model`) applies. Progress
goes to stderr; the saved file's path is the only line on stdout, so `open "$(assistant imagine
...)"` works. `run()` lets AssistantErrors propagate; the main CLI turns them into messages and
exit codes (bad sizes, steps and an unconfigured plugin are usage errors, exit 2). It is
registered through the `assistant.commands` entry-point group, like a third-party command.

Also runnable on its own: `python -m assistant_plugins.imagegen.cli "prompt" [options]`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

from assistant.errors import PluginError, UsageError
from assistant.plugin_api import write_file_atomic


def add_parser(subparsers: Any, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "imagine", parents=[common_parent], help="generate an image from a prompt (the imagegen plugin)",
        description="Generate one image with the imagegen plugin and save it as a PNG.",
    )  # fmt: skip
    p.add_argument("prompt", nargs="+", help="what the image shows")
    p.add_argument("-o", "--out", metavar="FILE", help="where to save the PNG (default: ./imagegen-SEED.png)")
    p.add_argument("--negative", metavar="TEXT", default="", help="what the image must not show")
    p.add_argument("--steps", type=int, help="denoising steps (default: [plugins.imagegen] steps)")
    p.add_argument("--seed", type=int, help="seed for a reproducible image (default: random, printed)")
    p.add_argument("--width", type=int, help="width in pixels, rounded to a multiple of 8")
    p.add_argument("--height", type=int, help="height in pixels, rounded to a multiple of 8")
    p.add_argument("--image-model", metavar="MODEL", help="[plugins.imagegen] model for this run: hub id or folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return p


def _with_model(settings: Any, model: str) -> Any:
    options = dict(settings.plugins.options)
    options["imagegen"] = {**options.get("imagegen", {}), "model": model}
    return dataclasses.replace(settings, plugins=dataclasses.replace(settings.plugins, options=options))


def _load_plugin(settings: Any) -> Any:
    import importlib.metadata

    from assistant.plugin_api.plugin_commands import load_configured_plugins
    from assistant.plugin_api.registry import ENTRY_POINT_GROUP

    from . import ImageGen

    if "imagegen" in settings.plugins.disabled:
        raise UsageError("the imagegen plugin is disabled", hint="remove it from [plugins] disabled")
    # Not registered as an entry point: a source checkout whose package was not reinstalled.
    installed = any(ep.name == "imagegen" for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    registry = load_configured_plugins(settings, extra=[] if installed else [ImageGen])
    if "imagegen" not in registry.plugins:
        failed = [f.error for f in registry.failures if f.name == "imagegen"]
        raise PluginError(f"the imagegen plugin failed to load: {failed[0] if failed else 'not found'}")
    return registry.plugins["imagegen"]


def _target(out: str | None, seed: int | None) -> Path:
    if out:
        path = Path(out).expanduser()
        if path.is_dir():
            raise UsageError(f"--out {out} is a folder", hint="give a file name, e.g. --out picture.png")
        return path
    base = Path(f"imagegen-{seed}.png" if seed is not None else "imagegen.png")
    path, n = base, 1
    while path.exists():  # never overwrite an earlier image that was not named explicitly
        path = base.with_name(f"{base.stem}-{n}{base.suffix}")
        n += 1
    return path


def _write(path: Path, data: bytes) -> None:
    """Write-then-rename: an interrupted run never leaves half a PNG."""
    write_file_atomic(path, data, make_parents=True, mode=0o644)


def run(args: argparse.Namespace, settings: Any) -> int:
    from assistant.events import Progress
    from assistant.progress import StderrProgress

    prompt = " ".join(args.prompt).strip()
    if not prompt:
        raise UsageError("the prompt is empty", hint='usage: assistant imagine "a red fox in the snow"')
    if args.image_model:
        settings = _with_model(settings, args.image_model)
    if args.out:
        _target(args.out, None)  # a folder given as --out fails now, not after the image is made
    plugin = _load_plugin(settings)
    try:  # sizes, steps, seed: checked before anything slow is loaded
        request = plugin.check(prompt, args.negative, args.width, args.height, args.steps, args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    progress = StderrProgress(quiet=args.quiet)

    def step(message: str, fraction: float | None) -> None:
        progress(Progress(plugin.name, message, fraction))

    async def make() -> Any:
        if not plugin._ready and plugin.settings.backend == "diffusers":
            step(f"loading {plugin.settings.model or 'the image model'}", None)
        await plugin.ensure_setup()  # the same lazy setup the dialogue runs
        return await asyncio.to_thread(plugin.render, request, step)

    try:
        image = asyncio.run(make())
    finally:
        progress.clear()
    path = _target(args.out, image.seed)
    _write(path, image.png)
    if not args.quiet:
        print(image.text, file=sys.stderr)
    print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant_plugins.imagegen.cli PROMPT ...`: the same as `assistant imagine ...`, so settings and errors
    are handled in one place."""
    from assistant.plugin_api.plugin_commands import run_as_assistant

    return run_as_assistant(["imagine", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
