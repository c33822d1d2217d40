"""Decide which server answers: the configured base_url, the background engine, or a new one."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

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


def client_config(settings: Settings, base_url: str, model: str = "", vision: bool | None = None) -> ClientConfig:
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
    )


@contextlib.contextmanager
def open_endpoint(settings: Settings, progress: Callable[[Progress], None]) -> Iterator[Endpoint]:
    """Yield a usable endpoint; an engine started here is stopped on exit."""
    if settings.model.base_url:
        yield Endpoint(client_config(settings, settings.model.base_url), None, None)
        return
    device = engine_device(settings)
    spec = resolve_model(settings, device, lambda msg: progress(Progress("model", msg)))
    manager = EngineManager(settings, progress)
    with manager.serving(spec, device) as state:
        yield Endpoint(client_config(settings, state.base_url, state.served_name, spec.vision), state, spec)
