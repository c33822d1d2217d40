"""The tickets plugin: tickets persisted in SQLite (WAL, migrations), evidence from the
conversation's files, who may see a ticket, and side effects behind the approval policy."""

from __future__ import annotations

import sqlite3

import pytest

from assistant.events import ApprovalDecided, ToolCallFinished
from assistant.plugin_api import Risk
from assistant.testing import assert_conforms, call as scripted_call, find_tool, make_dialogue, run_turn
from assistant_plugins.support.orders import Orders
from assistant_plugins.support.tickets import TICKET_REFUSAL, Tickets, parse_ticket_ref

from .test_support_helpers import Conversation, call, plugin

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")  # a PNG header is enough here


def test_follows_the_plugin_contract_and_declares_its_side_effects(tmp_path):
    assert_conforms(Tickets)
    assert_conforms(Tickets, settings={"database": "/srv/t.sqlite", "copy_evidence": False})
    t = plugin(Tickets, tmp_path)
    risks = {name: find_tool(t, name).risk for name in ("create", "update", "get")}
    assert risks == {"create": Risk.SIDE_EFFECTS, "update": Risk.SIDE_EFFECTS, "get": Risk.READ_ONLY}


def test_ticket_numbers():
    assert [parse_ticket_ref(r) for r in ("T-1001", "t1001", "#1001", "1001", " T - 1001 ")] == [1001] * 5
    for bad in ("", "ticket", "T-", "1001a"):
        with pytest.raises(ValueError, match="T-1001"):
            parse_ticket_ref(bad)


def test_create_persists_a_ticket_with_the_conversations_files(tmp_path):
    tickets = plugin(Tickets, tmp_path)
    chat = Conversation(tmp_path)
    chat.say("Here is the memo", files=[(b"RIFF....WAVEfmt voice", "audio/wav", "memo.wav")])
    chat.say("And the photo", inline_images=[PNG])
    made = call(tickets, "create", chat.ctx(tickets), subject="Broken teapot", category="damaged_item",
                description="Arrived broken.", email="Emma.Schulz@example.de", order_id="#a1007")
    assert made["ticket"] == "T-1001" and made["status"] == "open"
    assert made["evidence"] == ["memo.wav (audio/wav, 21 bytes)", f"image (image/png, {len(PNG)} bytes)"]
    assert "by email to emma.schulz@example.de" in made["message"]
    assert chat.marks() == {"ticket": "T-1001"}
    db = sqlite3.connect(tickets.data_dir / "tickets.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    row = db.execute("SELECT email, order_id, identity_verified, session_id, priority FROM tickets").fetchone()
    assert row == ("emma.schulz@example.de", "A1007", 0, chat.session_id, "normal")
    evidence = db.execute("SELECT kind, filename, note, stored_path FROM ticket_evidence ORDER BY added_at").fetchall()
    assert [(e[0], e[1], e[2]) for e in evidence] == [("audio", "memo.wav", "Here is the memo"), ("image", "", "And the photo")]
    for _, _, _, stored in evidence:  # copies beside the database survive deleting the conversation
        assert (tickets.data_dir / "evidence").as_posix() in stored
    chat.store.delete(chat.session_id)
    assert all(open(e[3], "rb").read() for e in evidence)


def test_the_second_ticket_counts_up_and_a_retry_makes_no_duplicate(tmp_path):
    tickets = plugin(Tickets, tmp_path)
    chat = Conversation(tmp_path)
    args = dict(subject="Where is my parcel", category="delivery", description="Not arrived.")
    first = call(tickets, "create", chat.ctx(tickets), **args)
    assert first["ticket"] == "T-1001" and "in this conversation" in first["message"]  # no email: reply here
    again = call(tickets, "create", chat.ctx(tickets), **args)
    assert again["ticket"] == "T-1001" and again["message"] == "Ticket T-1001 already exists."
    second = call(tickets, "create", chat.ctx(tickets), **{**args, "subject": "Another problem"})
    assert second["ticket"] == "T-1002"
    assert sqlite3.connect(tickets.data_dir / "tickets.sqlite").execute("SELECT count(*) FROM tickets").fetchone()[0] == 2


def test_create_checks_its_input(tmp_path):
    tickets = plugin(Tickets, tmp_path)
    with pytest.raises(ValueError, match="not an email address"):
        call(tickets, "create", subject="x", category="other", description="y", email="emma at example")
    with pytest.raises(ValueError, match="subject is empty"):
        call(tickets, "create", subject="  ", category="other", description="y")
    with pytest.raises(ValueError, match="too long"):
        call(tickets, "create", subject="x" * 201, category="other", description="y")
    from assistant.plugin_api.tools import ArgumentError

    with pytest.raises(ArgumentError, match="category"):
        call(tickets, "create", subject="x", category="complaint-about-life", description="y")


def test_a_verified_customer_is_the_tickets_contact_and_can_list_their_open_tickets(tmp_path):
    orders, tickets = plugin(Orders, tmp_path), plugin(Tickets, tmp_path)
    chat = Conversation(tmp_path)
    refused = call(tickets, "get", chat.ctx(tickets))  # no ticket number: the customer's tickets
    assert refused["verified"] is False and "orders_lookup" in refused["message"]
    call(orders, "lookup", chat.ctx(orders), order_id="A1007", email="emma.schulz@example.de")
    made = call(tickets, "create", chat.ctx(tickets), subject="Lid cracked", category="damaged_item", description="Lid.")
    assert "by email to emma.schulz@example.de" in made["message"]
    db = sqlite3.connect(tickets.data_dir / "tickets.sqlite")
    assert db.execute("SELECT email, identity_verified FROM tickets").fetchone() == ("emma.schulz@example.de", 1)
    # Someone else's ticket in another conversation is not listed.
    other = Conversation(tmp_path, chat.store)
    call(tickets, "create", other.ctx(tickets), subject="Mine", category="other", description="x", email="ben.okafor@example.org")
    listed = call(tickets, "get", chat.ctx(tickets), ticket_id=" ")
    assert listed["verified"] is True and [t["ticket"] for t in listed["tickets"]] == ["T-1001"]
    call(tickets, "update", chat.ctx(tickets), ticket_id="T-1001", status="solved")
    assert call(tickets, "get", chat.ctx(tickets))["tickets"] == []  # open tickets only


def test_who_may_see_a_ticket(tmp_path):
    tickets = plugin(Tickets, tmp_path)
    owner = Conversation(tmp_path)
    call(tickets, "create", owner.ctx(tickets), subject="Refund missing", category="refund", description="x",
         email="ben.okafor@example.org")
    assert call(tickets, "get", owner.ctx(tickets), ticket_id="T-1001")["found"] is True  # the conversation that opened it
    stranger = Conversation(tmp_path, owner.store)
    with pytest.raises(ValueError, match="give the email address"):
        call(tickets, "get", stranger.ctx(tickets), ticket_id="T-1001")
    wrong = call(tickets, "get", stranger.ctx(tickets), ticket_id="T-1001", email="ana.lima@example.com")
    unknown = call(tickets, "get", Conversation(tmp_path, owner.store).ctx(tickets), ticket_id="T-4242",
                   email="ben.okafor@example.org")
    assert wrong == unknown == {"found": False, "attempts_left": 2, "message": TICKET_REFUSAL + " 2 attempt(s) left."}
    seen = call(tickets, "get", stranger.ctx(tickets), ticket_id="t1001", email="Ben.Okafor@example.org")
    assert seen["found"] and seen["subject"] == "Refund missing" and seen["history"][0].endswith("created: refund, normal: Refund missing")
    # Guessing is limited like order lookups.
    guesser = Conversation(tmp_path, owner.store)
    for i in range(3):
        call(tickets, "get", guesser.ctx(tickets), ticket_id="T-1001", email=f"g{i}@example.com")
    locked = call(tickets, "get", guesser.ctx(tickets), ticket_id="T-1001", email="ben.okafor@example.org")
    assert locked["locked"] is True and "Refund" not in str(locked)
    assert call(tickets, "update", guesser.ctx(tickets), ticket_id="T-1001", note="x")["locked"] is True
    assert "note" not in str(call(tickets, "get", owner.ctx(tickets), ticket_id="T-1001")["history"])


def test_update_records_changes_and_new_evidence(tmp_path):
    tickets = plugin(Tickets, tmp_path)
    chat = Conversation(tmp_path)
    call(tickets, "create", chat.ctx(tickets), subject="Grinder noisy", category="warranty", description="Squeaks.")
    with pytest.raises(ValueError, match="nothing to update"):
        call(tickets, "update", chat.ctx(tickets), ticket_id="T-1001")
    chat.say("A video of the noise", files=[(b"\x1aE\xdf\xa3 webm", "audio/webm", "noise.webm")])
    done = call(tickets, "update", chat.ctx(tickets), ticket_id="T-1001", note="Started after a month.", priority="high",
                status="pending_customer")
    assert done["changes"] == ["note added", "status open -> pending_customer", "priority normal -> high",
                               "evidence added: noise.webm (audio/webm, 9 bytes)"]
    got = call(tickets, "get", chat.ctx(tickets), ticket_id="T-1001")
    assert got["status"] == "pending_customer" and got["priority"] == "high" and len(got["evidence"]) == 1
    assert [h.split(" UTC ")[1].split(":")[0] for h in got["history"]] == ["created", "note", "status", "priority", "evidence"]


def test_creating_needs_approval_in_a_dialogue(tmp_path):
    create = scripted_call("tickets_create", {"subject": "S", "category": "other", "description": "D"})
    denied = make_dialogue(Tickets, replies=[create, "Could not."], state_dir=tmp_path / "a")
    events = run_turn(denied, "open a ticket")
    assert [e.decision for e in events if isinstance(e, ApprovalDecided)] == ["denied-by-policy"]
    assert not (tmp_path / "a" / "plugins" / "tickets" / "tickets.sqlite").exists()

    async def person(request):
        return "approve"

    approved = make_dialogue(Tickets, replies=[create, "Done."], state_dir=tmp_path / "b", approver=person)
    events = run_turn(approved, "open a ticket")
    assert [e.decision for e in events if isinstance(e, ApprovalDecided)] == ["approved"]
    assert '"ticket": "T-1001"' in [e for e in events if isinstance(e, ToolCallFinished)][0].result
