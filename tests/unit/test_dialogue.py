"""The dialogue loop against the scripted model: tools, recovery, validation, approval."""

import asyncio
import json

import pytest

from assistant.events import (
    ApprovalDecided,
    AttachmentProduced,
    Progress,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFailed,
    TurnFinished,
)
from assistant.dialogue.turn import Dialogue
from assistant.errors import StreamInterrupted
from assistant.plugin_api import OutputFile, Plugin, Risk, ToolContext, ToolOutput, tool
from assistant.plugin_api.registry import load_plugins
from assistant.settings import load_settings, parse_assignments
from assistant.testing.fake_model import ScriptedModel, call


class Shop(Plugin):
    name = "shop"
    description = "A test shop"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.orders: list[tuple[str, int]] = []
        self.setups = 0

    async def setup(self):
        self.setups += 1

    @tool
    def price(self, item: str) -> dict:
        """Price of an item.

        Args:
            item: Item name.
        """
        return {"item": item, "price": 3}

    @tool(risk=Risk.SIDE_EFFECTS)
    async def order(self, item: str, quantity: int, ctx: ToolContext) -> str:
        """Place an order.

        Args:
            item: Item name.
            quantity: How many.
        """
        ctx.progress("ordering", 0.5)
        self.orders.append((item, quantity))
        return f"ordered {quantity} {item}"

    @tool
    def broken(self) -> str:
        """Always fails."""
        raise RuntimeError("database is down")

    @tool
    def picture(self) -> ToolOutput:
        """Draw a picture."""
        return ToolOutput("drew it", (OutputFile(b"\x89PNG fake", "image/png", "pic.png", "a picture"),))


def make(*replies, approver=None, settings_pairs=(), tmp_path=None):
    settings = load_settings(
        overrides=parse_assignments(list(settings_pairs) + [f"paths.state_dir='{tmp_path}'", "dialogue.system_prompt=''"]),
        environ={},
    )
    registry = load_plugins(extra=[Shop], include_entry_points=False, data_root=tmp_path)
    model = ScriptedModel(*replies)
    return Dialogue(model, settings=settings, registry=registry, approver=approver), model, registry.plugins["shop"]


async def run(dialogue, text="hi", attachments=()):
    return [e async for e in dialogue.turn(text, attachments)]


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


async def test_plain_answer_streams_and_finishes(tmp_path):
    d, model, _ = make("Hello there friend.", tmp_path=tmp_path)
    events = await run(d)
    assert "".join(e.text for e in of(events, TextDelta)) == "Hello there friend."
    fin = of(events, TurnFinished)[0]
    assert fin.text == "Hello there friend." and fin.steps == 1
    assert [t["function"]["name"] for t in model.requests[0]["tools"]] == ["shop_broken", "shop_order", "shop_picture", "shop_price"]


async def test_native_tool_call_result_goes_back_to_model(tmp_path):
    d, model, shop = make(call("shop_price", {"item": "apple"}), "Apples cost 3.", tmp_path=tmp_path)
    events = await run(d)
    started, finished = of(events, ToolCallStarted)[0], of(events, ToolCallFinished)[0]
    assert started.arguments == {"item": "apple"} and started.risk == "read_only"
    assert json.loads(finished.result) == {"item": "apple", "price": 3} and finished.error is None
    tool_msg = model.requests[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "call_shop_price"
    assert of(events, TurnFinished)[0].text == "Apples cost 3." and shop.setups == 1


async def test_hermes_text_tool_call_is_recovered_and_hidden(tmp_path):
    reply = 'Let me check. <tool_call>{"name": "shop_price", "arguments": {"item": "pear"}}</tool_call>'
    d, model, _ = make(reply, "Pears cost 3.", tmp_path=tmp_path)
    events = await run(d)
    shown = "".join(e.text for e in of(events, TextDelta))
    assert "<tool_call>" not in shown and shown.startswith("Let me check.") and shown.endswith("Pears cost 3.")
    assert of(events, ToolCallStarted)[0].arguments == {"item": "pear"}


async def test_bare_json_tool_call_is_recovered(tmp_path):
    d, _, _ = make('```json\n{"name": "shop_price", "parameters": {"item": "fig"}}\n```', "Figs cost 3.", tmp_path=tmp_path)
    events = await run(d)
    assert of(events, ToolCallStarted)[0].arguments == {"item": "fig"}
    assert "".join(e.text for e in of(events, TextDelta)) == "Figs cost 3."


async def test_json_answer_naming_no_tool_stays_an_answer(tmp_path):
    d, _, _ = make('{"name": "Ada", "age": 36}', tmp_path=tmp_path)
    events = await run(d)
    assert not of(events, ToolCallStarted)
    assert "".join(e.text for e in of(events, TextDelta)) == '{"name": "Ada", "age": 36}'


async def test_invalid_arguments_fed_back_once_then_tools_withdrawn(tmp_path):
    d, model, _ = make(
        call("shop_price", {"itm": "x"}),
        call("shop_price", "{not json"),
        "I could not look that up.",
        tmp_path=tmp_path,
    )
    events = await run(d)
    errors = [e.error for e in of(events, ToolCallFinished)]
    assert "item" in errors[0] and "not valid JSON" in errors[1]
    assert "shop_price" in model.requests[1]["messages"][-1]["content"]  # the error + schema went back
    assert model.requests[1]["tools"] and model.requests[2]["tools"] is None  # retry used: answer in words
    assert of(events, TurnFinished)[0].text == "I could not look that up."


async def test_tool_exception_becomes_a_result_not_a_crash(tmp_path):
    d, model, _ = make(call("shop_broken", {}), "Sorry, the shop is down.", tmp_path=tmp_path)
    events = await run(d)
    fin = of(events, ToolCallFinished)[0]
    assert fin.error and "RuntimeError: database is down" in fin.result
    assert "database is down" in model.requests[1]["messages"][-1]["content"]
    assert of(events, TurnFinished)


async def test_unknown_tool_is_reported_to_the_model(tmp_path):
    d, model, _ = make(call("shop_refund", {}), "ok", tmp_path=tmp_path)
    events = await run(d)
    assert "no tool named 'shop_refund'" in of(events, ToolCallFinished)[0].result
    assert "shop_price" in model.requests[1]["messages"][-1]["content"]


async def test_step_limit_forces_a_final_answer(tmp_path):
    replies = [call("shop_price", {"item": str(i)}, call_id=f"c{i}") for i in range(2)] + ["done"]
    d, model, _ = make(*replies, settings_pairs=["dialogue.max_steps=3"], tmp_path=tmp_path)
    events = await run(d)
    assert len(of(events, ToolCallStarted)) == 2 and model.requests[2]["tools"] is None
    assert of(events, TurnFinished)[0].steps == 3


async def test_side_effect_tool_denied_by_default_without_a_person(tmp_path):
    d, model, shop = make(call("shop_order", {"item": "tea", "quantity": 2}), "Not ordered.", tmp_path=tmp_path)
    events = await run(d)
    decision = of(events, ApprovalDecided)[0]
    assert (decision.approved, decision.decision) == (False, "denied-by-policy")
    assert shop.orders == [] and "not run" in of(events, ToolCallFinished)[0].result


async def test_non_interactive_policy_auto_runs_it(tmp_path):
    d, _, shop = make(
        call("shop_order", {"item": "tea", "quantity": 2}), "Ordered.",
        settings_pairs=["approval.non_interactive=auto"], tmp_path=tmp_path,
    )  # fmt: skip
    events = await run(d)
    assert of(events, ApprovalDecided)[0].decision == "approved-by-policy" and shop.orders == [("tea", 2)]
    progress = of(events, Progress)
    assert progress and progress[0].message == "ordering" and progress[0].fraction == 0.5


async def test_person_approves_always_then_not_asked_again(tmp_path):
    asked = []

    async def approver(request):
        asked.append(request)
        return "always"

    d, _, shop = make(
        call("shop_order", {"item": "a", "quantity": 1}, call_id="1"), "ok",
        call("shop_order", {"item": "b", "quantity": 1}, call_id="2"), "ok",
        approver=approver, tmp_path=tmp_path,
    )  # fmt: skip
    first, second = await run(d), await run(d, "again")
    assert len(asked) == 1 and asked[0].arguments == {"item": "a", "quantity": 1}
    assert of(second, ApprovalDecided)[0].decision == "approved-always" and len(shop.orders) == 2


async def test_person_denies(tmp_path):
    async def approver(request):
        return "deny"

    d, _, shop = make(call("shop_order", {"item": "a", "quantity": 1}), "ok", approver=approver, tmp_path=tmp_path)
    events = await run(d)
    assert of(events, ApprovalDecided)[0].decision == "denied" and shop.orders == []


async def test_deny_policy_for_read_only_tools(tmp_path):
    d, _, _ = make(call("shop_price", {"item": "a"}), "ok", settings_pairs=["approval.read_only=deny"], tmp_path=tmp_path)
    assert of(await run(d), ApprovalDecided)[0].decision == "denied-by-policy"


async def test_tool_files_become_attachment_events(tmp_path):
    d, _, _ = make(call("shop_picture", {}), "Here it is.", tmp_path=tmp_path)
    produced = of(await run(d), AttachmentProduced)[0]
    assert produced.mime == "image/png" and open(produced.path, "rb").read() == b"\x89PNG fake"


async def test_model_failure_is_turn_failed_with_partial_text(tmp_path):
    d, _, _ = make(StreamInterrupted("broke", partial_text="half"), tmp_path=tmp_path)
    failed = of(await run(d), TurnFailed)[0]
    assert isinstance(failed.error, StreamInterrupted)


async def test_a_context_overflow_names_the_tool_schemas(tmp_path):
    from assistant.errors import ContextTooLong

    d, _, _ = make(ContextTooLong("does not fit", hint="shorten the input"), tmp_path=tmp_path)
    failed = of(await run(d), TurnFailed)[0]
    assert isinstance(failed.error, ContextTooLong)
    assert "4 tool schemas go with every request" in failed.error.hint and "[plugins] disabled" in failed.error.hint
    assert failed.error.hint.endswith("shorten the input")  # the server's own advice is kept


async def test_history_carries_over_turns(tmp_path):
    d, model, _ = make("first", "second", tmp_path=tmp_path)
    await run(d, "one")
    await run(d, "two")
    roles = [(m["role"], m["content"]) for m in model.requests[1]["messages"]]
    assert roles == [("user", "one"), ("assistant", "first"), ("user", "two")]


async def test_cancelling_a_turn_propagates(tmp_path):
    class Slow(ScriptedModel):
        async def stream_chat(self, messages, **kw):
            await asyncio.sleep(10)
            yield  # pragma: no cover

    settings = load_settings(overrides={"paths": {"state_dir": str(tmp_path)}, "dialogue": {"system_prompt": ""}}, environ={})
    d = Dialogue(Slow(), settings=settings)
    task = asyncio.ensure_future(run(d))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_finish_reason_of_the_last_call_is_reported(tmp_path):
    from assistant.testing.fake_model import Reply

    d, _, _ = make(Reply(text="cut off mid", finish_reason="length"), tmp_path=tmp_path)
    assert of(await run(d), TurnFinished)[0].finish_reason == "length"


async def test_concurrent_turns_set_a_plugin_up_once_and_keep_both_files(tmp_path):
    d1, _, shop = make(call("shop_picture", {}), "a", tmp_path=tmp_path)
    d2 = Dialogue(ScriptedModel(call("shop_picture", {}), "b"), settings=d1.settings, registry=d1.registry)
    first, second = await asyncio.gather(run(d1), run(d2))
    assert shop.setups == 1
    paths = {of(first, AttachmentProduced)[0].path, of(second, AttachmentProduced)[0].path}
    assert len(paths) == 2


def test_a_call_written_twice_fenced_then_bare_is_one_call_and_a_line_after_it_is_kept_apart():
    from assistant.dialogue.toolcalls import recover_tool_calls

    twice = '```json\n{\n  "name": "shop_price",\n  "arguments": {"item": "tea"}\n}\n```\n{"name": "shop_price", "arguments": {"item": "tea"}}'
    rest, calls = recover_tool_calls(twice, {"shop_price"})
    assert rest == "" and [(c.name, json.loads(c.arguments)) for c in calls] == [("shop_price", {"item": "tea"})]
    rest, calls = recover_tool_calls('{"name": "shop_price", "arguments": {"item": "tea"}}\n[price list]', {"shop_price"})
    assert rest == "[price list]" and len(calls) == 1
    # JSON that does not name a known tool, or that comes after words, stays an answer.
    for answer in ('{"name": "Ana", "age": 3}', 'Here it is: {"name": "shop_price"}',
                   '{"name": "shop_price", "arguments": {}} {"name": "nope", "arguments": {}}'):  # fmt: skip
        assert recover_tool_calls(answer, {"shop_price"}) == (answer, [])


class Desk(Plugin):
    name = "desk"
    description = "A help desk"

    @tool
    def handoff(self, summary: str) -> ToolOutput:
        """Hand over to a person.

        Args:
            summary: What the customer wants.
        """
        return ToolOutput(json.dumps({"reference": "H-77"}), say="A person will call you; your reference is H-77.")


def desk(*replies, tmp_path):
    settings = load_settings(overrides=parse_assignments([f"paths.state_dir='{tmp_path}'", "dialogue.system_prompt=''"]), environ={})
    registry = load_plugins(extra=[Desk], include_entry_points=False, data_root=tmp_path)
    return Dialogue(ScriptedModel(*replies), settings=settings, registry=registry)


async def test_what_a_tool_says_the_user_must_see_is_added_when_the_answer_leaves_it_out(tmp_path):
    d = desk(call("desk_handoff", {"summary": "wants a person"}), "I'll be in touch soon.", tmp_path=tmp_path)
    events = await run(d, "A person, please.")
    said = "A person will call you; your reference is H-77."
    final = of(events, TurnFinished)[0].text
    assert final == f"I'll be in touch soon.\n\n{said}"
    assert "".join(e.text for e in of(events, TextDelta)) == final  # streamed as shown
    assert d.history[-1] == {"role": "assistant", "content": final}  # and kept so


async def test_an_answer_with_the_reference_in_its_own_words_is_left_as_it_is(tmp_path):
    d = desk(call("desk_handoff", {"summary": "wants a person"}), "Done: quote H-77 when they call.", tmp_path=tmp_path)
    events = await run(d, "A person, please.")
    assert of(events, TurnFinished)[0].text == "Done: quote H-77 when they call."
