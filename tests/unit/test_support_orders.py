"""The orders plugin: the shipped schema and sample data, identity checks that reveal nothing, and
their limits (per conversation, per order, across processes)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading

import pytest

from assistant.errors import PluginError
from assistant.plugin_api.tools import ArgumentError
from assistant.testing import assert_conforms, make_plugin
from assistant_plugins.support.identity import REFUSAL, mask_email, normalize_email, normalize_order_id
from assistant_plugins.support.orders import Orders, build_sample_database
from assistant_plugins.support.storage import create_database_once

from .test_support_helpers import Conversation, call, plugin


def test_follows_the_plugin_contract():
    assert_conforms(Orders)
    assert_conforms(Orders, settings={"database": "/srv/orders.sqlite", "max_attempts": 5, "return_days": 14})


def test_the_demo_database_is_created_once_from_the_shipped_files(tmp_path):
    orders = plugin(Orders, tmp_path)
    db = orders.data_dir / "orders.sqlite"
    assert not db.exists()
    assert call(orders, "lookup", order_id="A1001", email="ana.lima@example.com")["verified"] is True
    conn = sqlite3.connect(db)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("customers", "orders", "order_items", "shipments", "shipment_events", "refunds", "carriers")}
    statuses = {r[0] for r in conn.execute("SELECT DISTINCT status FROM orders")}
    conn.close()
    assert counts == {"customers": 5, "orders": 10, "order_items": 16, "shipments": 6, "shipment_events": 16,
                      "refunds": 2, "carriers": 2}
    assert statuses == {"pending", "processing", "packed", "shipped", "delivered", "cancelled", "returned"}
    # No temp files left beside it; a second plugin on the same folder reuses the file.
    assert sorted(p.name for p in orders.data_dir.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "identity-checks.sqlite", "orders.sqlite"]
    inode = db.stat().st_ino
    call(plugin(Orders, tmp_path), "lookup", order_id="A1002", email="ana.lima@example.com")
    assert db.stat().st_ino == inode


def test_sample_totals_match_their_items(tmp_path):
    create_database_once(tmp_path / "o.sqlite", build_sample_database)
    conn = sqlite3.connect(tmp_path / "o.sqlite")
    bad = conn.execute(
        "SELECT o.id FROM orders o JOIN order_items i ON i.order_id = o.id GROUP BY o.id"
        " HAVING sum(i.quantity * i.unit_price_cents) != o.total_cents"
    ).fetchall()
    assert bad == []


def test_creating_the_database_concurrently_makes_exactly_one(tmp_path):
    target = tmp_path / "o.sqlite"
    results, barrier = [], threading.Barrier(4)

    def build(conn):
        barrier.wait(timeout=10)  # every builder is inside build() before any finishes
        build_sample_database(conn)

    threads = [threading.Thread(target=lambda: results.append(create_database_once(target, build))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, False, True]
    assert sqlite3.connect(target).execute("SELECT count(*) FROM orders").fetchone()[0] == 10
    assert [p.name for p in tmp_path.iterdir()] == ["o.sqlite"]


def test_a_failed_build_leaves_nothing(tmp_path):
    def broken(conn):
        conn.execute("CREATE TABLE t (x)")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        create_database_once(tmp_path / "o.sqlite", broken)
    assert list(tmp_path.iterdir()) == []


def test_lookup_reveals_the_order(tmp_path):
    result = call(plugin(Orders, tmp_path), "lookup", order_id=" #a1001 ", email="  Ana.Lima@Example.COM ")
    assert result["verified"] and result["order_id"] == "A1001" and result["status"] == "delivered"
    assert result["customer_first_name"] == "Ana" and result["total"] == "54.50 EUR"
    assert [i["name"] for i in result["items"]][0] == "Ceramic pour-over dripper, white"
    assert result["ship_to"] == "A. Lima, 10115 Berlin, DE"  # never the street
    (shipment,) = result["shipments"]
    assert shipment["tracking_url"] == "https://track.parcelnet.example/PN40019921DE" and "delivered" in shipment
    # Delivered about six days ago (the sample dates follow the database's creation): 30 - 6 left.
    assert re.fullmatch(r"can be returned until \d{4}-\d\d-\d\d \((24|25) days left\)", result["returns"]), result["returns"]


def test_return_window_closed_refunds_and_unshipped_orders(tmp_path):
    orders = plugin(Orders, tmp_path)
    old = call(orders, "lookup", order_id="A1004", email="ben.okafor@example.org")
    assert old["returns"].startswith("the 30-day return period ended on")
    cancelled = call(orders, "lookup", order_id="A1005", email="chloe.martin@example.net")
    assert cancelled["refunds"] == [{"amount": "24.00 EUR", "status": "issued", "reason": "Order cancelled before dispatch",
                                     "issued": cancelled["refunds"][0]["issued"]}]
    assert "shipments" not in cancelled and "returns" not in cancelled
    packed = call(orders, "lookup", order_id="A1006", email="dmitri.volkov@example.com", tracking=True)
    assert "shipments" not in packed and packed["status_meaning"].startswith("Packed")
    short = call(plugin(Orders, tmp_path / "b", {"return_days": 3}), "lookup", order_id="A1001", email="ana.lima@example.com")
    assert short["returns"].startswith("the 3-day return period ended")


def test_tracking_lists_every_event(tmp_path):
    orders = plugin(Orders, tmp_path)
    brief = call(orders, "lookup", order_id="A1009", email="chloe.martin@example.net")
    assert "events" not in brief["shipments"][0] and "Held at the depot" in brief["shipments"][0]["latest_event"]
    result = call(orders, "lookup", order_id="A1009", email="chloe.martin@example.net", tracking=True)
    (shipment,) = result["shipments"]
    assert len(shipment["events"]) == 4 and "latest_event" not in shipment
    assert [e.split(": ", 1)[1] for e in shipment["events"]][-2:] == [
        "Delivery attempt failed: nobody at the address", shipment["events"][-1].split(": ", 1)[1]]
    assert "Held at the depot" in shipment["events"][-1] and shipment["estimated_delivery"]


def test_the_refusal_is_the_same_whichever_part_is_wrong(tmp_path):
    cases = {
        "wrong email": ("A1001", "ben.okafor@example.org"),  # a real customer, not this order's
        "unknown order": ("A9999", "ana.lima@example.com"),
        "both wrong": ("Z1234", "nobody@example.net"),
        "another customer's order": ("A1003", "ana.lima@example.com"),
    }
    answers = {}
    for label, (oid, email) in cases.items():
        orders = plugin(Orders, tmp_path / label.replace(" ", "-"))
        answers[label] = call(orders, "lookup", order_id=oid, email=email)
    first = answers["wrong email"]
    assert first == {"verified": False, "attempts_left": 2, "message": REFUSAL + " 2 attempt(s) left."}
    assert all(a == first for a in answers.values()), answers
    with_tracking = call(plugin(Orders, tmp_path / "tracking"), "lookup", order_id="A1001", email="x@example.org", tracking=True)
    assert with_tracking == first


def test_malformed_input_is_an_error_and_not_an_attempt(tmp_path):
    orders = plugin(Orders, tmp_path)
    with pytest.raises(ValueError, match="not an email address"):
        call(orders, "lookup", order_id="A1001", email="ana.lima")
    with pytest.raises(ValueError, match="not an order number"):
        call(orders, "lookup", order_id="A 10 01; DROP TABLE", email="ana.lima@example.com")
    with pytest.raises(ArgumentError, match="email"):
        call(orders, "lookup", order_id="A1001")
    assert call(orders, "lookup", order_id="A1001", email="x@example.org")["attempts_left"] == 2


def test_normalizers():
    assert normalize_order_id("#a-1001") == "A-1001" and normalize_email("<Ana@Example.com>") == "ana@example.com"
    assert mask_email("ana.lima@example.com") == "a***@example.com"
    for bad in ("", "ab", "A" * 30, "A10 01!"):
        with pytest.raises(ValueError):
            normalize_order_id(bad)


def test_three_failures_lock_the_conversation_even_for_the_right_pair(tmp_path):
    orders = plugin(Orders, tmp_path)
    chat = Conversation(tmp_path)
    ctx = chat.ctx(orders)
    lefts = [call(orders, "lookup", ctx, order_id="A1001", email=f"guess{i}@example.com").get("attempts_left") for i in range(3)]
    assert lefts == [2, 1, 0]
    locked = call(orders, "lookup", ctx, order_id="A1001", email="ana.lima@example.com")
    assert locked["locked"] is True and "handoff_request" in locked["message"] and "Ceramic" not in str(locked)
    assert "customer" not in chat.marks()
    # The limit is in SQLite: a new plugin instance (a new `assistant ask --session` process) still refuses.
    again = call(plugin(Orders, tmp_path), "lookup", chat.ctx(orders), order_id="A1001", email="ana.lima@example.com")
    assert again["locked"] is True
    # Another conversation is not locked.
    other = Conversation(tmp_path, chat.store)
    assert call(orders, "lookup", other.ctx(orders), order_id="A1001", email="ana.lima@example.com")["verified"] is True


def test_failed_checks_per_order_are_limited_across_conversations(tmp_path):
    orders = plugin(Orders, tmp_path, {"max_attempts_per_order": 2})
    store = Conversation(tmp_path).store
    for i in range(2):
        chat = Conversation(tmp_path, store)
        assert call(orders, "lookup", chat.ctx(orders), order_id="A1002", email=f"x{i}@example.com")["verified"] is False
    fresh = Conversation(tmp_path, store)
    locked = call(orders, "lookup", fresh.ctx(orders), order_id="A1002", email="ana.lima@example.com")
    assert locked["locked"] is True and "temporarily locked" in locked["message"]
    # The same lock for an order number that does not exist: being locked reveals nothing.
    for i in range(2):
        call(orders, "lookup", Conversation(tmp_path, store).ctx(orders), order_id="B7777", email=f"y{i}@example.com")
    ghost = call(orders, "lookup", Conversation(tmp_path, store).ctx(orders), order_id="B7777", email="z@example.com")
    assert ghost == locked
    # Other orders are unaffected.
    assert call(orders, "lookup", fresh.ctx(orders), order_id="A1001", email="ana.lima@example.com")["verified"] is True


def test_success_marks_the_session_and_the_attempt_log_holds_no_addresses(tmp_path):
    orders = plugin(Orders, tmp_path)
    chat = Conversation(tmp_path)
    call(orders, "lookup", chat.ctx(orders), order_id="A1001", email="wrong@example.com")
    call(orders, "lookup", chat.ctx(orders), order_id="a1001", email="Ana.Lima@example.com")
    assert chat.marks() == {"customer": "ana.lima@example.com", "order": "A1001"}
    rows = sqlite3.connect(orders.data_dir / "identity-checks.sqlite").execute(
        "SELECT session, subject, email_sha, ok FROM attempts ORDER BY id").fetchall()
    assert [(r[0], r[1], r[3]) for r in rows] == [(chat.session_id, "A1001", 0), (chat.session_id, "A1001", 1)]
    dump = (orders.data_dir / "identity-checks.sqlite").read_bytes()
    assert b"example.com" not in dump and len(rows[0][2]) == 16


def test_a_teams_own_database_is_read_only(tmp_path):
    own = tmp_path / "shop" / "orders.sqlite"
    create_database_once(own, build_sample_database)
    orders = plugin(Orders, tmp_path, {"database": str(own)})
    assert call(orders, "lookup", order_id="A1003", email="ben.okafor@example.org")["status"] == "processing"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        orders.book._rows("DELETE FROM orders")
    assert not (orders.data_dir / "orders.sqlite").exists()


def test_a_missing_database_is_a_clear_error(tmp_path):
    with pytest.raises(PluginError, match="does not exist"):
        call(plugin(Orders, tmp_path, {"database": str(tmp_path / "nope.sqlite")}), "lookup", order_id="A1", email="a@b.cd")
    with pytest.raises(PluginError, match="demo data"):
        call(plugin(Orders, tmp_path / "b", {"sample_data": False}), "lookup", order_id="A1001", email="a@b.cd")


def test_settings_are_validated():
    with pytest.raises(PluginError, match="max_attempts"):
        make_plugin(Orders, {"max_attempts": 0})
    with pytest.raises(PluginError, match="databse"):
        make_plugin(Orders, {"databse": "typo.sqlite"})


def test_the_pack_ships_a_support_system_prompt(tmp_path):
    """[dialogue] system_prompt = "support_agent": rendered like the default one (StrictUndefined)."""
    from assistant.dialogue.prompts import default_library
    from assistant.plugin_api.registry import load_plugins
    from assistant_plugins.support import FAQ, Handoff, Tickets

    registry = load_plugins(include_entry_points=False, extra=[Orders, FAQ, Tickets, Handoff], data_root=tmp_path)
    assert len(set(registry.prompt_dirs())) == 1
    library = default_library(tmp_path / "no-user-prompts", registry.prompt_dirs())
    tools = [{"name": s.name, "description": s.description, "parameters": json.dumps(s.schema)} for s in registry.tools.values()]
    text = library.render("support_agent", date="2026-11-23", tools=tools, attachments_note="", text_tool_calls=True)
    assert "Today is 2026-11-23" in text and "orders_lookup" in text and "<tool_call>" in text
    assert "never hint which part was wrong" in text and "[faq.md § Returns]" in text
    assert sorted(registry.tools) == ["faq_answer", "handoff_request", "orders_lookup", "tickets_create", "tickets_get",
                                      "tickets_update"]
