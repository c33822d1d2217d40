"""Map-reduce reading of a long document against the scripted model: every chunk is read,
citations point at the right page, partial answers are cached and a cancelled read resumes."""

import asyncio
import json

import pytest

from assistant.dialogue.prompts import default_library
from assistant.documents.chunking import chunk_document
from assistant.documents.model import Block, Document, with_offsets
from assistant.documents.tokens import ratio_counter
from assistant.errors import RequestRejected
from assistant.testing import ScriptedModel
from assistant_plugins.documents import Documents
from assistant_plugins.documents.cache import MapCache
from assistant_plugins.documents.reader import Reader, parse_finding, quote_in

count = ratio_counter(4.0, margin=1.0)
NEEDLE = "The warranty on the Model K kettle lasts seven years from the date of purchase."


def long_doc(pages=120, needle_page=37):
    blocks = []
    for p in range(1, pages + 1):
        text = " ".join(f"Page {p} filler sentence {i} about boilers, valves and thermostats." for i in range(6))
        if p == needle_page:
            text += " " + NEEDLE
        blocks.append(Block(text, page=p, section=f"Chapter {(p - 1) // 20 + 1}"))
    return Document("manual.pdf", "pdf", "sha-manual", with_offsets(blocks), title="Kettle manual", pages=pages)


def prompts():
    return default_library(None, [Documents.prompts_dir])


def responder(messages, tools):
    system, user = messages[0]["content"], messages[-1]["content"]
    if "Notes:" in system:  # reduce
        return "The warranty lasts seven years [1]."
    excerpt = user.split("\n\nQuestion:")[0]
    if "warranty" in excerpt and "Excerpt" in user:
        return json.dumps({"relevant": True, "answer": "Seven years.", "quotes": [NEEDLE, "a quote not in the text at all"]})
    return json.dumps({"relevant": False, "answer": "", "quotes": []})


class SlowModel(ScriptedModel):
    """Each request takes a little while, as over HTTP, so other tasks run in between."""

    async def chat(self, messages, **kwargs):
        await asyncio.sleep(0.002)
        return await super().chat(messages, **kwargs)


def reader(model, **kw):
    return Reader(model, prompts(), context_tokens=kw.pop("context", 1024), count=count, **kw)


async def test_reads_every_chunk_and_cites_the_page():
    doc = long_doc()
    chunks = chunk_document(doc, count, max_tokens=500, overlap=40)
    assert len(chunks) >= 30
    model = ScriptedModel(responder=responder)
    events = []
    result = await reader(model, progress=events.append, concurrency=4).answer(doc, chunks, "How long is the warranty?")
    maps = [r for r in model.requests if "Excerpt" in r["messages"][-1]["content"]]
    assert len(maps) == len(chunks)  # read everything, not top-k
    assert all(r["extra"]["response_format"]["type"] == "json_schema" for r in maps)
    assert result.relevant >= 1 and result.answer.startswith("The warranty lasts seven years")
    assert result.sources and "manual.pdf p. 37" in result.sources[0]
    reduce_system = model.requests[-1]["messages"][0]["content"]
    assert NEEDLE in reduce_system and "a quote not in the text" not in reduce_system  # only verbatim quotes
    assert "chunks" in events[0].message and "prompt tokens" in events[0].message  # the estimate comes first
    assert events[-1].fraction == 1.0
    # the shared instructions + question come before the chunk (prefix caching)
    first = maps[0]["messages"]
    assert "How long is the warranty?" in first[0]["content"]


async def test_cache_makes_a_repeated_question_free_and_resumes_a_cancelled_read(tmp_path):
    doc = long_doc()
    chunks = chunk_document(doc, count, max_tokens=500)
    cache = MapCache(tmp_path / "cache.sqlite")
    slow_started = asyncio.Event()

    async def run(model):
        return await reader(model, cache=cache, model_name="m", concurrency=2).answer(doc, chunks, "How long is the warranty?")

    # A read cancelled part-way keeps what it finished.
    calls = 0

    def counting(messages, tools):
        nonlocal calls
        calls += 1
        if calls == 10:
            slow_started.set()
        return responder(messages, tools)

    model = SlowModel(responder=counting)
    task = asyncio.ensure_future(run(model))
    await slow_started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    finished = cache.db.execute("SELECT count(*) FROM findings").fetchone()[0]
    assert 5 <= finished < len(chunks)

    model2 = ScriptedModel(responder=responder)
    result = await run(model2)
    maps2 = [r for r in model2.requests if "Excerpt" in r["messages"][-1]["content"]]
    assert len(maps2) == len(chunks) - finished and result.cached == finished
    model3 = ScriptedModel(responder=responder)
    again = await run(model3)
    assert len(model3.requests) == 0 and again.answer == result.answer  # the final answer is cached too
    model4 = ScriptedModel(responder=responder)
    other = await reader(model4, cache=cache, model_name="m2", concurrency=2).answer(doc, chunks, "How long is the warranty?")
    assert len(model4.requests) == len(chunks) + 1 and other.answer == result.answer  # another model reads afresh


async def test_nothing_relevant_says_so_without_asking_the_model_to_guess():
    doc = long_doc(pages=30, needle_page=999)
    chunks = chunk_document(doc, count, max_tokens=400)
    model = ScriptedModel(responder=responder)
    result = await reader(model).answer(doc, chunks, "How long is the warranty?")
    assert len(model.requests) == len(chunks)
    assert result.relevant == 0 and "none of them answers" in result.answer and not result.sources


async def test_hierarchical_reduce_when_findings_overflow_the_context():
    doc = long_doc(pages=80)
    chunks = chunk_document(doc, count, max_tokens=300)

    def everything_relevant(messages, tools):
        system, user = messages[0]["content"], messages[-1]["content"]
        if "Combine these" in system:
            return "Merged note about valves. " * 5
        if "Notes:" in system:
            return "Valves everywhere [3][40]."
        quote = user.split("\n\n")[1].split(". ")[0] + "."
        return json.dumps({"relevant": True, "answer": "This part talks about valves at length. " * 6, "quotes": [quote]})

    model = ScriptedModel(responder=everything_relevant)
    result = await reader(model, context=1024, answer_max_tokens=128).answer(doc, chunks, "What about valves?")
    merges = [r for r in model.requests if "Combine these" in r["messages"][0]["content"]]
    assert result.reduce_rounds >= 2 and merges
    final_system = model.requests[-1]["messages"][0]["content"]
    assert sum(count([final_system])) < 1024
    assert "[3]" in final_system and "[40]" in final_system  # merged notes keep every number they came from
    assert [s.split("]")[0] for s in result.sources] == ["[3", "[40"]


async def test_servers_without_structured_output_fall_back_to_plain_json():
    doc = long_doc(pages=10, needle_page=3)
    chunks = chunk_document(doc, count, max_tokens=400)

    def picky(messages, tools):
        return responder(messages, tools)

    model = ScriptedModel(RequestRejected("unknown field response_format"), responder=picky)
    result = await reader(model, concurrency=1).answer(doc, chunks, "How long is the warranty?")
    assert result.relevant == 1
    assert all("extra" not in r for r in model.requests[1:])


async def test_summary_reads_every_chunk_and_combines_in_order():
    doc = long_doc(pages=40)
    chunks = chunk_document(doc, count, max_tokens=500)

    def summarise(messages, tools):
        user = messages[-1]["content"]
        if user.startswith("Excerpt"):
            return f"Part {user.split()[1]} covers boilers."
        return "The manual covers boilers [1][2]."

    model = ScriptedModel(responder=summarise)
    result = await reader(model).summarize(doc, chunks)
    assert len(model.requests) == len(chunks) + 1
    final = model.requests[-1]["messages"][0]["content"]
    assert final.index("Part 1 covers") < final.index("Part 2 covers")
    assert result.answer == "The manual covers boilers [1][2]."


async def test_a_claim_without_a_verified_quote_is_not_evidence_but_the_passage_is():
    """A small model says 'relevant' and answers from the question's own words: that claim does
    not reach the final prompt; the original sentence does, found by keyword re-retrieval."""
    doc = long_doc(pages=60, needle_page=23)
    chunks = chunk_document(doc, count, max_tokens=400)

    def muddled(messages, tools):
        system, user = messages[0]["content"], messages[-1]["content"]
        if "Notes:" in system:
            return "It lasts seven years [1]."
        if "warranty" in user.split("\n\nQuestion:")[0] or "Excerpt 3 of" in user:
            return json.dumps({"relevant": True, "answer": "The warranty of the kettle is the kettle warranty.",
                               "quotes": ["The kettle warranty is a warranty."]})  # not in the text
        return json.dumps({"relevant": False, "answer": "", "quotes": []})

    model = ScriptedModel(responder=muddled)
    events = []
    result = await reader(model, progress=events.append).answer(doc, chunks, "How long is the kettle warranty?")
    final = model.requests[-1]["messages"][0]["content"]
    assert NEEDLE in final and "original text" in final
    assert "the kettle warranty" not in final.lower().split("notes:")[1].split(NEEDLE)[0].lower()
    assert result.relevant == 0 and result.passages >= 1 and result.stats["unverified"] == 2
    assert result.sources[0].startswith("[1] manual.pdf p. 23")
    assert any("passages of the original text" in e.message for e in events)
    # Filler that merely shares common words with the question is not shown.
    assert final.count("original text)") <= 6 and "Page 3 filler" not in final


async def test_passages_need_most_of_the_question_when_no_chunk_claims_relevance():
    doc = long_doc(pages=30, needle_page=12)
    chunks = chunk_document(doc, count, max_tokens=400)

    def blind(messages, tools):  # the map step misses the fact everywhere
        if "Notes:" in messages[0]["content"]:
            return "Seven years [1]."
        return json.dumps({"relevant": False, "answer": "", "quotes": []})

    found = await reader(ScriptedModel(responder=blind)).answer(doc, chunks, "How long is the Model K kettle warranty?")
    assert found.passages == 1 and "p. 12" in found.sources[0]
    # Only common words of the document match: nothing is shown, and the reader says so.
    model = ScriptedModel(responder=blind)
    none = await reader(model).answer(doc, chunks, "How do I replace the thermostats of a boiler valve for free?")
    assert none.passages == 0 and "none of them answers" in none.answer and len(model.requests) == len(chunks)


def test_bm25_prefers_rare_words_and_folds_word_forms():
    from assistant.documents.keywords import KeywordIndex, stem, words

    texts = ["The frobnicator package is maintained by Alice Kowalski.", "Every package has a maintainer.",
             "Packages are built by maintainers.", "Mirrors carry packages."]
    index = KeywordIndex(texts)
    top = index.search({"maintain": 1.0, "frobnicator": 1.0, "package": 1.0}, 2)
    assert top[0][0] == 0 and top[0][1] > top[1][1]
    assert stem("maintainer") == stem("maintained") and stem("packages") == stem("package")
    assert index.coverage(0, ["frobnicator", "package"]) == 1.0 and index.coverage(3, ["frobnicator"]) == 0.0
    assert words("What is the name of it?") == ["name"]


def test_parse_finding_and_quote_check():
    assert parse_finding('{"relevant": true, "answer": "x", "quotes": "q"}') == (True, "x", ["q"])
    assert parse_finding("Not relevant.") == (False, "", [])
    assert parse_finding("It says 7 years.") == (True, "It says 7 years.", [])
    assert quote_in("the  WARRANTY on the model k kettle", NEEDLE)
    assert not quote_in("short", NEEDLE)


async def test_a_chunk_that_fails_twice_is_reported_not_fatal():
    from assistant.errors import ServerError

    doc = long_doc(pages=12, needle_page=2)
    chunks = chunk_document(doc, count, max_tokens=400)
    failing = {1}

    def flaky(messages, tools):
        if "Excerpt 2 of" in messages[-1]["content"] and failing:
            return ServerError("engine hiccup")
        return responder(messages, tools)

    model = ScriptedModel(responder=flaky)
    result = await reader(model, concurrency=1).answer(doc, chunks, "How long is the warranty?")
    assert result.stats["failed"] == 1 and "1 of" in result.answer and "engine hiccup" in result.answer
    assert result.relevant == 1  # the needle on page 2 is in chunk 1
    assert parse_finding('{"relevant": true, "answer": "cut off') == (False, "", [])


async def test_a_chunk_over_the_real_context_is_read_in_halves():
    from assistant.errors import ContextTooLong

    doc = long_doc(pages=8, needle_page=6)
    chunks = chunk_document(doc, count, max_tokens=2000)
    assert len(chunks) == 1  # the whole document in one chunk the server will refuse

    def strict(messages, tools):
        if len(messages[-1]["content"]) > 2500 and messages[-1]["content"].startswith("Excerpt"):
            return ContextTooLong("too long")
        return responder(messages, tools)

    model = ScriptedModel(responder=strict)
    result = await reader(model, concurrency=1).answer(doc, chunks, "How long is the warranty?")
    assert result.relevant == 1 and result.sources == ["[1] manual.pdf p. 6 § Chapter 1"]
