"""Knowledge bases on a real Chroma (embedded and server) with the real MiniLM embeddings."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.errors import UsageError

from .conftest import ASSISTANT, ROOT

pytest.importorskip("chromadb")
from assistant_plugins.kb.store import KnowledgeBase  # noqa: E402

RETURNS = """# Returns and refunds

## Returning an item
You can return any item within 30 days of delivery. Print the prepaid label from your account
and drop the parcel at any post office.

## Refunds
Refunds are paid to the original payment method within 14 days of us receiving the return.
Store credit is issued immediately if you prefer it.
"""

SHIPPING = """# Shipping

## Delivery times
Standard delivery takes 3 to 5 working days. Express delivery arrives the next working day
when ordered before 2 pm.

## Lost parcels
If tracking has not moved for 7 days, contact us and we open an investigation with the courier.
The reference code for courier claims is XK-42.
"""

WARRANTY = """# Warranty

All kettles carry a two-year warranty covering the heating element and the thermostat.
Damage from descaling with vinegar is not covered.
"""


def write_corpus(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"returns": RETURNS, "shipping": SHIPPING, "warranty": WARRANTY}
    out = {}
    for name, text in files.items():
        path = folder / f"{name}.md"
        path.write_text(text)
        out[name] = path.resolve()
    return out


def consistent(kb: KnowledgeBase, collection: str) -> tuple[int, int]:
    rows = kb.db.execute("SELECT count(*) FROM chunks WHERE collection=?", (collection,)).fetchone()[0]
    return rows, kb._vectors(collection).count()


def test_ingest_search_cite_filter(tmp_path):
    files = write_corpus(tmp_path / "docs")
    kb = KnowledgeBase(tmp_path / "kb")
    report = kb.ingest([tmp_path / "docs"], "help")
    assert len(report.added) == 3 and not report.failed and report.chunks >= 5
    hits = kb.search("how long until I get my money back", "help", k=3)
    assert hits[0].source == str(files["returns"]) and hits[0].section == "Returns and refunds > Refunds"
    assert "14 days" in hits[0].text and hits[0].citation() == "returns.md § Returns and refunds > Refunds"
    assert hits[0].similarity is not None and hits[0].similarity > 0.3
    # a code word only BM25 can match; hybrid keeps it
    kw = kb.search("XK-42", "help", k=2, mode="keyword")
    assert kw and "XK-42" in kw[0].text and kw[0].keyword_rank == 0
    assert any("XK-42" in h.text for h in kb.search("XK-42 claim code", "help", k=3))
    # metadata filter
    only = kb.search("refund", "help", k=5, where={"source": str(files["warranty"])})
    assert only and all(h.source == str(files["warranty"]) for h in only)
    with pytest.raises(UsageError):
        kb.search("x", "help", where={"colour": "red"})
    with pytest.raises(UsageError) as err:
        kb.search("x", "nope")
    assert "kb ingest" in err.value.hint
    assert [c.name for c in kb.collections()] == ["help"] and consistent(kb, "help")[0] == consistent(kb, "help")[1]


def test_reingest_is_incremental_and_tracks_changes_and_deletions(tmp_path):
    files = write_corpus(tmp_path / "docs")
    kb = KnowledgeBase(tmp_path / "kb")
    kb.ingest([tmp_path / "docs"], "help")
    again = kb.ingest([tmp_path / "docs"], "help")
    assert len(again.unchanged) == 3 and again.chunks == 0
    files["warranty"].write_text(WARRANTY.replace("two-year", "five-year"))
    (tmp_path / "docs" / "copy.md").write_text(RETURNS)  # same content, another name
    files["shipping"].unlink()
    r = kb.ingest([tmp_path / "docs"], "help")
    assert r.updated == [str(files["warranty"])] and r.removed == [str(files["shipping"])]
    assert r.duplicates == [str((tmp_path / "docs" / "copy.md").resolve())] and len(r.unchanged) == 1
    texts = " ".join(h.text for h in kb.search("warranty years kettle", "help", k=10))
    assert "five-year" in texts and "two-year" not in texts
    assert not any("XK-42" in h.text for h in kb.search("XK-42", "help", k=10, mode="keyword"))
    rows, vectors = consistent(kb, "help")
    assert rows == vectors
    kb.remove([files["returns"]], "help")  # the copy still holds that content
    assert any("14 days" in h.text for h in kb.search("refunds", "help", k=5))
    kb.drop("help")
    assert kb.collections() == []


def test_a_killed_ingest_keeps_committed_batches_and_a_rerun_resumes(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(6):  # ~6 x 130 chunks: several batches each
        paras = [f"## Topic {i}.{j}\n\nParagraph {j} of file {i} explains setting number {j * 7 + i} in detail. "
                 "It covers the defaults, the ranges allowed and what happens when the value is too large." for j in range(130)]
        (docs / f"manual{i}.md").write_text(f"# Manual {i}\n\n" + "\n\n".join(paras))
    root = tmp_path / "kb"
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r});"
            "from assistant_plugins.kb.store import KnowledgeBase;"
            f"KnowledgeBase({str(root)!r}).ingest([{str(docs)!r}], 'big')")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "HF_HUB_OFFLINE": "1"})
    db = root / "catalog.sqlite"
    deadline = time.time() + 300
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as c:
                    committed = c.execute("SELECT count(*) FROM chunks").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0
            if committed >= 200:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the ingest finished before it could be killed; make the corpus bigger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kb = KnowledgeBase(root)
    kept = kb.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert kept >= committed >= 200
    r = kb.ingest([docs], "big")
    assert r.chunks < 6 * 130 - kept + 64  # only what was missing (plus at most the batch in flight) is embedded
    rows, vectors = consistent(kb, "big")
    assert rows == vectors and rows >= 6 * 130
    assert {f["done"] for f in kb.files("big")} == {1}
    hit = kb.search("setting number 352", "big", k=1, mode="keyword")[0]
    assert "setting number 352" in hit.text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_chroma_server_holds_the_vectors_when_configured(tmp_path):
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    server = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import httpx

        for _ in range(150):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        write_corpus(tmp_path / "docs")
        kb = KnowledgeBase(tmp_path / "kb", chroma_url=f"http://127.0.0.1:{port}")
        kb.ingest([tmp_path / "docs"], "remote")
        assert "14 days" in kb.search("refund time", "remote", k=1)[0].text
        assert not (tmp_path / "kb" / "chroma").exists()  # nothing embedded locally
        import chromadb

        client = chromadb.HttpClient(host="127.0.0.1", port=port)
        assert client.get_collection("kb-remote").count() == consistent(kb, "remote")[0]
    finally:
        server.terminate()
        server.wait(10)


def test_cli_ingest_list_search_drop(tmp_path):
    write_corpus(tmp_path / "docs")
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.7\n garbage that is not a pdf")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def run(*args):
        return subprocess.run([*ASSISTANT, "kb", *args], capture_output=True, text=True, env=env, timeout=300)

    r = run("ingest", str(tmp_path / "docs"), "--collection", "help")
    assert r.returncode == 2, r.stderr  # one file failed, the others are in
    assert "3 added" in r.stdout and "failed: " in r.stdout and "broken.pdf" in r.stdout
    r = run("list")
    assert r.returncode == 0 and r.stdout.startswith("help  3 files")
    r = run("search", "refund", "time", "-c", "help", "-k", "2", "--json")
    hits = json.loads(r.stdout)
    assert r.returncode == 0 and hits[0]["citation"].startswith("returns.md") and len(hits) == 2
    r = run("search", "x", "-c", "missing")
    assert r.returncode == 2 and "kb ingest" in r.stderr
    r = run("drop", "help")
    assert r.returncode == 2 and "--yes" in r.stderr  # no terminal to confirm on
    assert run("drop", "help", "--yes").returncode == 0
    assert "no collections yet" in run("list").stdout


async def test_the_kb_search_tool_in_a_dialogue_cites_its_sources(tmp_path):
    from assistant.events import ToolCallFinished, TurnFinished
    from assistant.testing import ScriptedModel, call, make_dialogue
    from assistant_plugins.kb import KB

    write_corpus(tmp_path / "docs")
    KnowledgeBase(tmp_path / "state" / "plugins" / "kb").ingest([tmp_path / "docs"], "default")
    model = ScriptedModel(call("kb_search", {"query": "when is my refund paid"}),
                          lambda messages, tools: "Within 14 days [1]." if "returns.md" in messages[-1]["content"] else "?")
    dialogue = make_dialogue(KB, model=model, state_dir=tmp_path / "state")
    events = [e async for e in dialogue.turn("When do I get my refund?")]
    result = next(e for e in events if isinstance(e, ToolCallFinished))
    assert "[1] returns.md § Returns and refunds > Refunds" in result.result and "14 days" in result.result
    assert next(e for e in events if isinstance(e, TurnFinished)).text == "Within 14 days [1]."
