"""Scenario tests: every conversation in tests/scenarios/ replayed with the scripted model through
the real Dialogue, the real plugins and a real session store; the runner's own checks; and
sessions exported as scenarios that replay to the same tool calls."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from assistant.sessions.export import export_scenario
from assistant.testing.scenarios import (
    ScenarioError,
    compare_calls,
    load_scenario,
    missing_requirements,
    run_scenario,
)

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
FILES = sorted(SCENARIOS.glob("*.json"))


def needs_kb(scenario: dict) -> bool:
    return "faq" in (scenario.get("plugins") or [])


def needs_speech(scenario: dict) -> bool:
    return "speech" in (scenario.get("plugins") or [])


@pytest.fixture(scope="module")
def kb_folder(tmp_path_factory):
    """One knowledge base for the module: the sample FAQ is ingested once (~15 s), not per scenario."""
    pytest.importorskip("chromadb", reason="the documents extra is not installed: pip install 'assistant[documents]'")
    return tmp_path_factory.mktemp("kb")


def replay(path_or_scenario, workdir: Path, request, **kw):
    scenario = load_scenario(path_or_scenario)
    missing = missing_requirements(scenario)
    if missing:
        pytest.skip("; ".join(missing))
    options = dict(kw.pop("options", {}) or {})
    if needs_kb(scenario):
        options["faq"] = {"kb_folder": str(request.getfixturevalue("kb_folder"))}
    return run_scenario(path_or_scenario, workdir=workdir, options=options, **kw)


def test_the_scenarios_cover_what_the_pack_promises():
    names = {p.stem for p in FILES}
    assert names >= {
        "order_lookup_identity", "faq_answered_with_citation", "faq_unknown_handoff", "ticket_denied_by_policy",
        "ticket_lifecycle_approved", "damaged_item_photo_and_voice", "identity_lockout_handoff",
    }
    for path in FILES:
        scenario = load_scenario(path)
        assert scenario["name"] and scenario["description"], path
        assert scenario.get("expect"), f"{path.name} checks no final state"


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=p.stem, marks=[pytest.mark.speech] if needs_speech(json.loads(p.read_text())) else [])
             for p in FILES],
)
def test_scenario_replays_with_the_scripted_model(path, tmp_path, request):
    run = replay(path, tmp_path, request)
    run.assert_ok()
    assert run.turns and all(t.calls for t in run.turns)


# --- the runner catches what is wrong -----------------------------------------------------------


def base() -> dict:
    return json.loads((SCENARIOS / "order_lookup_identity.json").read_text())


def problems_with(tmp_path, change) -> list[str]:
    scenario = base()
    change(scenario)
    return run_scenario(scenario, workdir=tmp_path).problems


@pytest.mark.parametrize("change, expected", [
    (lambda s: s["turns"][1]["expect"]["tool_calls"][0].update(decision="denied"), "decision is 'auto', expected 'denied'"),
    (lambda s: s["turns"][1]["expect"]["tool_calls"][0].update(arguments={"order_id": "A1001"}),
     "argument order_id is 'A1002', expected 'A1001'"),
    (lambda s: s["turns"][0]["expect"]["tool_calls"][0]["result_json"].update(verified=True), "result: verified is False"),
    (lambda s: s["turns"][0]["expect"].update(answer_contains=["Here you go"]), "the answer lacks 'Here you go'"),
    (lambda s: s["turns"][0]["expect"]["tool_calls"].append({"name": "orders_lookup"}), "expected 2 tool call(s)"),
    (lambda s: s["expect"]["marks"].update(customer="ben.okafor@example.org"), "mark customer is 'ana.lima@example.com'"),
    (lambda s: s["expect"]["marks"].update(order=None), "should not be marked order"),
    (lambda s: s["expect"]["sql"][0].update(rows=[]), "gave [['A1002', 0], ['A1002', 1]], expected []"),
    (lambda s: s["expect"].update(files=[{"glob": "orders/*.sqlite", "count": 5}]), "2 file(s) match orders/*.sqlite"),
    (lambda s: s["turns"][0]["replies"].append("one more"), "1 scripted repl(ies) unused"),
    (lambda s: s["turns"][0]["replies"].pop(), "more model calls than the turn scripts"),
    (lambda s: s["turns"][0].update(approvals=["approve"]), "approval answers left unused"),
])
def test_the_runner_reports_what_does_not_match(tmp_path, change, expected):
    problems = problems_with(tmp_path, change)
    assert any(expected in p for p in problems), problems


def test_a_failing_run_raises_with_every_problem(tmp_path):
    scenario = base()
    scenario["turns"][0]["expect"]["tool_calls"][0]["decision"] = "approved"
    scenario["expect"]["marks"]["customer"] = "nobody@example.com"
    with pytest.raises(AssertionError, match=r"2 problem\(s\)"):
        run_scenario(scenario, workdir=tmp_path).assert_ok()


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(format="something-else"), "not an assistant-scenario"),
    (lambda s: s.update(turns=[]), "non-empty list"),
    (lambda s: s.update(expectations={}), "unknown key(s) expectations"),
    (lambda s: s["turns"][0].update(reply=[]), "unknown key(s) reply"),
    (lambda s: s["turns"][0]["expect"]["tool_calls"][0].update(nmae="x"), "unknown key(s) nmae"),
    (lambda s: s["turns"][0].update(approval={"side_effects": "maybe"}), "approval is"),
    (lambda s: s["turns"][0].update(approvals=["yes"]), "approvals are"),
    (lambda s: s["turns"][0]["replies"].insert(0, {"tool_calls": [{"arguments": {}}]}), "a tool call is"),
    (lambda s: s.update(plugins=["orders", "no_such_plugin"]), "not installed: no_such_plugin"),
])
def test_a_malformed_scenario_is_refused_before_it_runs(tmp_path, change, message):
    scenario = base()
    change(scenario)
    with pytest.raises(ScenarioError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_scenario(scenario, workdir=tmp_path)
    assert not (tmp_path / "state" / "sessions.db").exists()


def test_invalid_json_arguments_are_replayed_as_they_came(tmp_path):
    scenario = base()
    scenario["turns"] = [{
        "user": "Order A1002?",
        "replies": [{"tool_calls": [{"name": "orders_lookup", "arguments": "{\"order_id\": \"A1002\""}]},
                    {"tool_calls": [{"name": "orders_lookup", "arguments": {"order_id": "A1002", "email": "ana.lima@example.com"}}]},
                    "Found it."],
        "expect": {"tool_calls": [{"name": "orders_lookup", "decision": "none", "error": "not valid JSON"},
                                  {"name": "orders_lookup", "decision": "auto", "result_json": {"verified": True}}]},
    }]
    scenario["expect"] = {"marks": {"customer": "ana.lima@example.com"}}  # the broken call was never a check
    run_scenario(scenario, workdir=tmp_path).assert_ok()


# --- exported sessions replay to the same calls ---------------------------------------------------


def registry_for(tmp_path):
    from assistant.plugin_api.registry import load_plugins

    # a support deployment: the opt-in pack is enabled
    return load_plugins(data_root=tmp_path / "registry-data", enabled={"orders", "faq", "tickets", "handoff"})


@pytest.mark.parametrize("name", [
    "ticket_lifecycle_approved", "faq_unknown_handoff", "identity_lockout_handoff",
    pytest.param("damaged_item_photo_and_voice", marks=pytest.mark.speech),
])
def test_an_exported_session_replays_to_the_same_tool_calls(tmp_path, request, name):
    original = load_scenario(SCENARIOS / f"{name}.json")
    first = replay(SCENARIOS / f"{name}.json", tmp_path / "first", request)
    first.assert_ok()
    with first.open_store() as store:
        exported = export_scenario(store, first.session_id, registry=registry_for(tmp_path))
    assert exported["format"] == "assistant-scenario" and exported["source_session"] == first.session_id
    assert exported["plugins"] == sorted(original["plugins"])
    assert [t["user"] for t in exported["turns"]] == [t["user"] for t in original["turns"]]
    exported = json.loads(json.dumps(exported))  # it is plain JSON
    again = replay(exported, tmp_path / "again", request, options=original.get("options"))
    again.assert_ok()  # its own expectations: the recorded calls, decisions and marks
    assert compare_calls(first, again) == []
    # And the original's checks of the final state hold for the replay too.
    with_state = copy.deepcopy(exported)
    with_state["expect"] = {k: v for k, v in original["expect"].items()}
    replay(with_state, tmp_path / "third", request, options=original.get("options")).assert_ok()


def test_export_works_out_approvals_from_the_recorded_decisions(tmp_path):
    run = run_scenario(SCENARIOS / "ticket_lifecycle_approved.json", workdir=tmp_path).assert_ok()
    with run.open_store() as store:
        exported = export_scenario(store, run.session_id)
    assert "plugins" not in exported  # without the registry: every installed plugin
    approvals = [(t.get("approval"), t.get("approvals")) for t in exported["turns"]]
    assert approvals == [
        ({"read_only": "auto", "side_effects": "deny"}, None),
        ({"side_effects": "ask"}, ["approve"]),
        ({"read_only": "auto"}, None),
        ({"side_effects": "auto"}, None),
    ]
    assert exported["expect"] == {"marks": {"customer": "*", "order": "*", "ticket": "*"}}


def test_always_answers_are_exported_as_always(tmp_path):
    scenario = base()
    scenario["plugins"] = ["tickets"]
    args = {"subject": "S", "category": "other", "description": "D"}
    scenario["turns"] = [{
        "user": "Two tickets please",
        "approvals": ["always"],
        "replies": [{"tool_calls": [{"name": "tickets_create", "arguments": args}]},
                    {"tool_calls": [{"name": "tickets_create", "arguments": {**args, "subject": "T"}}]}, "Done."],
        "expect": {"tool_calls": [{"name": "tickets_create", "decision": "approved"},
                                  {"name": "tickets_create", "decision": "approved-always"}]},
    }]
    scenario["expect"] = {"marks": {"ticket": "T-1002"}}
    run = run_scenario(scenario, workdir=tmp_path / "a").assert_ok()
    with run.open_store() as store:
        exported = export_scenario(store, run.session_id)
    assert exported["turns"][0]["approvals"] == ["always"]
    assert compare_calls(run, run_scenario(exported, workdir=tmp_path / "b").assert_ok()) == []


def test_sessions_export_command_writes_a_scenario(tmp_path, monkeypatch, capsys):
    from assistant.cli import main

    run = run_scenario(SCENARIOS / "order_lookup_identity.json", workdir=tmp_path / "run").assert_ok()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ASSISTANT_PATHS__STATE_DIR", str(run.state_dir))
    monkeypatch.setenv("ASSISTANT_PLUGINS__ENABLED", "orders faq tickets handoff")  # a support deployment
    out = tmp_path / "exported.json"
    assert main(["sessions", "export", run.session_id[:15], "--format", "scenario", "--out", str(out)]) == 0
    scenario = json.loads(out.read_text())
    assert scenario["plugins"] == ["orders"] and len(scenario["turns"]) == 2
    assert scenario["turns"][1]["expect"]["tool_calls"] == [
        {"name": "orders_lookup", "arguments": {"order_id": "A1002", "email": "ana.lima@example.com"}, "decision": "auto"}]
    replayed = run_scenario(out, workdir=tmp_path / "replay").assert_ok()
    assert compare_calls(run, replayed) == []


def test_export_gives_back_the_words_the_user_typed_before_the_files_text(tmp_path):
    """A short text file goes into the prompt before the user's words; the export takes it off
    again (the replay attaches the file anew), even when both contain blank lines."""
    scenario = base()
    scenario["turns"] = [{
        "user": "Here is what the courier wrote.\n\nCan you check order A1002? I'm ana.lima@example.com",
        "attachments": [{"name": "courier.txt", "text": "Parcel damaged in transit.\n\nReturned to depot.\n"}],
        "replies": [{"tool_calls": [{"name": "orders_lookup",
                                     "arguments": {"order_id": "A1002", "email": "ana.lima@example.com"}}]}, "Checked."],
        "expect": {"tool_calls": [{"name": "orders_lookup", "result_json": {"verified": True}}]},
    }]
    scenario["expect"] = {"marks": {"customer": "ana.lima@example.com"}}
    run = run_scenario(scenario, workdir=tmp_path / "a").assert_ok()
    with run.open_store() as store:
        (user,) = [m for m in store.messages(run.session_id) if m["role"] == "user"]
        assert store.history(run.session_id)[0]["content"].startswith("[courier.txt]\nParcel damaged")
        exported = export_scenario(store, run.session_id)
    (turn,) = exported["turns"]
    assert turn["user"] == scenario["turns"][0]["user"]
    assert turn["attachments"][0]["name"] == "courier.txt"
    # Replayed with every installed plugin, a text plugin (documents) may read the file this time,
    # under another title: the user's words and the calls stay the same, and so does the export.
    again = run_scenario(exported, workdir=tmp_path / "b").assert_ok()
    assert compare_calls(run, again) == []
    with again.open_store() as store:
        assert store.history(again.session_id)[0]["content"].endswith("\n\n" + scenario["turns"][0]["user"])
        assert export_scenario(store, again.session_id)["turns"][0]["user"] == scenario["turns"][0]["user"]


# --- attachment kinds from plugins' testing helpers (`assistant.testing` entry points) --------


def _helper_entry_points(monkeypatch, **objects):
    """Installs `objects` as the `assistant.testing` entry points, as a package's metadata would."""
    import importlib.metadata
    import sys
    import types

    module = types.ModuleType("fake_plugin_testing")
    vars(module).update(objects)
    monkeypatch.setitem(sys.modules, "fake_plugin_testing", module)
    eps = importlib.metadata.EntryPoints(
        importlib.metadata.EntryPoint(name, f"fake_plugin_testing:{name}", "assistant.testing") for name in objects
    )
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: eps.select(group=group) if group == "assistant.testing" else real(group=group))


def _one_attachment_scenario(spec: dict) -> dict:
    return {"format": "assistant-scenario", "version": 1, "plugins": ["utilities"],
            "turns": [{"user": "what is in this?", "attachments": [spec], "replies": ["a note"]}]}


def test_a_plugin_adds_a_scenario_attachment_kind_through_its_testing_entry_point(monkeypatch, tmp_path):
    from assistant.plugin_api.contract import ScenarioAttachment

    written = []

    def write(path, value):
        written.append(value)
        path.write_text(f"NOTE: {value}", encoding="utf-8")

    _helper_entry_points(monkeypatch, note=ScenarioAttachment(write, missing=lambda: ["a pen (apt-get install pen)"]))
    scenario = _one_attachment_scenario({"name": "n.txt", "note": "buy pears"})
    assert missing_requirements(load_scenario(scenario)) == ["a pen (apt-get install pen)"]
    run = run_scenario(scenario, workdir=tmp_path).assert_ok()
    assert written == ["buy pears"]
    assert "NOTE: buy pears" in json.dumps(run.open_store().messages(run.session_id))  # the file reached the turn


def test_an_attachment_kind_no_helper_offers_says_where_kinds_come_from(monkeypatch, tmp_path):
    _helper_entry_points(monkeypatch)
    with pytest.raises(ScenarioError, match=r"memo.wav: give one of path, base64, text, image .*'assistant.testing' entry points.*pip install -e \."):
        run_scenario(_one_attachment_scenario({"name": "memo.wav", "speech": "hello"}), workdir=tmp_path)


def test_a_testing_entry_point_must_be_a_scenario_attachment(monkeypatch, tmp_path):
    _helper_entry_points(monkeypatch, note=lambda path, value: None)
    with pytest.raises(TypeError, match="note = fake_plugin_testing:note .* must be a ScenarioAttachment"):
        missing_requirements(load_scenario(_one_attachment_scenario({"name": "n.txt", "note": "x"})))


def test_the_speech_plugin_offers_speech_attachments_through_the_entry_point():
    from assistant.testing.helpers import scenario_attachments

    assert "speech" in scenario_attachments(), "reinstall the package (pip install -e .) to register its entry points"
