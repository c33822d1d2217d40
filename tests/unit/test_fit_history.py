"""A conversation that outgrows the model's context: the oldest whole turns are left out of the
request, the turn in progress never is, and the session keeps everything."""

from assistant.dialogue.fit import fit_history, message_tokens
from assistant.dialogue.turn import Dialogue
from assistant.documents.tokens import ratio_counter
from assistant.events import Progress, TurnFinished
from assistant.settings import load_settings, parse_assignments
from assistant.testing import ScriptedModel

count = ratio_counter(1.0, margin=1.0)  # 1 character = 1 token


def turn(i, size=100, tool=False):
    msgs = [{"role": "user", "content": f"q{i} " + "x" * size}]
    if tool:
        msgs += [{"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function",
                                                                     "function": {"name": "t", "arguments": "{}"}}]},
                 {"role": "tool", "tool_call_id": f"c{i}", "content": "r" * size}]
    return msgs + [{"role": "assistant", "content": f"a{i} " + "y" * size}]


def test_cuts_only_before_a_user_message_and_keeps_the_last_turn():
    history = turn(0) + turn(1, tool=True) + turn(2) + [{"role": "user", "content": "now " + "z" * 50}]
    assert fit_history(history, 10_000, count) == (history, 0)
    kept, dropped = fit_history(history, 400, count)
    assert kept[0]["role"] == "user" and kept[-1]["content"].startswith("now") and dropped == 6  # turns 0 and 1
    assert sum(message_tokens(kept, count)) <= 400
    # a tool call and its result stay together: turn 1 goes whole or not at all
    kept, dropped = fit_history(history, 750, count)
    assert dropped == 2 and [m["role"] for m in kept[:4]] == ["user", "assistant", "tool", "assistant"]
    # the turn in progress is sent even when it alone is too big
    kept, dropped = fit_history(history, 10, count)
    assert kept == history[-1:] and dropped == len(history) - 1


def test_images_count_in_the_estimate():
    msg = {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:"}}]}
    assert message_tokens([msg], count)[0] > 1000


class SmallContextModel(ScriptedModel):
    async def context_length(self):
        return 1200


def dialogue(tmp_path, model, *pairs):
    settings = load_settings(overrides=parse_assignments([f"paths.state_dir='{tmp_path}'", "dialogue.system_prompt=''",
                                                         "model.max_tokens=200", *pairs]), environ={})
    return Dialogue(model, settings=settings)


async def test_a_long_chat_keeps_fitting_and_says_what_it_left_out(tmp_path):
    model = SmallContextModel(*[f"answer {i} " + "w" * 300 for i in range(8)])
    d = dialogue(tmp_path, model)
    notes = []
    for i in range(8):
        events = [e async for e in d.turn(f"question {i} " + "v" * 300)]
        assert isinstance(events[-1], TurnFinished)
        notes += [e.message for e in events if isinstance(e, Progress) and e.task == "context"]
    sent = model.requests[-1]["messages"]
    assert sent[-1]["content"].startswith("question 7") and len(sent) < len(d.history) == 16
    assert sum(message_tokens(sent, ratio_counter(3.0))) <= 1200 - 200
    assert sent[0]["role"] == "user"  # cut at a turn boundary
    assert notes and "oldest of" in notes[-1] and "1,200-token context" in notes[-1]
    assert len(model.requests[0]["messages"]) == 1  # nothing left out while it fits


async def test_fitting_can_be_turned_off(tmp_path):
    model = SmallContextModel(*["a" * 600 for _ in range(4)])
    d = dialogue(tmp_path, model, "dialogue.fit_history=false")
    for i in range(4):
        [e async for e in d.turn("q" * 600)]
    assert len(model.requests[-1]["messages"]) == 7
