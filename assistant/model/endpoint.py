"""Decide which server answers: the configured base_url, the background engine, or a new one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import ImagesNotSupported
from ..events import Progress
from ..settings import Settings
from .client import ClientConfig
from .engine import EngineManager, EngineState
from .models import ModelSpec, engine_device, resolve_model


@dataclass(frozen=True)
class Endpoint:
    client: ClientConfig
    engine: EngineState | None  # None when model.base_url points elsewhere
    spec: ModelSpec | None


def client_config(
    settings: Settings, base_url: str, model: str = "", vision: bool | None = None, tokenizer_folder: str = ""
) -> ClientConfig:
    m = settings.model
    if m.vision != "auto":
        vision = m.vision == "yes"
    return ClientConfig(
        base_url=base_url,
        api_key=m.api_key,
        model=m.served_name or model,
        connect_timeout=m.connect_timeout,
        read_timeout=m.read_timeout,
        max_retries=m.max_retries,
        vision=vision,
        tokenizer_folder=tokenizer_folder,
    )


@contextlib.contextmanager
def open_endpoint(
    settings: Settings, progress: Callable[[Progress], None], *, needs_vision: bool = False
) -> Iterator[Endpoint]:
    """Yield a usable endpoint; an engine started here is stopped on exit.

    With `needs_vision`, a model known to be text-only is refused before any engine starts."""
    if settings.model.base_url:
        config = client_config(settings, settings.model.base_url)
        if needs_vision and config.vision is False:
            raise _no_images(settings.model.base_url)
        yield Endpoint(config, None, None)
        return
    device = engine_device(settings)
    spec = resolve_model(settings, device, lambda msg: progress(Progress("model", msg)))
    if needs_vision and spec.vision is False:
        raise _no_images(spec.served_name)
    manager = EngineManager(settings, progress)
    with manager.serving(spec, device) as state:
        folder = spec.source if spec.kind in ("bundled", "folder") else ""
        yield Endpoint(client_config(settings, state.base_url, state.served_name, spec.vision, folder), state, spec)


def tool_modes(settings: Settings, spec: ModelSpec | None) -> tuple[bool, str]:
    """(the server parses tool calls itself, how a tool is picked: "model" or "guided") for a
    local engine's model (`spec`) or, with spec None, a server named by base_url."""
    native = spec.tool_call_parser is not None if spec else settings.model.tool_call_parser != "none"
    selection = settings.dialogue.tool_selection
    if selection == "auto":
        selection = getattr(spec, "tool_selection", "model") if spec else "model"
    return native, selection


def _no_images(model: str) -> ImagesNotSupported:
    return ImagesNotSupported(
        f"the model {model} cannot take images",
        hint="remove the image, or set model.name to a vision-language model "
        "(e.g. the 'qwen2.5-vl-3b' preset on a GPU); model.vision overrides the detection",
    )
