"""The client against a real vLLM server on 127.0.0.1 serving the tiny random-weight VLM."""

import io
import json

import pytest
from PIL import Image

from assistant.errors import ContextTooLong, RequestRejected
from assistant.events import Completion, TextDelta
from assistant.model.client import ChatClient, ClientConfig
from assistant.model.images import image_bytes_to_data_uri, user_message

pytestmark = pytest.mark.vllm


def png_uri(color=(255, 0, 0)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), color).save(buf, format="PNG")
    return image_bytes_to_data_uri(buf.getvalue(), "test.png", max_side=64)


@pytest.fixture
async def client(tiny_engine):
    async with ChatClient(ClientConfig(base_url=tiny_engine.base_url, max_retries=0, read_timeout=120)) as c:
        yield c


async def test_server_lists_the_served_model(client, tiny_engine):
    models = await client.list_models()
    assert [m["id"] for m in models] == [tiny_engine.served_name]


async def test_image_request_reaches_the_vision_tower(client):
    text_only = await client.chat([user_message("Describe this.", [])], max_tokens=8, temperature=0)
    with_image = await client.chat([user_message("Describe this.", [png_uri()])], max_tokens=8, temperature=0)
    # The image expands into image tokens in the prompt: proof it was processed, not dropped.
    assert with_image.usage.prompt_tokens >= text_only.usage.prompt_tokens + 16
    assert with_image.usage.completion_tokens >= 1 and with_image.finish_reason in ("stop", "length")


async def test_streaming_deltas_add_up_to_the_completion(client):
    events = [
        e async for e in client.stream_chat(
            [user_message("Tell me a story.", [])], max_tokens=40, temperature=0, extra={"ignore_eos": True}
        )
    ]
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    done = events[-1]
    assert isinstance(done, Completion)
    assert len(deltas) > 3 and "".join(deltas) == done.text
    assert done.usage.completion_tokens == 40 and done.finish_reason == "length"
    assert done.timings.time_to_first_token_s is not None and done.timings.tokens_per_s(40) > 0


async def test_named_tool_call(client):
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }]
    done = await client.chat(
        [user_message("What is the weather in Oslo?", [])],
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=128,
        temperature=0,
    )
    assert len(done.tool_calls) == 1 and done.tool_calls[0].name == "get_weather"
    assert isinstance(done.tool_calls[0].arguments, str)  # random weights: JSON validity is not promised


async def test_prompt_longer_than_context_is_context_too_long(client):
    long_text = "word " * 9000  # the tiny engine's context is 4096 tokens
    with pytest.raises(ContextTooLong) as exc:
        await client.chat([user_message(long_text, [])], max_tokens=8)
    assert exc.value.status == 400


async def test_more_images_than_allowed_is_rejected(client):
    uris = [png_uri((i * 40, 0, 0)) for i in range(5)]  # engine.images_per_prompt defaults to 4
    with pytest.raises(RequestRejected) as exc:
        await client.chat([user_message("Compare.", uris)], max_tokens=4)
    assert exc.value.status == 400 and not isinstance(exc.value, ContextTooLong)
