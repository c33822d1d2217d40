"""The conversation store: schema migrations, messages, attachments, export, crashes, the CLI."""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from PIL import Image

from assistant import errors
from assistant.events import Timings, Usage
from assistant.sessions import (
    SessionDatabaseTooNew,
    SessionNotFound,
    SessionStore,
    SessionStoreError,
    export_json,
    export_markdown,
)
from assistant.sessions import cli as sessions_cli
from assistant.sessions import store as store_module
from assistant.sessions.migrations import MIGRATIONS, split_statements
from assistant.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    """A controllable time.time for ordering tests."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def tick(self, s=1.0):
        self.now += s


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = SessionStore(tmp_path / "state" / "sessions.db", tmp_path / "state" / "attachments", clock=clock)
    yield s
    s.close()


def png_bytes(size=(8, 6), color=(200, 10, 10)):
    img = Image.new("RGB", size, color)
    img.putpixel((1, 2), (0, 255, 0))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def data_uri(data, mime="image/png"):
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def raw(db_path):
    """A plain connection, to look at the database behind the store's back."""
    return sqlite3.connect(db_path, isolation_level=None)


def run_child(tmp_path, code, **popen):
    script = tmp_path / f"child_{abs(hash(code))}.py"
    script.write_text(textwrap.dedent(code))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env, text=True, **popen)


# --- schema and migrations ------------------------------------------------------------------


def test_fresh_database_is_migrated_to_the_latest_version(store):
    conn = raw(store.db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"sessions", "messages", "attachments", "message_attachments", "tool_calls", "marks"} <= tables
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.db_path.stat().st_mode & 0o077 == 0  # private conversations: owner-only file


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path, clock):
    db, att = tmp_path / "s.db", tmp_path / "att"
    with SessionStore(db, att, clock=clock) as s:
        sid = s.create_session(model="m", title="kept")
        s.add_message(sid, "user", "hello")
    with SessionStore(db, att, clock=clock) as s:
        assert s.get_session(sid).title == "kept"
        assert s.history(sid) == [{"role": "user", "content": "hello"}]
    assert raw(db).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_appended_migration_upgrades_an_existing_database(tmp_path, clock, monkeypatch):
    db, att = tmp_path / "s.db", tmp_path / "att"
    with SessionStore(db, att, clock=clock) as s:
        sid = s.create_session(title="old")
    extra = """
        ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX pinned ON sessions (pinned);
    """
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS + [extra])
    with SessionStore(db, att, clock=clock) as s:
        assert s.get_session(sid).title == "old"
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
    assert conn.execute("SELECT pinned FROM sessions").fetchone() == (0,)


def test_a_failing_migration_is_rolled_back_whole(tmp_path, clock, monkeypatch):
    db, att = tmp_path / "s.db", tmp_path / "att"
    SessionStore(db, att, clock=clock).close()
    broken = "CREATE TABLE half_done (a); INSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(store_module, "MIGRATIONS", MIGRATIONS + [broken])
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        SessionStore(db, att, clock=clock)
    conn = raw(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchone() is None


def test_database_from_a_newer_version_is_refused_clearly(tmp_path, clock):
    db, att = tmp_path / "s.db", tmp_path / "att"
    SessionStore(db, att, clock=clock).close()
    raw(db).execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    with pytest.raises(SessionDatabaseTooNew) as info:
        SessionStore(db, att, clock=clock)
    exc = info.value
    assert isinstance(exc, errors.UsageError) and exc.exit_code == errors.EXIT_USAGE
    assert f"schema version {len(MIGRATIONS) + 3}" in str(exc) and str(db) in str(exc)
    assert "upgrade" in exc.hint
    assert raw(db).execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 3  # left untouched


def test_a_file_that_is_not_a_database_gives_a_usage_error(tmp_path):
    db = tmp_path / "sessions.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SessionStoreError) as info:
        SessionStore(db, tmp_path / "att")
    assert "aside" in info.value.hint


def test_split_statements_respects_quotes_and_trigger_bodies():
    script = """
        CREATE TABLE t (a TEXT DEFAULT ';');
        CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET a = 'x;y'; DELETE FROM t WHERE 0; END;
        ;
        INSERT INTO t VALUES ('semi;colon');
    """
    parts = split_statements(script)
    assert len(parts) == 3
    assert parts[1].startswith("CREATE TRIGGER") and parts[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE x (a); SELECT 'unterminated")


def test_two_processes_opening_a_fresh_database_at_once_both_succeed(tmp_path):
    code = f"""
        from pathlib import Path
        from assistant.sessions import SessionStore
        s = SessionStore(Path({str(tmp_path / 'race.db')!r}), Path({str(tmp_path / 'att')!r}))
        s.create_session()
        print("ok")
    """
    procs = [run_child(tmp_path, code, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(4)]
    results = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    assert raw(tmp_path / "race.db").execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 4


# --- sessions, ids, resolution ----------------------------------------------------------------


def test_ids_are_time_based_and_sort_by_creation(store, clock):
    ids = []
    for _ in range(3):
        ids.append(store.create_session())
        clock.tick(61)
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)
    assert ids == sorted(ids)
    assert ids[0].startswith("20270115-")  # clock 1.8e9 is 2027-01-15 08:00:00 UTC
    same_second = {store.create_session() for _ in range(20)}
    assert len(same_second) == 20


def test_resolve_exact_prefix_last_and_errors(store, clock, monkeypatch):
    suffixes = iter(["aaa111", "aaa222", "aaa111", "ccc444", "bbb333"])
    monkeypatch.setattr(store_module.secrets, "token_hex", lambda n: next(suffixes))
    a = store.create_session()
    b = store.create_session()
    assert store.create_session() == "20270115-080000-ccc444"  # aaa111 again in the same second: redrawn
    clock.tick(3600)
    c = store.create_session()
    assert (a, b, c) == ("20270115-080000-aaa111", "20270115-080000-aaa222", "20270115-090000-bbb333")
    assert store.resolve(a) == a
    assert store.resolve("20270115-09") == c
    assert store.resolve("20270115-080000-aaa2") == b
    with pytest.raises(SessionNotFound) as info:
        store.resolve("20270115-080000-aaa")
    assert a in str(info.value) and b in str(info.value) and "more characters" in info.value.hint
    assert isinstance(info.value, errors.UsageError)
    with pytest.raises(SessionNotFound, match="no session id starts with") as info:
        store.resolve("1999")
    assert "sessions list" in info.value.hint
    with pytest.raises(SessionNotFound):
        store.resolve("")
    with pytest.raises(SessionNotFound):
        store.resolve("%")  # LIKE wildcards are taken literally
    with pytest.raises(SessionNotFound):
        store.resolve("2027011_")
    assert store.resolve("last") == c
    clock.tick()
    store.add_message(a, "user", "bump")
    assert store.resolve("last") == a


def test_resolve_last_with_no_sessions(store):
    with pytest.raises(SessionNotFound, match="no sessions yet"):
        store.resolve("last")


def test_list_sessions_newest_update_first_with_counts_marks_and_preview(store, clock):
    first = store.create_session(model="m1", title="First")
    clock.tick()
    second = store.create_session(model="m2")
    clock.tick()
    store.add_message(second, "system", "be brief")
    store.add_message(second, "user", "  What   is\nthe weather like on Mars today?")
    clock.tick()
    store.add_message(first, "user", "hi")
    store.mark(first, "handed_off", "ticket-12")
    rows = store.list_sessions()
    assert [r.id for r in rows] == [first, second]
    assert rows[0].message_count == 1 and rows[1].message_count == 2
    assert rows[0].marks == {"handed_off": "ticket-12"} and rows[1].marks == {}
    assert rows[0].model == "m1" and rows[0].title == "First"
    assert rows[1].preview == "What is the weather like on Mars today?"
    assert rows[0].updated_at > rows[0].created_at
    assert [r.id for r in store.list_sessions(limit=1)] == [first]


def test_rename_mark_unmark_bump_updated_at(store, clock):
    sid = store.create_session(title="a")
    created = store.get_session(sid).updated_at
    clock.tick()
    store.rename(sid, "b")
    assert store.get_session(sid).title == "b" and store.get_session(sid).updated_at == created + 1
    store.mark(sid, "k", "1")
    store.mark(sid, "k", "2")
    store.mark(sid, "other", "x")
    assert store.get_session(sid).marks == {"k": "2", "other": "x"}
    store.unmark(sid, "k")
    assert store.get_session(sid).marks == {"other": "x"}
    for call in (store.rename, store.mark, store.unmark, store.get_session, store.delete, store.tool_calls):
        args = {"rename": 2, "mark": 3, "unmark": 2}.get(call.__name__, 1)
        with pytest.raises(SessionNotFound):
            call(*["nope", "k", "v"][:args])


# --- messages ------------------------------------------------------------------------------------


def test_history_round_trips_an_openai_conversation(store):
    sid = store.create_session()
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}
    convo = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Weather in Oslo? Ünïcode ✓"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": '{"temp": -3}', "tool_call_id": "call_1", "name": "weather"},
        {"role": "assistant", "content": [{"type": "text", "text": "It is -3 °C."}]},
    ]
    for m in convo:
        store.add_message(sid, m["role"], m["content"], **{k: v for k, v in m.items() if k not in ("role", "content")})
    assert store.history(sid) == convo


def test_messages_are_full_records(store, clock):
    sid = store.create_session()
    mid = store.add_message(
        sid, "assistant", "ok", usage=Usage(10, 5), timings=Timings(time_to_first_token_s=0.25, total_s=1.5)
    )
    clock.tick()
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    mid2 = store.add_message(sid, "user", "again", usage=usage)
    msgs = store.messages(sid)
    assert [m["id"] for m in msgs] == [mid, mid2] and mid2 > mid
    first = msgs[0]
    assert first["usage"] == {"prompt_tokens": 10, "completion_tokens": 5}
    assert first["timings"] == {"time_to_first_token_s": 0.25, "total_s": 1.5}
    assert first["created_at"] == clock.now - 1 and msgs[1]["created_at"] == clock.now
    assert first["attachments"] == [] and first["tool_calls"] is None
    totals = store.usage_totals(sid)
    assert totals["prompt_tokens"] == 11 and totals["completion_tokens"] == 7 and totals["total_tokens"] == 18
    assert totals["messages"] == 2 and totals["model_calls"] == 2 and totals["total_s"] == 1.5


def test_add_message_rejects_bad_input(store):
    sid = store.create_session()
    with pytest.raises(SessionNotFound):
        store.add_message("nope", "user", "hi")
    with pytest.raises(ValueError, match="role"):
        store.add_message(sid, "robot", "hi")
    with pytest.raises(ValueError, match="unknown attachment"):
        store.add_message(sid, "user", "hi", attachments=["0" * 64])
    with pytest.raises(ValueError, match="sha256"):
        store.add_message(sid, "user", "hi", attachments=["../../etc/passwd"])
    assert store.messages(sid) == []  # nothing half-written


def test_tool_calls_are_recorded(store):
    sid = store.create_session()
    mid = store.add_message(sid, "assistant", None, tool_calls=[])
    store.record_tool_call(
        sid, message_id=mid, call_id="c1", name="search", arguments='{"q": "x"}', result="found",
        error=None, risk="read_only", decision="auto", duration_s=0.5,
    )  # fmt: skip
    store.record_tool_call(
        sid, message_id=None, call_id="c2", name="delete_all", arguments="{}", result=None,
        error="denied by policy", risk="side_effects", decision="denied-by-policy", duration_s=None,
    )  # fmt: skip
    calls = store.tool_calls(sid)
    summary = [(c["call_id"], c["message_id"], c["decision"]) for c in calls]
    assert summary == [("c1", mid, "auto"), ("c2", None, "denied-by-policy")]
    assert calls[0]["result"] == "found" and calls[1]["error"] == "denied by policy"
    assert store.usage_totals(sid)["tool_calls"] == 2
    with pytest.raises(SessionNotFound):
        store.record_tool_call(
            "nope", message_id=None, call_id="c", name="n", arguments="{}", result=None, error=None,
            risk="read_only", decision="auto", duration_s=None,
        )  # fmt: skip


def test_writes_from_several_threads_on_one_store(store):
    sid = store.create_session()

    def work(n):
        for i in range(25):
            store.add_message(sid, "user", f"{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.messages(sid)) == 100


# --- attachments ------------------------------------------------------------------------------------


def test_attachments_are_content_addressed_and_deduplicated(store):
    data = b"%PDF-1.4 pretend document"
    sha = store.add_attachment(data, mime="application/pdf", filename="report.pdf")
    assert sha == hashlib.sha256(data).hexdigest()
    path = store.attachment_path(sha)
    assert path == store.attachments_dir / sha[:2] / sha and path.read_bytes() == data
    mtime = path.stat().st_mtime_ns
    assert store.add_attachment(data, mime="application/pdf", filename="copy.pdf") == sha
    assert path.stat().st_mtime_ns == mtime  # not written again
    assert list(store.attachments_dir.rglob("*")) == [path.parent, path]  # no temp files left
    assert raw(store.db_path).execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 1
    info = store.attachment_info(sha)
    assert info["filename"] == "report.pdf" and info["size"] == len(data) and info["mime"] == "application/pdf"
    with pytest.raises(ValueError):
        store.attachment_path("../secret")


def test_attachment_file_is_never_half_written(store, monkeypatch):
    data = b"x" * 100_000
    sha = hashlib.sha256(data).hexdigest()

    def crash(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(OSError, match="disk vanished"):
        store.add_attachment(data, mime="application/octet-stream")
    assert not store.attachment_path(sha).exists()
    assert store.attachment_info(sha) is None  # the row rolled back with the failed file
    assert not any(p.is_file() for p in store.attachments_dir.rglob("*"))  # the temp file was removed
    monkeypatch.undo()
    assert store.add_attachment(data, mime="application/octet-stream") == sha
    assert store.attachment_path(sha).read_bytes() == data


def test_a_missing_file_is_rewritten_when_the_same_bytes_come_again(store):
    sha = store.add_attachment(b"abc", mime="text/plain")
    store.attachment_path(sha).unlink()
    store.add_attachment(b"abc", mime="text/plain")
    assert store.attachment_path(sha).read_bytes() == b"abc"


def test_inline_images_are_stored_once_and_reinlined(store):
    png = png_bytes()
    uri = data_uri(png)
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": uri, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    sid = store.create_session()
    store.add_message(sid, "user", content)
    store.add_message(sid, "user", [{"type": "image_url", "image_url": {"url": uri}}])  # the same image again
    sha = hashlib.sha256(png).hexdigest()

    # The database holds a reference, not the base64.
    stored = raw(store.db_path).execute("SELECT content FROM messages ORDER BY id").fetchall()
    b64 = uri.split(",", 1)[1]
    assert all(b64 not in row[0] for row in stored)
    assert f"attachment:{sha}" in stored[0][0]
    msgs = store.messages(sid)
    assert msgs[0]["content"][1]["image_url"] == {"url": f"attachment:{sha}", "detail": "low"}
    assert msgs[0]["inline_attachments"] == [sha] and msgs[0]["attachments"] == []
    assert [p.name for p in store.attachments_dir.rglob("*") if p.is_file()] == [sha]

    history = store.history(sid)
    assert history[0] == {"role": "user", "content": content}
    url = history[1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert img.size == (8, 6) and img.getpixel((1, 2)) == (0, 255, 0)


def test_explicit_image_attachments_are_inlined_only_on_request(store):
    png = png_bytes(color=(1, 2, 3))
    image = store.add_attachment(png, mime="image/png", filename="chart.png")
    doc = store.add_attachment(b"plain notes", mime="text/plain", filename="notes.txt")
    sid = store.create_session()
    store.add_message(sid, "user", "Look at these", attachments=[image, doc])
    store.add_message(sid, "user", None, attachments=[image])
    store.add_message(sid, "tool", "made chart.png", tool_call_id="c1", attachments=[image])
    # By default history is what was sent: files kept beside a message were not part of it.
    assert [m["content"] for m in store.history(sid)] == ["Look at these", None, "made chart.png"]
    h = store.history(sid, inline_roles=("user",))
    assert h[0]["content"] == [
        {"type": "text", "text": "Look at these"},
        {"type": "image_url", "image_url": {"url": data_uri(png)}},
    ]  # the text file is not an image: not inlined
    assert h[1]["content"] == [{"type": "image_url", "image_url": {"url": data_uri(png)}}]
    assert h[2] == {"role": "tool", "content": "made chart.png", "tool_call_id": "c1"}
    assert store.history(sid, inline_roles=("user", "tool"))[2]["content"][1]["image_url"]["url"] == data_uri(png)
    assert store.messages(sid)[0]["attachments"] == [image, doc]


def test_history_survives_a_lost_attachment_file(store):
    sid = store.create_session()
    store.add_message(sid, "user", [{"type": "image_url", "image_url": {"url": data_uri(png_bytes())}}])
    sha = store.messages(sid)[0]["inline_attachments"][0]
    store.attachment_path(sha).unlink()
    placeholder = {"type": "text", "text": f"[attachment {sha[:12]} is missing from the store]"}
    assert store.history(sid)[0]["content"] == [placeholder]


def test_invalid_base64_data_uri_is_kept_as_it_came(store):
    sid = store.create_session()
    content = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,not base64!!"}}]
    store.add_message(sid, "user", content)
    assert store.history(sid)[0]["content"] == content


def test_delete_removes_unshared_attachments_and_keeps_shared_ones(store):
    shared_png, own_png = png_bytes(color=(9, 9, 9)), png_bytes(color=(7, 7, 7))
    shared = store.add_attachment(shared_png, mime="image/png", filename="shared.png")
    a, b = store.create_session(), store.create_session()
    store.add_message(a, "user", "one", attachments=[shared])
    store.add_message(a, "user", [{"type": "image_url", "image_url": {"url": data_uri(own_png)}}])
    own = hashlib.sha256(own_png).hexdigest()
    store.add_message(b, "user", "two", attachments=[shared])
    store.record_tool_call(
        a, message_id=None, call_id="c", name="n", arguments="{}", result="r", error=None,
        risk="read_only", decision="auto", duration_s=0.1,
    )  # fmt: skip
    store.mark(a, "k", "v")

    store.delete(a)
    assert not store.attachment_path(own).exists() and store.attachment_info(own) is None
    assert not store.attachment_path(own).parent.exists()  # empty fan-out folder removed too
    assert store.attachment_path(shared).exists()
    assert store.history(b, inline_roles=("user",))[0]["content"][1]["image_url"]["url"] == data_uri(shared_png)
    conn = raw(store.db_path)
    for table in ("messages", "tool_calls", "marks"):
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?", (a,)).fetchone()[0] == 0
    assert [s.id for s in store.list_sessions()] == [b]
    with pytest.raises(SessionNotFound):
        store.messages(a)
    with pytest.raises(SessionNotFound):
        store.delete(a)

    store.delete(b)
    assert not store.attachment_path(shared).exists()
    assert conn.execute("SELECT COUNT(*) FROM attachments").fetchone()[0] == 0
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_prune_removes_unreferenced_attachments_after_the_grace_period(store, clock):
    used = store.add_attachment(b"used", mime="text/plain")
    loose = store.add_attachment(b"loose", mime="text/plain")
    sid = store.create_session()
    store.add_message(sid, "user", "x", attachments=[used])
    stale_tmp = store.attachments_dir / "ab" / ".tmp-dead"
    stale_tmp.parent.mkdir(exist_ok=True)
    stale_tmp.write_bytes(b"half")
    os.utime(stale_tmp, (clock.now - 10, clock.now - 10))
    assert store.prune_attachments(grace_s=3600) == 0  # everything is still young
    clock.tick(7200)
    assert store.prune_attachments(grace_s=3600) == 2
    assert store.attachment_path(used).exists() and not store.attachment_path(loose).exists()
    assert not stale_tmp.exists()


# --- export ------------------------------------------------------------------------------------------


@pytest.fixture
def rich_session(store):
    sid = store.create_session(model="tiny-vlm", title="Trip planning")
    store.mark(sid, "handed_off", "ticket-12")
    store.add_message(sid, "system", "Be brief.")
    image = store.add_attachment(png_bytes(), mime="image/png", filename="map.png")
    store.add_message(sid, "user", "Where is this? Code: ```x```", attachments=[image])
    call = {"id": "call_7", "type": "function", "function": {"name": "geocode", "arguments": '{"place":"Oslo"}'}}
    usage = {"prompt_tokens": 40, "completion_tokens": 8}
    mid = store.add_message(sid, "assistant", None, tool_calls=[call], usage=usage)
    store.record_tool_call(
        sid, message_id=mid, call_id="call_7", name="geocode", arguments='{"place":"Oslo"}', result='{"lat": 59.9}',
        error=None, risk="read_only", decision="auto", duration_s=0.25,
    )  # fmt: skip
    store.add_message(sid, "tool", '{"lat": 59.9}', tool_call_id="call_7", name="geocode")
    store.record_tool_call(
        sid, message_id=None, call_id="call_8", name="send_mail", arguments="{bad json", result=None,
        error="denied by the user", risk="side_effects", decision="denied", duration_s=None,
    )  # fmt: skip
    store.add_message(sid, "assistant", "That is Oslo.", usage={"prompt_tokens": 60, "completion_tokens": 4},
                      timings={"time_to_first_token_s": 0.1, "total_s": 0.5})  # fmt: skip
    return sid, image


def test_markdown_export_is_a_readable_transcript(store, rich_session):
    sid, image = rich_session
    md = export_markdown(store, sid)
    assert md.startswith("# Trip planning\n")
    assert f"Session: `{sid}`" in md and "Model: tiny-vlm" in md and "Created: 2027-01-15 08:00:00 UTC" in md
    assert "`handed_off=ticket-12`" in md
    headings = re.findall(r"^## (\w[\w :]*?) ·", md, re.M)
    assert headings == ["System", "User", "Assistant", "Tool result: geocode", "Assistant"]
    assert f"map.png — image/png" in md and image in md
    assert '```json\n{\n  "place": "Oslo"\n}\n```' in md  # arguments pretty-printed in a fence
    assert "decision **auto**" in md and "0.25 s" in md
    assert '```\n{"lat": 59.9}\n```' in md  # the tool's result
    assert "````\nWhere" not in md and "Where is this? Code: ```x```" in md
    # The denied call without a message is still listed, with its raw arguments and error.
    assert "## Other tool calls" in md and "`send_mail`" in md and "{bad json" in md and "denied by the user" in md
    assert "100 prompt + 12 completion = 112 tokens" in md and "2 tool calls" in md


def test_fences_outlast_backticks_in_the_content(store):
    sid = store.create_session()
    store.add_message(sid, "tool", "a ``` b ```` c", tool_call_id="x")
    md = export_markdown(store, sid)
    assert "`````\na ``` b ```` c\n`````" in md


def test_json_export_is_complete_and_versioned(store, rich_session):
    sid, image = rich_session
    dump = json.loads(json.dumps(export_json(store, sid)))
    assert dump["format"] == "assistant-session" and dump["version"] == 1
    assert dump["session"]["id"] == sid and dump["session"]["marks"] == {"handed_off": "ticket-12"}
    assert [m["role"] for m in dump["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
    assert dump["messages"][2]["tool_calls"][0]["id"] == "call_7"
    assert [c["call_id"] for c in dump["tool_calls"]] == ["call_7", "call_8"]
    assert dump["attachments"][image]["filename"] == "map.png" and "data_base64" not in dump["attachments"][image]
    assert dump["usage"]["total_tokens"] == 112
    embedded = export_json(store, sid, embed_attachments=True)
    assert base64.b64decode(embedded["attachments"][image]["data_base64"]) == store.attachment_path(image).read_bytes()


# --- crashes and concurrency ----------------------------------------------------------------------


def check_database(db_path):
    conn = raw(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_killed_process_keeps_every_committed_message(tmp_path):
    """The child acknowledges each message after add_message returns; the parent SIGKILLs it at
    an arbitrary point while it keeps writing (attachments included)."""
    db, att = tmp_path / "state" / "sessions.db", tmp_path / "state" / "attachments"
    code = f"""
        import sys
        from pathlib import Path
        from assistant.sessions import SessionStore
        s = SessionStore(Path({str(db)!r}), Path({str(att)!r}))
        sid = s.create_session(title="crash")
        print(sid, flush=True)
        i = 0
        while True:
            hashes = [s.add_attachment(("blob %d " % i).encode() * 5000, mime="text/plain")] if i % 3 == 0 else []
            s.add_message(sid, "user", "message %d" % i, attachments=hashes)
            print(i, flush=True)
            i += 1
    """
    child = run_child(tmp_path, code, stdout=subprocess.PIPE)
    sid = child.stdout.readline().strip()
    acked = []
    while len(acked) < 60:
        line = child.stdout.readline()
        assert line, "the child died on its own"
        acked.append(int(line))
    os.kill(child.pid, signal.SIGKILL)
    rest = child.stdout.read()  # acknowledgements already in the pipe count too
    child.wait(timeout=30)
    acked += [int(x) for x in rest.split()]
    assert child.returncode == -signal.SIGKILL

    check_database(db)
    with SessionStore(db, att) as s:
        texts = [m["content"] for m in s.messages(sid)]
        # Every acknowledged message is there, in order; at most one more committed before its ack.
        assert texts[: len(acked)] == [f"message {i}" for i in range(len(acked))]
        assert len(texts) - len(acked) in (0, 1)
        for m in s.messages(sid):
            for sha in m["attachments"]:
                assert hashlib.sha256(s.attachment_path(sha).read_bytes()).hexdigest() == sha
        s.add_message(sid, "user", "after the crash")  # not locked, still writable
    for path in att.glob("??/*"):
        if not path.name.startswith(".tmp-"):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name  # never a partial file


def test_a_process_killed_inside_a_write_loses_only_that_write(tmp_path):
    """SIGKILL in the middle of add_attachment (after the row insert, before the rename), with the
    write transaction open: the earlier messages stay, the half-done write leaves no trace."""
    db, att = tmp_path / "s.db", tmp_path / "att"
    code = f"""
        import os, signal
        from pathlib import Path
        from assistant.sessions import SessionStore
        from assistant.sessions import store as store_module
        s = SessionStore(Path({str(db)!r}), Path({str(att)!r}))
        sid = s.create_session()
        print(sid, flush=True)
        for i in range(10):
            s.add_message(sid, "assistant", "m%d" % i)
        store_module.os.replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        s.add_message(sid, "user", [{{"type": "image_url", "image_url": {{"url": "data:image/png;base64,AAAA"}}}}])
        os._exit(0)  # not reached
    """
    child = run_child(tmp_path, code, stdout=subprocess.PIPE)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    sid = out.split()[0]
    check_database(db)
    with SessionStore(db, att) as s:
        assert [m["content"] for m in s.messages(sid)] == [f"m{i}" for i in range(10)]
        sha = hashlib.sha256(b"\0\0\0").hexdigest()
        assert s.attachment_info(sha) is None and not s.attachment_path(sha).exists()
        assert [p.name[:5] for p in att.rglob("*") if p.is_file()] == [".tmp-"]  # only the dead writer's temp file
        assert s.prune_attachments(grace_s=-1) == 1
        assert s.add_message(sid, "user", "still writable") > 0


def test_two_processes_append_to_different_sessions_at_once(tmp_path):
    db, att = tmp_path / "s.db", tmp_path / "att"
    SessionStore(db, att).close()
    code = f"""
        import sys
        from pathlib import Path
        from assistant.sessions import SessionStore
        s = SessionStore(Path({str(db)!r}), Path({str(att)!r}))
        sid = s.create_session(title=sys.argv[0])
        for i in range(150):
            s.add_message(sid, "user", "m%d" % i)
            if i % 10 == 0:
                s.add_attachment(b"shared bytes", mime="text/plain")
                s.record_tool_call(sid, message_id=None, call_id="c%d" % i, name="t", arguments="{{}}",
                                   result="r", error=None, risk="read_only", decision="auto", duration_s=0.0)
        print(sid)
    """
    procs = [run_child(tmp_path, code, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    sids = [r[0].strip() for r in results]
    check_database(db)
    with SessionStore(db, att) as s:
        for sid in sids:
            assert [m["content"] for m in s.messages(sid)] == [f"m{i}" for i in range(150)]
            assert len(s.tool_calls(sid)) == 15


# --- the CLI ----------------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        overrides={"paths": {"state_dir": str(tmp_path / "state")}}, environ={"XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    )


@pytest.fixture
def cli(settings):
    from assistant.cli import _common

    common = _common()
    parser = argparse.ArgumentParser(prog="assistant", parents=[common])
    sessions_cli.add_parser(parser.add_subparsers(dest="command"), common)

    def call(*argv):
        return sessions_cli.run(parser.parse_args(["sessions", *argv]), settings)

    return call


@pytest.fixture
def cli_store(settings):
    state = settings.paths.state()
    s = SessionStore(state / "sessions.db", state / "attachments")
    yield s
    s.close()


def test_cli_list_empty_and_populated(cli, cli_store, capsys):
    assert cli("list") == 0
    assert "no saved sessions" in capsys.readouterr().out
    sid = cli_store.create_session(model="tiny", title="Hello there")
    cli_store.add_message(sid, "user", "hi")
    other = cli_store.create_session()
    cli_store.add_message(other, "user", "untitled question")
    cli_store.mark(sid, "handed_off", "t-1")
    assert cli("list") == 0
    out = capsys.readouterr().out
    assert sid in out and "Hello there" in out and "tiny" in out and "handed_off=t-1" in out
    assert "(untitled question)" in out
    assert cli("list", "--json", "-n", "1") == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and rows[0]["id"] == sid and rows[0]["message_count"] == 1


def test_cli_show_and_export(cli, cli_store, capsys, tmp_path):
    sid = cli_store.create_session(model="tiny", title="Shown")
    cli_store.add_message(sid, "user", "What is 2+2?")
    call = {"id": "c1", "type": "function", "function": {"name": "calc", "arguments": '{"expr": "2+2"}'}}
    mid = cli_store.add_message(sid, "assistant", None, tool_calls=[call])
    cli_store.record_tool_call(
        sid, message_id=mid, call_id="c1", name="calc", arguments='{"expr": "2+2"}', result="4", error=None,
        risk="read_only", decision="auto", duration_s=0.01,
    )  # fmt: skip
    cli_store.add_message(sid, "tool", "4", tool_call_id="c1", name="calc")
    cli_store.add_message(sid, "assistant", "4.", usage={"prompt_tokens": 5, "completion_tokens": 1})

    assert cli("show", sid[:18]) == 0
    out = capsys.readouterr().out
    assert "Shown" in out and "[user]" in out and "What is 2+2?" in out and "calc(" in out and "auto" in out
    assert "[tool: calc]" in out and "5 prompt + 1 completion" in out

    assert cli("export", sid) == 0
    assert capsys.readouterr().out.startswith("# Shown\n")
    out_file = tmp_path / "exp.json"
    assert cli("export", "last", "--format", "json", "--out", str(out_file)) == 0
    assert str(out_file) in capsys.readouterr().err
    dump = json.loads(out_file.read_text())
    assert dump["format"] == "assistant-session" and len(dump["messages"]) == 4
    assert not list(tmp_path.glob(".exp.json.*"))  # the temp file was renamed into place
    md_file = tmp_path / "exp.md"
    assert cli("export", sid, "--format", "markdown", "--out", str(md_file)) == 0
    assert "## Tool result: calc" in md_file.read_text()
    with pytest.raises(errors.UsageError, match="cannot write"):
        cli("export", sid, "--out", str(tmp_path / "no" / "such" / "dir" / "x.md"))


def test_cli_rename_and_delete(cli, cli_store, capsys, monkeypatch):
    sid = cli_store.create_session(title="old")
    cli_store.add_message(sid, "user", "x", attachments=[cli_store.add_attachment(b"data", mime="text/plain")])
    assert cli("rename", sid[:17], "New", "title") == 0
    assert cli_store.get_session(sid).title == "New title"
    capsys.readouterr()

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nobody to confirm
    with pytest.raises(errors.UsageError, match="without confirmation") as info:
        cli("delete", sid)
    assert "--yes" in info.value.hint
    assert cli_store.get_session(sid)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    assert cli("delete", sid) == 0 and "not deleted" in capsys.readouterr().out
    assert cli_store.get_session(sid)
    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    assert cli("delete", sid) == 0
    assert "deleted" in capsys.readouterr().out
    with pytest.raises(SessionNotFound):
        cli_store.get_session(sid)

    other = cli_store.create_session()
    assert cli("delete", other, "--yes") == 0
    assert cli_store.list_sessions() == []
    assert not any(p.is_file() for p in cli_store.attachments_dir.rglob("*"))


def test_cli_unknown_and_ambiguous_ids_are_usage_errors(cli, cli_store):
    a, b = cli_store.create_session(), cli_store.create_session()
    with pytest.raises(SessionNotFound) as info:
        cli("show", "nope")
    assert info.value.exit_code == errors.EXIT_USAGE
    with pytest.raises(SessionNotFound, match="more than one"):
        cli("delete", "--yes", os.path.commonprefix([a, b]))
    assert len(cli_store.list_sessions()) == 2


def test_cli_uses_the_state_dir_from_settings(cli, settings):
    assert cli("list") == 0
    assert (settings.paths.state() / "sessions.db").is_file()
    assert (settings.paths.state() / "attachments").is_dir()
