"""The documents plugin picks how a document reaches the model: inline, read-all, retrieve."""

import json

import pytest

from assistant.documents.model import Block, Document, with_offsets
from assistant.errors import ContextTooLong, UsageError
from assistant.plugin_api import ToolContext
from assistant.settings import load_settings, parse_assignments
from assistant.testing import ScriptedModel
from assistant_plugins.documents import Documents, DocumentsSettings, render_inline, wants_summary
from assistant_plugins.documents.session import _only_summary

NEEDLE = "Refunds are paid within 14 days of receiving the returned item."


def doc(pages):
    blocks = [Block("Returns policy", page=1, section="Returns policy", heading=True)]
    for p in range(1, pages + 1):
        text = " ".join(f"Page {p} sentence {i} about parcels and couriers." for i in range(8))
        if p == pages // 2 + 1:
            text += " " + NEEDLE
        blocks.append(Block(text, page=p, section="Returns policy"))
    return Document("policy.pdf", "pdf", f"sha-{pages}", with_offsets(blocks), title="Policy", pages=pages)


def responder(messages, tools):
    system, user = messages[0]["content"], messages[-1]["content"]
    if "Notes:" in system:
        return "Refunds take 14 days [1]."
    if user.startswith("Excerpt"):
        excerpt = user.split("\n\nQuestion:")[0]
        if "Refunds" in excerpt:
            return json.dumps({"relevant": True, "answer": "14 days", "quotes": [NEEDLE]})
        return json.dumps({"relevant": False, "answer": "", "quotes": []})
    return "summary"


async def plugin(tmp_path, **settings):
    p = Documents(DocumentsSettings(context_tokens=2048, **settings), data_dir=tmp_path)
    await p.ensure_setup()
    return p


def ctx(tmp_path, model, question, events):
    return ToolContext("documents", None, tmp_path, events.append, model, question)


async def test_a_short_document_goes_inline_with_page_markers(tmp_path):
    p = await plugin(tmp_path)
    model = ScriptedModel()
    out = await p.present(doc(2), "When are refunds paid?", ctx(tmp_path, model, "", []))
    assert out.metadata["mode"] == "inline" and not model.requests
    assert out.text.startswith("[p. 1]\n\n## Returns policy\n\nPage 1") and "[p. 2]" in out.text and NEEDLE in out.text


async def test_a_long_document_is_read_whole_in_auto_mode(tmp_path):
    p = await plugin(tmp_path)
    model = ScriptedModel(responder=responder)
    events = []
    out = await p.present(doc(200), "When are refunds paid?", ctx(tmp_path, model, "", events))
    n = out.metadata["chunks"]
    assert out.metadata["mode"] == "read-all" and n >= 20
    assert len(model.requests) == n + 1 and out.metadata["requests"] == n + 1
    assert f"read all {n} parts of policy.pdf: 1 relevant" in out.title
    assert "Refunds take 14 days [1]." in out.text and "[1] policy.pdf p. 101 § Returns policy" in out.text
    assert any("prompt tokens" in e.message for e in events)
    # every map request fits the context the plugin was told
    assert all(len(r["messages"][-1]["content"]) / 4 < 2048 for r in model.requests)


async def test_inline_mode_refuses_what_does_not_fit_and_read_all_has_a_ceiling(tmp_path):
    p = await plugin(tmp_path, mode="inline")
    with pytest.raises(ContextTooLong) as err:
        await p.present(doc(200), "q", ctx(tmp_path, ScriptedModel(), "", []))
    assert "--read" in err.value.hint
    p = await plugin(tmp_path, mode="read-all", max_read_chunks=5)
    with pytest.raises(UsageError) as err:
        await p.present(doc(200), "q", ctx(tmp_path, ScriptedModel(), "", []))
    assert "max_read_chunks" in err.value.hint and "chunks" in str(err.value)


async def test_summary_requests_summarise_every_part(tmp_path):
    p = await plugin(tmp_path, mode="read-all")
    model = ScriptedModel(responder=responder)
    out = await p.present(doc(60), "Summarise this document", ctx(tmp_path, model, "", []))
    assert out.text.startswith("Summary from reading all")
    assert all("Summarise this excerpt." in r["messages"][-1]["content"] for r in model.requests[:-1])


def test_intent_and_focus_detection():
    assert wants_summary("") and wants_summary("tl;dr please") and not wants_summary("when are refunds paid?")
    assert _only_summary("Please summarise this document") and not _only_summary("summarise the refund rules")


def test_mode_from_flags_and_environment():
    s = load_settings(None, parse_assignments(["plugins.documents.mode=retrieve"]), environ={})
    assert s.plugins.options["documents"] == {"mode": "retrieve"}
    s = load_settings(None, None, environ={"ASSISTANT_PLUGINS__DOCUMENTS__MAX_READ_CHUNKS": "9"})
    assert DocumentsSettings(**s.plugins.options["documents"]).max_read_chunks == 9


def test_render_inline_marks_pages_once():
    text = render_inline(doc(3))
    assert text.count("[p. 2]") == 1 and text.index("[p. 1]") < text.index("[p. 2]") < text.index("[p. 3]")


async def test_a_pdf_attachment_is_read_in_a_dialogue_and_cited_by_page(tmp_path):
    """The whole path: a real PDF attached to a turn, loaded, read chunk by chunk, cited."""
    from assistant.dialogue.attachments import sniff
    from assistant.events import AttachmentProcessed, TurnFinished
    from assistant.testing import make_dialogue
    from assistant.testing.pdf import make_pdf

    pages = [[" ".join(f"Page {p} line {i} covers couriers, parcels and labels." for i in range(20))]
             for p in range(1, 61)]
    pages[44][0] += " " + NEEDLE
    pdf = tmp_path / "policy.pdf"
    pdf.write_bytes(make_pdf(pages, title="Returns policy"))

    def answer(messages, tools):
        user = messages[-1]["content"]
        if isinstance(user, str) and "Findings from reading all" in user:
            return "Refunds are paid within 14 days [1] (policy.pdf p. 45)."
        return responder(messages, tools)

    model = ScriptedModel(responder=answer)
    dialogue = make_dialogue(Documents, model=model, state_dir=tmp_path / "state",
                             options={"documents": {"context_tokens": 2048, "mode": "auto"}})
    events = [e async for e in dialogue.turn("When are refunds paid?", [sniff(pdf)])]
    processed = next(e for e in events if isinstance(e, AttachmentProcessed))
    assert processed.handled_by == "documents" and "read all" in processed.title
    assert "[1] policy.pdf p. 45" in processed.text  # the page of the verified quote, not the chunk's span
    finished = next(e for e in events if isinstance(e, TurnFinished))
    assert finished.text.startswith("Refunds are paid within 14 days")
