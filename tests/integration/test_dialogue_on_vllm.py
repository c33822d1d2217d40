"""A full dialogue turn with a plugin tool against the real vLLM server (tiny VLM, hermes parser)."""

import json
import subprocess

import pytest

from assistant.events import ApprovalDecided, TextDelta, ToolCallFinished, ToolCallStarted, TurnFailed, TurnFinished
from assistant.dialogue.turn import Dialogue
from assistant.model.client import ChatClient, ClientConfig
from assistant.runtime import load_registry, open_store, prompt_library
from assistant.settings import load_settings

from .conftest import ASSISTANT, ROOT, cli_env

pytestmark = pytest.mark.vllm


async def test_turn_with_forced_plugin_tool_is_executed_and_recorded(tiny_engine, tmp_path):
    settings = load_settings(
        overrides={"paths": {"state_dir": str(tmp_path)}, "model": {"max_tokens": 256, "temperature": 1.0, "seed": 7}},
        environ={},
    )
    registry = load_registry(settings)
    assert "utilities_calculate" in registry.tools
    store = open_store(settings)
    async with ChatClient(ClientConfig(base_url=tiny_engine.base_url, max_retries=0)) as client:
        dialogue = Dialogue(
            client, settings=settings, registry=registry, prompts=prompt_library(settings, registry),
            store=store, model_name=tiny_engine.served_name, model_accepts_images=True,
        )  # fmt: skip
        events = [e async for e in dialogue.turn("What is 17 * 23?", force_tool="utilities_calculate")]
    assert not [e for e in events if isinstance(e, TurnFailed)], events
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert started[0].name == "utilities_calculate" and started[0].risk == "read_only"
    assert [e.decision for e in events if isinstance(e, ApprovalDecided)][0] == "auto"
    # Random weights: the (schema-constrained, so valid) expression is gibberish, so the
    # calculator's error goes back to the model as the tool result and the turn still ends.
    assert isinstance(started[0].arguments.get("expression"), str)
    assert finished and finished[0].result
    fin = [e for e in events if isinstance(e, TurnFinished)][0]
    assert fin.steps >= 2 and fin.tool_calls >= 1 and fin.usage.completion_tokens > 0
    recorded = store.tool_calls(fin.session_id)
    assert recorded[0]["name"] == "utilities_calculate" and recorded[0]["decision"] == "auto"
    roles = [m["role"] for m in store.history(fin.session_id)]
    assert roles[:3] == ["user", "assistant", "tool"] and roles[-1] == "assistant"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == fin.text
    store.close()


def test_ask_tool_session_continue_and_export_as_subprocesses(tiny_engine, tiny_vlm_dir, cache_dir, tmp_path):
    env = cli_env(tmp_path, cache_dir, ASSISTANT_MODEL__BASE_URL=tiny_engine.base_url, ASSISTANT_MODEL__MAX_TOKENS="256")

    def run(*args, **kw):
        return subprocess.run(ASSISTANT + list(args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, **kw)

    first = run("ask", "--json", "-t", "1", "--seed", "7", "--tool", "utilities_current_time", "What time is it?")
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)
    assert data["tool_calls"][0]["name"] == "utilities_current_time" and data["steps"] >= 2
    session = data["session_id"]

    second = run("ask", "--json", "-t", "0", "--session", session[:15], "And now?")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["session_id"] == session

    shown = run("sessions", "show", session)
    assert shown.returncode == 0 and "utilities_current_time" in shown.stdout and "And now?" in shown.stdout
    exported = run("sessions", "export", session, "--format", "json")
    dump = json.loads(exported.stdout)
    assert dump["format"] == "assistant-session"
    roles = [m["role"] for m in dump["messages"]]
    assert roles[:3] == ["user", "assistant", "tool"] and roles.count("user") == 2 and roles[-1] == "assistant"


def test_side_effect_tool_is_denied_without_a_terminal_and_recorded(tiny_engine, cache_dir, tmp_path):
    env = cli_env(tmp_path, cache_dir, ASSISTANT_MODEL__BASE_URL=tiny_engine.base_url, ASSISTANT_MODEL__MAX_TOKENS="256")
    out = subprocess.run(
        ASSISTANT + ["ask", "--json", "-t", "1", "--seed", "7", "--tool", "notes_save", "Save a note."],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    call = json.loads(out.stdout)["tool_calls"][0]
    assert call["name"] == "notes_save" and call["risk"] == "side_effects"
    # strict + a named tool_choice makes the server emit schema-valid arguments, so the call
    # reaches the approval policy, which denies it: nobody is at a terminal to ask.
    assert call["decision"] == "denied-by-policy" and "not run" in call["result"]
    assert not list((tmp_path / "state").rglob("*.md"))


def test_plugins_doctor_tries_a_named_call_of_every_tool(tiny_engine, cache_dir, tmp_path):
    env = cli_env(tmp_path, cache_dir, ASSISTANT_MODEL__BASE_URL=tiny_engine.base_url)
    out = subprocess.run(ASSISTANT + ["plugins", "doctor"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for tool in ("utilities_calculate", "utilities_current_time", "notes_save", "notes_read", "notes_search"):
        line = next(l for l in out.stdout.splitlines() if l.split(":")[0].endswith(tool))
        # The call itself must come back (✓ valid or · invalid arguments); ✗ means no call at all.
        assert line.startswith(("✓", "·")), line


async def test_a_chat_longer_than_the_context_keeps_going(tiny_engine, tiny_vlm_dir, tmp_path):
    """Eight turns of ~1,500 tokens each on a 4096-token model: the oldest turns are left out of
    the request (with a note) and every turn is answered; the session keeps all of them. With
    fitting off, the same chat fails once the history no longer fits."""
    from assistant.errors import ContextTooLong
    from assistant.events import Progress

    words = " ".join(f"w{i}" for i in range(600))

    async def chat(fit: bool) -> tuple[list, Dialogue]:
        settings = load_settings(overrides={
            "paths": {"state_dir": str(tmp_path / str(fit))}, "dialogue": {"system_prompt": "", "fit_history": fit},
            "model": {"max_tokens": 32, "temperature": 0.0}}, environ={})  # fmt: skip
        store = open_store(settings)
        config = ClientConfig(base_url=tiny_engine.base_url, max_retries=0, tokenizer_folder=str(tiny_vlm_dir))
        events = []
        async with ChatClient(config) as client:
            dialogue = Dialogue(client, settings=settings, store=store, model_name=tiny_engine.served_name)
            for i in range(8):
                events.append([e async for e in dialogue.turn(f"Part {i}: {words}")])
                if isinstance(events[-1][-1], TurnFailed):
                    break
        store.close()
        return events, dialogue

    turns, dialogue = await chat(True)
    assert len(turns) == 8 and all(isinstance(t[-1], TurnFinished) for t in turns), [t[-1] for t in turns]
    notes = [e.message for t in turns for e in t if isinstance(e, Progress) and e.task == "context"]
    assert notes and "4,096-token context" in notes[-1]
    assert len(dialogue.history) == 16  # everything is kept; only the requests shrank

    turns, _ = await chat(False)
    assert isinstance(turns[-1][-1], TurnFailed) and isinstance(turns[-1][-1].error, ContextTooLong)
