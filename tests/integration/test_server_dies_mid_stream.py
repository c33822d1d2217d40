"""A server killed while it streams an answer gives StreamInterrupted with the partial text."""

import os
import signal

import pytest

from assistant.errors import StreamInterrupted
from assistant.events import TextDelta
from assistant.model.client import ChatClient, ClientConfig
from assistant.model.engine import EngineManager
from assistant.model.images import user_message
from assistant.model.models import engine_device, resolve_model

from .conftest import engine_settings

pytestmark = pytest.mark.vllm


async def test_killed_server_mid_stream(tiny_vlm_dir, cache_dir, tmp_path):
    settings = engine_settings(tmp_path, cache_dir, str(tiny_vlm_dir))
    device = engine_device(settings)
    manager = EngineManager(settings)
    state = manager.start(resolve_model(settings, device), device, background=False)
    received = []
    try:
        async with ChatClient(ClientConfig(base_url=state.base_url, max_retries=0)) as client:
            with pytest.raises(StreamInterrupted) as exc:
                async for event in client.stream_chat(
                    [user_message("Go on forever.", [])], max_tokens=900, extra={"ignore_eos": True}
                ):
                    if isinstance(event, TextDelta):
                        received.append(event.text)
                        if len(received) == 5:
                            os.killpg(state.pid, signal.SIGKILL)
        assert exc.value.partial_text == "".join(received) != ""
        assert "assistant engine status" in str(exc.value)
    finally:
        manager.stop(state)
