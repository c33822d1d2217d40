"""Guided tool calling (dialogue.tool_selection = "guided", the bundled models' setting) against the
scripted model: file tools only when a file is in the conversation, a call grammar on every request
that offers tools, the guidance in the system prompt, and no call run twice."""

import json

from assistant.dialogue.guidance import call_grammar, mentions_file, same_call
from assistant.dialogue.prompts import PromptLibrary, project_prompts_dir
from assistant.dialogue.turn import Dialogue
from assistant.errors import RequestRejected
from assistant.events import Progress, ToolCallFinished, ToolCallStarted, TurnFinished
from assistant.plugin_api import Plugin, ToolContext, tool
from assistant.testing.fake_model import ScriptedModel, call

from .test_dialogue import Shop, load_plugins, load_settings, parse_assignments


class Files(Plugin):
    name = "files"
    description = "Reads files"

    @tool(needs="file")
    def read(self, path: str, ctx: ToolContext) -> str:
        """Read a text file.

        Args:
            path: The file.
        """
        return f"contents of {path}"


def guided(*replies, tmp_path, native=True, prompts=False):
    settings = load_settings(overrides=parse_assignments([f"paths.state_dir='{tmp_path}'"]), environ={})
    registry = load_plugins(extra=[Shop, Files], include_entry_points=False, data_root=tmp_path)
    model = ScriptedModel(*replies)
    library = PromptLibrary([project_prompts_dir()]) if prompts else None
    return Dialogue(model, settings=settings, registry=registry, prompts=library, native_tools=native,
                    tool_selection="guided"), model  # fmt: skip


async def events_of(dialogue, text):
    return [e async for e in dialogue.turn(text)]


def grammar_of(request):
    tag = ((request.get("extra") or {}).get("structured_outputs") or {}).get("structural_tag")
    return json.loads(tag) if tag else None


def offered_names(request):
    return sorted(t["function"]["name"] for t in request["tools"] or [])


async def test_file_tools_wait_for_a_file_and_every_call_is_constrained(tmp_path):
    dialogue, model = guided("Tea is a drink.", "It says hello.", tmp_path=tmp_path)
    await events_of(dialogue, "What is tea?")
    assert "files_read" not in offered_names(model.requests[0])
    grammar = grammar_of(model.requests[0])
    begins = {s["begin"] for s in grammar["structures"]}
    assert '{"name": "shop_price", "arguments": ' in begins and '<tool_call>\n{"name": "shop_price", "arguments": ' in begins
    assert not any("files_read" in b for b in begins)  # a tool not offered cannot be called either
    assert set(grammar["triggers"]) == {"<tool_call>", '{"name": "', '{\n  "name": "'}
    price = next(s for s in grammar["structures"] if "shop_price" in s["begin"])
    assert price["schema"]["properties"]["item"]["type"] == "string"
    await events_of(dialogue, "What does ~/notes/today.txt say?")
    assert "files_read" in offered_names(model.requests[1])


async def test_the_system_prompt_says_what_tools_are_for_and_the_template_lists_them(tmp_path):
    dialogue, model = guided("Paris.", tmp_path=tmp_path, prompts=True)
    await events_of(dialogue, "Capital of France?")
    system = model.requests[0]["messages"][0]["content"]
    assert "Use a tool only for what you cannot know yourself" in system
    assert "shop_price" not in system  # with a server-side parser, the chat template lists the tools


async def test_without_a_parser_the_prompt_lists_only_the_offered_tools_and_the_grammar_holds(tmp_path):
    dialogue, model = guided('{"name": "shop_price", "arguments": {"item": "tea"}}', "Tea costs 3.", tmp_path=tmp_path,
                             native=False, prompts=True)  # fmt: skip
    events = await events_of(dialogue, "How much is tea?")
    first = model.requests[0]
    assert first["tools"] is None and grammar_of(first) is not None
    assert "shop_price" in first["messages"][0]["content"] and "files_read" not in first["messages"][0]["content"]
    assert [(e.name, e.arguments) for e in events if isinstance(e, ToolCallStarted)] == [("shop_price", {"item": "tea"})]
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == "Tea costs 3."


async def test_the_same_call_twice_is_not_run_again(tmp_path):
    dialogue, model = guided(call("shop_price", {"item": "tea"}), call("shop_price", {"item": "tea"}), "It is 3.",
                             tmp_path=tmp_path)  # fmt: skip
    events = await events_of(dialogue, "How much is tea?")
    assert len([e for e in events if isinstance(e, ToolCallFinished)]) == 1
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == "It is 3."
    assert model.requests[-1]["tools"] is None  # after the repeat: an answer, with no tools offered
    assert len([m for m in dialogue.history if m.get("tool_calls")]) == 1  # the repeat is not kept


async def test_a_server_without_structured_outputs_gets_the_request_again_without_the_grammar(tmp_path):
    refused = RequestRejected("the server rejected the request (HTTP 400): unknown field structured_outputs", status=400)
    dialogue, model = guided(refused, "Hello there.", "Again.", tmp_path=tmp_path)
    events = await events_of(dialogue, "hi")
    assert any(isinstance(e, Progress) and "structured outputs" in e.message for e in events)
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == "Hello there."
    assert grammar_of(model.requests[1]) is None and model.requests[1]["tools"]
    await events_of(dialogue, "and?")
    assert grammar_of(model.requests[2]) is None  # not asked again


async def test_force_tool_offers_only_that_tool_with_a_strict_schema(tmp_path):
    dialogue, model = guided(call("shop_price", {"item": "tea"}), "3.", tmp_path=tmp_path)
    events = [e async for e in dialogue.turn("tea?", force_tool="shop_price")]
    first = model.requests[0]
    assert offered_names(first) == ["shop_price"] and first["tools"][0]["function"]["strict"]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "shop_price"}} and grammar_of(first) is None
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == "3."


def test_mentions_file():
    assert mentions_file([{"role": "user", "content": "summarise report.pdf please"}])
    assert mentions_file([{"role": "user", "content": [{"type": "text", "text": "see ./a/b"}]}])
    assert not mentions_file([{"role": "user", "content": "What is 2.5 times 4? And e.g. why?"}])
    assert not mentions_file([{"role": "assistant", "content": "read notes.txt"}])
    assert not mentions_file([{"role": "user", "content": "[minutes.txt]\nWe met.\n\nSummarise this file."}])  # inlined


def test_same_call_compares_arguments_as_json():
    assert same_call(("a", '{"x": 1, "y": 2}'), ("a", '{"y":2,"x":1}'))
    assert not same_call(("a", '{"x": 1}'), ("b", '{"x": 1}'))
    assert not same_call(("a", '{"x": 1}'), ("a", '{"x": 2}'))


def test_call_grammar_has_three_shapes_per_tool():
    tools = [{"type": "function", "function": {"name": "t", "parameters": {"type": "object", "properties": {}}}}]
    assert len(json.loads(call_grammar(tools))["structures"]) == 3


async def test_an_answer_that_names_a_tool_instead_of_calling_it_gets_the_call_made(tmp_path):
    dialogue, model = guided("To find it I will use the shop_price function with the item tea.",
                             call("shop_price", {"item": "tea"}), "Tea costs 3.", tmp_path=tmp_path)  # fmt: skip
    events = await events_of(dialogue, "How much is tea?")
    assert model.requests[1]["tool_choice"] == {"type": "function", "function": {"name": "shop_price"}}
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["shop_price"]
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == "Tea costs 3."
    assert not any("I will use" in str(m.get("content")) for m in dialogue.history)  # the description is not kept


async def test_naming_a_tool_is_followed_once_and_not_after_a_call(tmp_path):
    dialogue, model = guided("I would use shop_price here.", "I would use shop_price here.", tmp_path=tmp_path)
    # The forced request answers in words too: the turn ends there, no loop.
    events = await events_of(dialogue, "How much is tea?")
    assert len(model.requests) == 2 and [e for e in events if isinstance(e, TurnFinished)]


async def test_an_answer_that_only_repeats_the_call_is_asked_for_again_in_words(tmp_path):
    echo = '```json\n{"name": "shop_price", "arguments": {"item": "tea"}}\n```'
    dialogue, model = guided(call("shop_price", {"item": "tea"}), echo, echo, "Tea costs 3.", tmp_path=tmp_path)
    events = await events_of(dialogue, "How much is tea?")
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == "Tea costs 3."
    assert len([e for e in events if isinstance(e, ToolCallFinished)]) == 1
    assert "in plain words" in model.requests[-1]["messages"][-1]["content"]
    assert not any("in plain words" in str(m.get("content")) for m in dialogue.history)


async def test_an_answer_that_echoes_the_result_as_json_is_asked_for_again_in_words(tmp_path):
    echo = '```json\n{"item": "tea", "price": 3}\n```'
    dialogue, model = guided(call("shop_price", {"item": "tea"}), echo, "Tea costs 3.", tmp_path=tmp_path)
    events = await events_of(dialogue, "How much is tea?")
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == "Tea costs 3."
    assert "in plain words" in model.requests[-1]["messages"][-1]["content"]
    assert model.requests[-1]["tools"] is None  # the answer step offers no tools


async def test_json_is_a_fine_answer_when_the_user_asked_for_json(tmp_path):
    echo = '{"item": "tea", "price": 3}'
    dialogue, model = guided(call("shop_price", {"item": "tea"}), echo, tmp_path=tmp_path)
    events = await events_of(dialogue, "Price of tea, as JSON please.")
    assert [e for e in events if isinstance(e, TurnFinished)][0].text == echo and len(model.requests) == 2
