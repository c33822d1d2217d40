"""The handoff plugin: a complete packet in the queue (folder, table or both), the customer's
message, the session mark, follow-ups, and the queue API a support team's tooling uses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from assistant.plugin_api import Risk
from assistant.testing import assert_conforms, find_tool
from assistant_plugins.support.handoff import Handoff, HandoffQueue
from assistant_plugins.support.orders import Orders
from assistant_plugins.support.tickets import Tickets

from .test_support_helpers import Conversation, call, plugin

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def packets(handoff) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((handoff.data_dir / "queue").glob("*.json"))]


def test_follows_the_plugin_contract(tmp_path):
    assert_conforms(Handoff)
    assert_conforms(Handoff, settings={"queue": "folder", "queue_dir": "/srv/q", "response_time": "two hours"})
    assert find_tool(plugin(Handoff, tmp_path), "request").risk is Risk.SIDE_EFFECTS


def test_the_packet_has_everything_the_agent_needs(tmp_path):
    orders, tickets, handoff = plugin(Orders, tmp_path), plugin(Tickets, tmp_path), plugin(Handoff, tmp_path)
    chat = Conversation(tmp_path)
    chat.say("My teapot broke, order A1007", files=[(b"RIFF voice", "audio/wav", "memo.wav")], inline_images=[PNG])
    chat.store.add_message(chat.session_id, "assistant", "Let me check.")
    call(orders, "lookup", chat.ctx(orders), order_id="A1007", email="emma.schulz@example.de")
    call(tickets, "create", chat.ctx(tickets), subject="Teapot broke", category="damaged_item", description="Broken.")
    # The dialogue records tool calls in the audit log; here we record them as it would.
    for name, args in (("orders_lookup", {"order_id": "A1007", "email": "emma.schulz@example.de"}),):
        chat.store.record_tool_call(chat.session_id, message_id=None, call_id="c1", name=name, arguments=json.dumps(args),
                                    result=json.dumps(call(orders, "lookup", chat.ctx(orders), **args)), error=None,
                                    risk="read_only", decision="auto", duration_s=0.1)
    result = call(handoff, "request", chat.ctx(handoff), summary="Broken teapot; wants a refund.",
                  reason="refund_or_compensation", urgency="urgent")
    ref = result["reference"]
    assert result["queued"] is True and result["needs_contact"] is False
    assert ref in result["message_for_customer"] and "e***@example.de" in result["message_for_customer"]
    assert "the files you sent" in result["message_for_customer"] and "one business day" in result["message_for_customer"]
    assert chat.marks()["handed_off"] == ref and chat.marks()["ticket"] == "T-1001"

    (packet,) = packets(handoff)
    assert packet["reference"] == ref and packet["session_id"] == chat.session_id and packet["urgency"] == "urgent"
    assert packet["customer"] == {"email": "emma.schulz@example.de", "verified": True, "name": "Emma"}
    assert packet["order"]["id"] == "A1007" and packet["order"]["verified"] is True
    assert packet["order"]["last_lookup"]["status"] == "delivered"
    assert [(a["kind"], a["filename"]) for a in packet["attachments"]] == [("audio", "memo.wav"), ("image", "")]
    for a in packet["attachments"]:  # copied beside the packet
        assert (handoff.data_dir / "queue" / a["file"]).read_bytes() in (b"RIFF voice", PNG)
    assert [m["role"] for m in packet["transcript"]] == ["user", "assistant"]
    assert packet["transcript"][0]["files"] == 2
    assert [e["tool"] for e in packet["evidence"]] == ["orders_lookup"]
    row = sqlite3.connect(handoff.data_dir / "handoffs.sqlite").execute(
        "SELECT state, urgency, email, order_id, session_id FROM handoffs").fetchone()
    assert row == ("queued", "urgent", "emma.schulz@example.de", "A1007", chat.session_id)
    leftovers = [p.name for p in (handoff.data_dir / "queue").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_without_an_email_the_customer_is_asked_for_one_and_a_follow_up_links_to_the_first(tmp_path):
    handoff = plugin(Handoff, tmp_path)
    chat = Conversation(tmp_path)
    first = call(handoff, "request", chat.ctx(handoff), summary="Wants a person.", reason="customer_asked")
    assert first["needs_contact"] is True and "please tell me an email address" in first["message_for_customer"]
    second = call(handoff, "request", chat.ctx(handoff), summary="Email given.", reason="customer_asked",
                  email="Someone@Example.org")
    assert second["needs_contact"] is False and second["reference"] != first["reference"]
    a, b = sorted(packets(handoff), key=lambda p: p["created_at"])
    assert a["follows"] is None and b["follows"] == first["reference"]
    assert b["customer"] == {"email": "someone@example.org", "verified": False, "name": None}
    assert chat.marks()["handed_off"] == second["reference"]


def test_a_malformed_email_never_stops_a_hand_off(tmp_path):
    handoff = plugin(Handoff, tmp_path)
    result = call(handoff, "request", summary="Needs help.", reason="other", email="call me on 0170 555")
    (packet,) = packets(handoff)
    assert result["needs_contact"] is True and packet["session_id"] is None and packet["transcript"] == []
    assert packet["customer"] == {"email": None, "verified": False, "name": None, "email_as_given": "call me on 0170 555"}


@pytest.mark.parametrize("queue", ["folder", "sqlite"])
def test_one_queue_only(tmp_path, queue):
    handoff = plugin(Handoff, tmp_path, {"queue": queue, "queue_dir": str(tmp_path / "shared-q")})
    call(handoff, "request", summary="x", reason="other")
    assert len(list((tmp_path / "shared-q").glob("*.json"))) == (queue == "folder")
    assert (handoff.data_dir / "handoffs.sqlite").exists() == (queue == "sqlite")


def test_empty_or_huge_summaries_never_stop_a_hand_off(tmp_path):
    handoff = plugin(Handoff, tmp_path)
    call(handoff, "request", summary=" ", reason="other")
    call(handoff, "request", summary="x" * 5000, reason="other")
    summaries = sorted((p["summary"] for p in packets(handoff)), key=len)
    assert summaries[0] == "(no summary given: read the transcript)"
    assert len(summaries[1]) == 4000 and summaries[1].endswith("…")


def test_status_and_the_queue_api(tmp_path):
    handoff = plugin(Handoff, tmp_path)
    chat = Conversation(tmp_path)
    ref = call(handoff, "request", chat.ctx(handoff), summary="x", reason="complaint")["reference"]
    assert handoff.status(ref, chat.session_id) == "queued"
    other = Conversation(tmp_path, chat.store)
    assert handoff.status(ref, other.session_id) is None  # another conversation's hand-off is not its business
    urgent = call(handoff, "request", other.ctx(handoff), summary="y", reason="safety", urgency="urgent")["reference"]
    queue = HandoffQueue(handoff.data_dir / "handoffs.sqlite")
    assert [r["reference"] for r in queue.list("queued")] == [urgent, ref]  # urgent first
    queue.set_state(ref, "claimed", assignee="maria")
    assert handoff.status(ref, chat.session_id) == "claimed"
    assert queue.get(ref)["assignee"] == "maria" and json.loads(queue.get(ref)["packet"])["reference"] == ref
    assert [r["reference"] for r in queue.list("claimed")] == [ref]
    with pytest.raises(ValueError, match="unknown state"):
        queue.set_state(ref, "lost")
    with pytest.raises(KeyError):
        queue.set_state("H-nope", "resolved")
    folder_only = plugin(Handoff, tmp_path / "f", {"queue": "folder"})
    ref2 = call(folder_only, "request", chat.ctx(folder_only), summary="z", reason="other")["reference"]
    assert folder_only.status(ref2, chat.session_id) == "queued" and folder_only.status(ref2, None) is None


def test_the_team_works_the_queue_from_a_terminal(tmp_path, capsys, monkeypatch):
    from assistant.settings import load_settings
    from assistant_plugins.support import queue_cli

    handoff = plugin(Handoff, tmp_path)
    chat = Conversation(tmp_path)
    ref = call(handoff, "request", chat.ctx(handoff), summary="Teapot broke; wants a refund.", reason="refund_or_compensation",
               email="emma.schulz@example.de")["reference"]
    # The queue is found through the assistant's settings: the state folder, or [plugins.handoff] database.
    settings = load_settings(overrides={"paths": {"state_dir": str(tmp_path)}}, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    db = handoff.data_dir / "handoffs.sqlite"
    assert queue_cli.queue_path(settings) == db
    moved = load_settings(overrides={"paths": {"state_dir": str(tmp_path)}, "plugins": {"handoff": {"database": "/q.sqlite"}}},
                          environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert queue_cli.queue_path(moved) == Path("/q.sqlite")

    assert queue_cli.main(["list"], path=db) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(ref) and "queued" in line and "emma.schulz@example.de" in line and "Teapot broke" in line
    assert queue_cli.main(["claim", ref, "--by", "maria"], path=db) == 0
    assert queue_cli.main(["list", "--state", "claimed"], path=db) == 0
    assert "claimed (maria)" in capsys.readouterr().out
    assert queue_cli.main(["show", ref], path=db) == 0
    assert json.loads(capsys.readouterr().out)["reference"] == ref
    assert queue_cli.main(["resolve", ref], path=db) == 0
    assert HandoffQueue(db).get(ref)["state"] == "resolved"
    assert queue_cli.main(["show", "H-nope"], path=db) == 1
    assert queue_cli.main(["list"], path=tmp_path / "nothing.sqlite") == 0
