"""The faq plugin: its logic through the search seam (threshold, citations, hand-off offer, the log
of unanswered questions), then once for real on the bundled sample FAQ in the knowledge base
(Chroma embedded + the bundled MiniLM: no sockets, ~20 s the first time)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import pytest

from assistant.errors import PluginError
from assistant.testing import assert_conforms
from assistant_plugins.support.faq import FAQ, SAMPLE_FAQ, cite, relevant

from .test_support_helpers import Conversation, call, plugin


@dataclass(frozen=True)
class FakeHit:  # the fields of plugins/kb/store.py's Hit that the plugin reads
    text: str
    source: str
    section: str
    similarity: float | None
    page: int | None = None


REFUNDS = FakeHit("## Refunds\n\nWe issue a refund within 5 working days.", "/kb/faq.md", "Help > Refunds", 0.76)
RETURNS = FakeHit("You can return unused items within 30 days.", "/kb/faq.md", "Help > Returns", 0.45)
RETURNS_AGAIN = FakeHit("Return shipping is free within Germany.", "/kb/faq.md", "Help > Returns", 0.41)
WEAK = FakeHit("Payment methods: cards, PayPal.", "/kb/faq.md", "Help > Payment methods", 0.37)
KEYWORD_ONLY = FakeHit("refund refund refund", "/kb/faq.md", "Help > Refunds", None)


def faq_with(tmp_path, hits, settings=None):
    faq = plugin(FAQ, tmp_path, settings)
    asked = []

    def search(question):
        asked.append(question)
        return list(hits)

    faq.search = search  # the seam: no knowledge base is opened
    return faq, asked


def test_follows_the_plugin_contract():
    assert_conforms(FAQ)
    assert_conforms(FAQ, settings={"collection": "help", "min_similarity": 0.5, "k": 2, "sample": False})


def test_citations():
    assert cite(REFUNDS) == "[faq.md § Refunds]"
    assert cite(FakeHit("x", "/docs/manual.pdf", "Setup > Grinder > Burrs", 0.9, page=3)) == "[manual.pdf p. 3 § Burrs]"
    assert cite(FakeHit("x", "notes.txt", "", 0.9)) == "[notes.txt]"


def test_an_answer_comes_with_passages_and_citations(tmp_path):
    faq, asked = faq_with(tmp_path, [WEAK, RETURNS, REFUNDS, RETURNS_AGAIN, KEYWORD_ONLY])
    result = call(faq, "answer", question="  How long   do refunds take? ")
    assert asked == ["How long do refunds take?"]
    assert result["found"] is True
    # Best first, one passage per section, nothing under the threshold or matched by keywords alone.
    assert result["passages"] == [
        {"cite": "[faq.md § Refunds]", "text": "We issue a refund within 5 working days."},
        {"cite": "[faq.md § Returns]", "text": "You can return unused items within 30 days."},
    ]
    assert "[faq.md § Refunds]" in result["how_to_answer"] and "don't know" in result["how_to_answer"]


def test_nothing_relevant_means_i_dont_know_and_a_hand_off_offer(tmp_path):
    faq, _ = faq_with(tmp_path, [WEAK, KEYWORD_ONLY])
    result = call(faq, "answer", question="Can I pay with bitcoin?")
    assert result == {"found": False, "message": result["message"]}
    assert "don't know" in result["message"] and "handoff_request" in result["message"] and "not_in_knowledge_base" in result["message"]
    faq_empty, _ = faq_with(tmp_path / "b", [])
    assert call(faq_empty, "answer", question="Anything?")["found"] is False


def test_the_threshold_and_k_are_settings(tmp_path):
    strict, _ = faq_with(tmp_path / "a", [REFUNDS, RETURNS], {"min_similarity": 0.5})
    assert [p["cite"] for p in call(strict, "answer", question="q")["passages"]] == ["[faq.md § Refunds]"]
    lenient, _ = faq_with(tmp_path / "b", [REFUNDS, RETURNS, WEAK], {"min_similarity": 0.3, "k": 2})
    assert len(call(lenient, "answer", question="q")["passages"]) == 2
    assert relevant([WEAK], 0.37) == [WEAK]


def test_long_passages_are_cut_at_a_word(tmp_path):
    long = FakeHit("word " * 400, "faq.md", "Long", 0.9)
    faq, _ = faq_with(tmp_path, [long])
    text = call(faq, "answer", question="q")["passages"][0]["text"]
    assert len(text) <= 900 and text.endswith("word …")


def test_every_question_is_logged_so_the_team_sees_what_is_missing(tmp_path):
    faq, _ = faq_with(tmp_path, [WEAK])
    chat = Conversation(tmp_path)
    call(faq, "answer", chat.ctx(faq), question="Bitcoin?")
    faq.search = lambda q: [REFUNDS]
    call(faq, "answer", chat.ctx(faq), question="Refund time?")
    rows = sqlite3.connect(faq.data_dir / "questions.sqlite").execute(
        "SELECT session_id, question, answered, best_similarity, best_source FROM questions ORDER BY id").fetchall()
    assert rows == [(chat.session_id, "Bitcoin?", 0, 0.37, "[faq.md § Payment methods]"),
                    (chat.session_id, "Refund time?", 1, 0.76, "[faq.md § Refunds]")]


def test_an_empty_question_is_an_error(tmp_path):
    faq, _ = faq_with(tmp_path, [REFUNDS])
    with pytest.raises(ValueError, match="empty"):
        call(faq, "answer", question="   ")


# --- the real knowledge base ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb_folder(tmp_path_factory):
    pytest.importorskip("chromadb", reason="the documents extra is not installed: pip install 'assistant[documents]'")
    pytest.importorskip("sentence_transformers", reason="the documents extra is not installed")
    return tmp_path_factory.mktemp("kb")


def test_the_sample_faq_is_ingested_on_first_use_and_answers_for_real(tmp_path, kb_folder):
    faq = plugin(FAQ, tmp_path, {"kb_folder": str(kb_folder)})
    answered = call(faq, "answer", question="My teapot arrived broken, what should I do?")
    assert answered["found"] is True
    assert answered["passages"][0]["cite"] == "[faq.md § Damaged or broken items]"
    assert "within 14 days" in answered["passages"][0]["text"]
    from assistant_plugins.kb.store import KnowledgeBase

    kb = KnowledgeBase(kb_folder)
    (info,) = kb.collections()
    assert info.name == "faq-sample" and info.files == 1 and info.chunks >= 10 and faq.collection == "faq-sample"
    assert kb.files("faq-sample")[0]["path"] == str(SAMPLE_FAQ.resolve())


def test_the_teams_own_faq_replaces_the_sample(tmp_path, kb_folder):
    from assistant_plugins.kb.store import KnowledgeBase

    own = tmp_path / "our-faq.md"
    own.write_text("# Help\n\n## Gift wrapping\n\nWe gift-wrap any order for 3.00 EUR; choose it at checkout.\n")
    kb = KnowledgeBase(kb_folder)
    kb.ingest([own], "help")
    faq = plugin(FAQ, tmp_path, {"kb_folder": str(kb_folder), "collection": "help"})
    result = call(faq, "answer", question="Can you gift-wrap my order?")
    assert faq.collection == "help" and result["passages"][0]["cite"] == "[our-faq.md § Gift wrapping]"
    assert call(faq, "answer", question="How long does a refund take?")["found"] is False  # no sample in it


@pytest.mark.parametrize("question, section", [
    ("How long does a refund take?", "Refunds"),
    ("How do I reset my password?", "Your account"),
    ("Is there a warranty on the kettle?", "Warranty"),
    ("Where is my parcel? The tracking shows nothing.", "Tracking a parcel"),
    ("How much does shipping to France cost?", "Shipping times and costs"),
])
def test_the_bundled_faq_answers_what_it_covers(tmp_path, kb_folder, question, section):
    faq = plugin(FAQ, tmp_path, {"kb_folder": str(kb_folder)})
    result = call(faq, "answer", question=question)
    assert result["found"] is True and result["passages"][0]["cite"] == f"[faq.md § {section}]", result


@pytest.mark.parametrize("question", [
    "What is the capital of France?",
    "Do you sell bicycles?",
    "Who won the football match yesterday?",
    "Do you have a shop in Tokyo where I could try the grinders?",
])
def test_the_bundled_faq_does_not_pretend_to_know_the_rest(tmp_path, kb_folder, question):
    faq = plugin(FAQ, tmp_path, {"kb_folder": str(kb_folder)})
    assert call(faq, "answer", question=question)["found"] is False


def test_without_the_sample_a_missing_collection_is_a_clear_error(tmp_path, kb_folder):
    faq = plugin(FAQ, tmp_path, {"kb_folder": str(tmp_path / "empty-kb"), "sample": False})
    with pytest.raises(Exception, match="no knowledge-base collection named 'faq'"):
        call(faq, "answer", question="Refunds?")


def test_a_missing_kb_plugin_names_the_fix(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "assistant_plugins.kb.store", None)  # as if it were not installed
    faq = plugin(FAQ, tmp_path)
    with pytest.raises(PluginError, match="needs the knowledge-base plugin"):
        call(faq, "answer", question="Refunds?")
