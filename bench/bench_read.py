"""Benchmark: reading a long document whole (plugins/documents, read-all) against the engine's raw speed.

For each model (default: the tests' tiny random VLM, then the bundled SmolLM2-135M) a local vLLM
is started and, for PDF documents of about 10/25/50/100 chunks (the Debian FAQ's text set on
A4 pages, repeated as needed), one run interleaves:

  ours    the product's read-all path in-process: load_document, ReadSession (token counts from
          the model's own tokenizer, chunking to fit its context), Reader.answer: every chunk
          asked the question (map, structured JSON, `concurrency` at once), verified quotes,
          the reduce; a fresh map cache per run (written, never hit)
  raw     the same chat requests, byte-identical bodies recorded from `ours`, sent straight to
          the server with httpx: the map requests at the same concurrency, then the reduce
          request(s): the engine's own speed for exactly this work (the ceiling)
  cached  the same question again on the filled map cache (what a repeated/resumed read costs)

and reports seconds, ours/raw, requests and prompt tokens (from the server's /metrics),
seconds per chunk. vLLM's prefix cache is reset before every timed run (VLLM_SERVER_DEV_MODE's
/reset_prefix_cache), so no run reuses the previous run's prompts; within a run the shared
instructions+question prefix is reused, as in real use.

Optional comparisons, on the same server and document:
  --cli      `assistant ask Q --attach PDF --read read-all --base-url URL --json` as a subprocess
             (start-up, attachment handling and the final answer turn included; with --base-url
             the tokenizer folder is unknown, so counts are calibrated through /tokenize and the
             chunk count can differ)
  --qwen P   Qwen-Agent's ParallelDocQA run by the Python P (a separate venv with qwen-agent
             installed) against the same server: map over ~1000-token chunks (its 6 threads,
             0-0.5 s jitter per submission), keyword generation, BM25 re-retrieval, answer.
             Its generate_cfg: temperature 0, max_tokens = our map_max_tokens (the same output
             cap on both sides; without a cap a random-weight model writes until the context
             is full), max_input_tokens = context - max_tokens - margin (its default 58000
             does not fit these models).

Answer quality (--needles N, SmolLM2 by default): a PDF of --needle-chunks chunks with one
invented fact planted on a known page; a hit is an answer containing the fact, and for ours a
cited source on the right page. Reported for ours and Qwen-Agent.

Usage:  python bench/bench_read.py [--models tiny,bundled:smollm2] [--sizes tiny=10,25,50,100 --sizes
          bundled:smollm2=10,25] [--concurrency 8] [--rounds 2] [--cli] [--qwen /tmp/qwenvenv/bin/python]
          [--needles 4] [--needle-model bundled:smollm2] [--needle-chunks 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # for /reset_prefix_cache (inherited by the engine we start)

TEST_CACHE = ROOT / ".cache" / "test-models"
FAQ_GLOB = "/usr/share/doc/debian/FAQ/*.en.html"
QUESTION = "How do I upgrade my Debian system from stable to testing, and what should I check first?"
NEEDLES = [  # (fact sentence, question, what the answer must contain)
    (
        "The backup mirror for the Antarctic research station is called icefloe.example.org.",
        "What is the backup mirror for the Antarctic research station called?",
        "icefloe",
    ),
    (
        "The maintainer of the frobnicator package is Alice Kowalski from Gdansk.",
        "Who is the maintainer of the frobnicator package?",
        "Kowalski",
    ),
    (
        "The emergency help desk for Debian users in Lisbon can be reached at 555-0142.",
        "At what number can Debian users in Lisbon reach the emergency help desk?",
        "555-0142",
    ),
    (
        "The codename of the Debian kettle edition is Marmalade.",
        "What is the codename of the Debian kettle edition?",
        "Marmalade",
    ),
    (
        "The release party for Debian 42 will take place in Reykjavik.",
        "Where will the release party for Debian 42 take place?",
        "Reykjavik",
    ),
    (
        "The official mascot of the Debian lighthouse team is a purple walrus named Oskar.",
        "What is the name of the mascot of the Debian lighthouse team?",
        "Oskar",
    ),
    (
        "The default password for the Debian kiosk demo image is bluepelican7.",
        "What is the default password for the Debian kiosk demo image?",
        "bluepelican7",
    ),
    (
        "The bug triage robot of the Debian QA team is named Gizmo-9.",
        "What is the name of the bug triage robot of the Debian QA team?",
        "Gizmo-9",
    ),
    (
        "The maximum upload size for the experimental queue is 37 megabytes.",
        "What is the maximum upload size for the experimental queue?",
        "37",
    ),
    (
        "Security advisories for the Debian toaster port are signed by Priya Raman.",
        "Who signs the security advisories for the Debian toaster port?",
        "Raman",
    ),
    (
        "The Debian choir rehearses every Thursday at the Ljubljana community hall.",
        "On which day of the week does the Debian choir rehearse?",
        "Thursday",
    ),
    (
        "The Debian archive signing ceremony is held every March in the town of Tromso.",
        "In which town is the Debian archive signing ceremony held?",
        "Tromso",
    ),
]


# --- documents ----------------------------------------------------------------------------


def faq_paragraphs() -> list:
    """The Debian FAQ's paragraphs and headings (as the HTML loader reads them), in order."""
    import glob

    from assistant.documents.loaders import load_document
    from assistant.testing.pdf import Heading

    files = sorted(glob.glob(FAQ_GLOB))
    if not files:
        sys.exit(f"no Debian FAQ at {FAQ_GLOB}: apt-get install -y debian-faq")
    out = []
    for f in files:
        for b in load_document(f).blocks:
            out.append(Heading(b.text, 2) if b.heading else b.text)
    return out


def paginate(paragraphs: list, pages: int, lines_per_page: int = 44) -> list[list]:
    """A4 pages of `lines_per_page` 80-column lines, the FAQ repeated as often as needed."""
    out, page, used, n = [], [], 0, 0
    while len(out) < pages:
        p = paragraphs[n % len(paragraphs)]
        n += 1
        text = getattr(p, "text", p)
        cost = len(text) // 76 + 2
        if page and used + cost > lines_per_page:
            out.append(page)
            page, used = [], 0
        page.append(p)
        used += cost
    return out


def write_pdf(path: Path, pages: list[list], needle: tuple[str, int] | None = None) -> Path:
    from assistant.testing.pdf import make_pdf

    pages = [list(p) for p in pages]
    if needle:
        text, page = needle
        at = pages[page - 1]
        at.insert(len(at) // 2, text)
    path.write_bytes(make_pdf(pages, title="The Debian GNU/Linux FAQ", footer="Page {page}"))
    return path


# --- the server ---------------------------------------------------------------------------


def metrics(base_url: str) -> dict[str, float]:
    text = httpx.get(base_url.removesuffix("/v1") + "/metrics", timeout=30).text
    out: dict[str, float] = {}
    for name in (
        "request_success_total",
        "prompt_tokens_total",
        "generation_tokens_total",
        "prefix_cache_hits_total",
        "prefix_cache_queries_total",
    ):
        out[name] = sum(
            float(m) for m in re.findall(rf"^vllm:{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.MULTILINE)
        )
    return out


def delta(before: dict, after: dict) -> dict:
    return {k: after[k] - before[k] for k in after}


def reset_prefix_cache(base_url: str) -> None:
    r = httpx.post(base_url.removesuffix("/v1") + "/reset_prefix_cache", timeout=60)
    r.raise_for_status()


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests through and keeps the chat request bodies (bytes) in order."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[bytes] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/chat/completions"):
            self.bodies.append(request.content)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def is_map(body: bytes) -> bool:
    msgs = json.loads(body)["messages"]
    return msgs[-1]["role"] == "user" and msgs[-1]["content"].startswith("Excerpt ")


# --- the two paths --------------------------------------------------------------------------


class Ours:
    def __init__(self, settings, state, spec, work: Path, concurrency: int) -> None:
        from assistant.model.endpoint import client_config

        folder = spec.source if spec.kind in ("bundled", "folder") else ""
        self.config = client_config(settings, state.base_url, state.served_name, spec.vision, folder)
        self.work, self.concurrency = work, concurrency
        self.runs = 0

    async def read(
        self, pdf: Path, question: str, cache: Path | None = None, chunk_tokens: int = 0
    ) -> tuple[object, float, list[bytes], int]:
        """(ReadResult, wall seconds incl. loading and chunking, chat bodies sent, chunks)."""
        from assistant.documents.loaders import load_document
        from assistant.model.client import ChatClient
        from plugins.documents import Documents, DocumentsSettings
        from plugins.documents.cache import MapCache
        from plugins.documents.session import ReadSession

        self.runs += 1
        plugin = Documents(
            DocumentsSettings(
                mode="read-all", concurrency=self.concurrency, max_read_chunks=5000, chunk_tokens=chunk_tokens
            ),
            data_dir=self.work / "plugin",
        )
        await plugin.setup()
        plugin._cache = MapCache(cache or self.work / f"map-cache-{self.runs}.sqlite")
        rec = Recorder()
        async with ChatClient(self.config, transport=rec) as client:
            ctx = SimpleNamespace(model=client, emit=lambda event: None, progress=lambda *a: None, turn_text=question)
            t0 = time.perf_counter()
            doc = await asyncio.to_thread(load_document, pdf)
            rs = await ReadSession.open(plugin, ctx)
            await rs.calibrate(doc)
            chunks = await rs.chunks(doc, question, False)
            result = await rs.read(doc, chunks, question, False)
            wall = time.perf_counter() - t0
        plugin._cache.close()
        return result, wall, rec.bodies, len(chunks)


async def raw_replay(base_url: str, bodies: list[bytes], concurrency: int) -> tuple[float, float]:
    """(total seconds, map-only seconds): map bodies at `concurrency`, then the rest in order."""
    maps = [b for b in bodies if is_map(b)]
    rest = [b for b in bodies if not is_map(b)]
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    async with httpx.AsyncClient(timeout=900, limits=limits) as http:

        async def one(body: bytes) -> None:
            async with (
                sem,
                http.stream(
                    "POST", f"{base_url}/chat/completions", content=body, headers={"content-type": "application/json"}
                ) as resp,
            ):
                resp.raise_for_status()
                async for _ in resp.aiter_lines():
                    pass

        t0 = time.perf_counter()
        await asyncio.gather(*(one(b) for b in maps))
        t_map = time.perf_counter() - t0
        for b in rest:
            await one(b)
        return time.perf_counter() - t0, t_map


# --- Qwen-Agent ------------------------------------------------------------------------------

QWEN_RUNNER = r"""
import json, os, sys, time
args = json.loads(sys.argv[1])
os.environ["QWEN_AGENT_DEFAULT_WORKSPACE"] = args["workspace"]
from qwen_agent.agents.doc_qa import ParallelDocQA
if args["rag_tokens"]:  # labelled in the report: its 4500-token retrieval budget does not fit small contexts
    import qwen_agent.agents.doc_qa.parallel_doc_qa as pdq
    pdq.MAX_RAG_TOKEN_SIZE = args["rag_tokens"]
llm = {"model": args["model"], "model_server": args["base_url"], "api_key": "EMPTY",
       "generate_cfg": {"temperature": 0, "max_tokens": args["max_tokens"], "max_input_tokens": args["max_input_tokens"],
                        "max_retries": 0}}
bot = ParallelDocQA(llm=llm)
messages = [{"role": "user", "content": [{"text": args["question"]}, {"file": args["pdf"]}]}]
t0 = time.perf_counter()
last = None
for last in bot.run(messages):
    pass
seconds = time.perf_counter() - t0
answer = last[-1]["content"] if last else ""
if isinstance(answer, list):
    answer = " ".join(str(x.get("text", "")) for x in answer)
print("QWEN_RESULT " + json.dumps({"seconds": seconds, "answer": answer}))
"""


def run_qwen(
    python: str,
    base_url: str,
    model: str,
    pdf: Path,
    question: str,
    work: Path,
    max_tokens: int,
    context: int,
    margin: int,
) -> dict:
    """Qwen-Agent's ParallelDocQA in its own venv. max_input_tokens = context - max_tokens - margin; where
    its fixed 4500-token retrieval budget (MAX_RAG_TOKEN_SIZE) cannot fit that, it is lowered to half of
    it (a change to Qwen-Agent, reported as `rag_tokens`)."""
    max_input_tokens = context - max_tokens - margin
    rag_tokens = 0 if max_input_tokens >= 4500 + 1500 else max(500, max_input_tokens // 2)
    script = work / "qwen_runner.py"
    script.write_text(QWEN_RUNNER)
    ws = Path(tempfile.mkdtemp(prefix="qwen-ws-", dir=work))  # fresh: its parse cache is not reused
    args = {
        "workspace": str(ws),
        "model": model,
        "base_url": base_url,
        "pdf": str(pdf),
        "question": question,
        "max_tokens": max_tokens,
        "max_input_tokens": max_input_tokens,
        "rag_tokens": rag_tokens,
    }
    before = metrics(base_url)
    t0 = time.perf_counter()
    p = subprocess.run(
        [python, str(script), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        cwd=work,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    wall = time.perf_counter() - t0
    used = delta(before, metrics(base_url))
    m = re.search(r"^QWEN_RESULT (.*)$", p.stdout, re.MULTILINE)
    members = re.findall(r"Parallel Member Num: (\d+)", p.stdout + p.stderr)
    info = {
        "wall": wall,
        "members": int(members[0]) if members else None,
        "rag_tokens": rag_tokens,
        "max_input_tokens": max_input_tokens,
        **used,
    }
    if p.returncode != 0 or not m:
        err = [line for line in (p.stderr or p.stdout).strip().splitlines() if line.strip()]
        return {"error": " | ".join(err[-2:])[-400:], **info}
    return {**json.loads(m.group(1)), **info}


# --- the CLI path ----------------------------------------------------------------------------


def run_cli(base_url: str, pdf: Path, question: str, concurrency: int, work: Path) -> dict:
    env = {
        **os.environ,
        "XDG_STATE_HOME": str(work / "cli-state"),
        "XDG_CONFIG_HOME": str(work / "cli-config"),
        "XDG_CACHE_HOME": str(work / "cli-cache"),
    }
    cmd = [
        sys.executable,
        "-m",
        "assistant",
        "ask",
        question,
        "--attach",
        str(pdf),
        "--read",
        "read-all",
        "--base-url",
        base_url,
        "--json",
        "--temperature",
        "0",
        "--set",
        f"plugins.documents.concurrency={concurrency}",
        "--set",
        "plugins.documents.max_read_chunks=5000",
    ]
    before = metrics(base_url)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - t0
    used = delta(before, metrics(base_url))
    if p.returncode != 0:
        return {
            "error": p.stderr.strip().splitlines()[-1][-300:] if p.stderr.strip() else f"exit {p.returncode}",
            "wall": wall,
        }
    att = (json.loads(p.stdout).get("attachments") or [{}])[0]
    m = re.search(r"read all (\d+) parts of .*?: (\d+) relevant, (\d+) s", att.get("title", ""))
    return {
        "wall": wall,
        "chunks": int(m.group(1)) if m else None,
        "reader_s": int(m.group(3)) if m else None,
        "title": att.get("title", ""),
        **used,
    }


# --- one model ---------------------------------------------------------------------------------


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def pages_for(ours: Ours, base_url: str, paragraphs: list, sizes: list[int], work: Path) -> dict[int, int]:
    """Page counts whose PDFs chunk into about each size (measured with the product's chunker)."""
    from assistant.documents.loaders import load_document
    from assistant.model.client import ChatClient
    from plugins.documents import Documents, DocumentsSettings
    from plugins.documents.session import ReadSession

    pages = paginate(paragraphs, max(sizes) * 4)
    pdf = write_pdf(work / "probe.pdf", pages)

    async def chunks():
        plugin = Documents(DocumentsSettings(mode="read-all", cache=False), data_dir=work / "probe")
        await plugin.setup()
        async with ChatClient(ours.config) as client:
            ctx = SimpleNamespace(model=client, emit=lambda e: None, progress=lambda *a: None)
            rs = await ReadSession.open(plugin, ctx)
            doc = load_document(pdf)
            await rs.calibrate(doc)
            return await rs.chunks(doc, QUESTION, False), rs.context

    cs, context = asyncio.run(chunks())
    print(
        f"context {context} tokens; chunks of up to {max(c.tokens for c in cs)} tokens, "
        f"~{len(pages) / len(cs):.1f} pages each",
        file=sys.stderr,
    )
    return {n: max(1, (cs[min(n, len(cs)) - 1].page_end or 1) - (1 if n < len(cs) else 0)) for n in sizes}


def bench_model(model: str, sizes: list[int], args, work: Path, paragraphs: list, needles: int) -> dict:
    from assistant.model.engine import EngineManager
    from assistant.model.models import engine_device, resolve_model
    from assistant.settings import load_settings

    name = model
    if model == "tiny":
        from assistant.testing.tiny_vlm import build_tiny_vlm

        name = str(build_tiny_vlm(TEST_CACHE / "tiny-vlm"))
    settings = load_settings(
        overrides={
            "model": {"name": name},
            "engine": {"cpu_kv_cache_gib": args.kv_cache_gib},
            "paths": {"state_dir": str(work / "state"), "cache_dir": str(TEST_CACHE / "assistant-cache")},
        },
        environ={},
    )
    device = engine_device(settings)
    spec = resolve_model(settings, device, lambda m: print(m, file=sys.stderr))
    manager = EngineManager(settings)
    t0 = time.perf_counter()
    state = manager.start(spec, device, background=False)
    print(f"{model}: engine ready in {time.perf_counter() - t0:.1f} s at {state.base_url}", file=sys.stderr)
    out = {"model": state.served_name, "rows": [], "needles": [], "context": None}
    try:
        ours = Ours(settings, state, spec, work, args.concurrency)
        context = httpx.get(state.base_url + "/models", timeout=30).json()["data"][0].get("max_model_len")
        out["context"] = context
        reset_prefix_cache(state.base_url)  # fails early if the dev endpoint is missing
        page_counts = pages_for(ours, state.base_url, paragraphs, sizes, work) if sizes else {}
        warm = write_pdf(work / "warm.pdf", paginate(paragraphs, 6))
        if sizes:
            asyncio.run(ours.read(warm, QUESTION))  # untimed: first batches, structured-output compile
        for n in sizes:
            pdf = write_pdf(work / f"doc-{n}.pdf", paginate(paragraphs, page_counts[n]))
            load_before = _load()
            runs = {"ours": [], "raw": [], "raw_map": []}
            bodies: list[bytes] = []
            identical = True
            res = chunks = cache = None
            for r in range(args.rounds):
                order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
                for path in order:
                    if path == "raw" and not bodies:
                        continue  # the first round records the bodies before raw can replay them
                    reset_prefix_cache(state.base_url)
                    before = metrics(state.base_url)
                    if path == "ours":
                        cache = work / f"cache-{model.replace(':', '_')}-{n}-{r}.sqlite"
                        res, wall, sent, chunks = asyncio.run(ours.read(pdf, QUESTION, cache))
                        if bodies and [b for b in sent if is_map(b)] != [b for b in bodies if is_map(b)]:
                            identical = False
                        bodies = sent
                        runs["ours"].append((wall, delta(before, metrics(state.base_url)), res))
                    else:
                        total, map_only = asyncio.run(raw_replay(state.base_url, bodies, args.concurrency))
                        runs["raw"].append((total, delta(before, metrics(state.base_url))))
                        runs["raw_map"].append(map_only)
                    print(
                        f"{model} {n} chunks round {r + 1} {path}: {(runs[path][-1][0]):.1f} s (load {_load()})",
                        file=sys.stderr,
                    )
            if len(runs["raw"]) < len(runs["ours"]):  # odd rounds: one more raw so both have the same count
                reset_prefix_cache(state.base_url)
                before = metrics(state.base_url)
                total, map_only = asyncio.run(raw_replay(state.base_url, bodies, args.concurrency))
                runs["raw"].append((total, delta(before, metrics(state.base_url))))
                runs["raw_map"].append(map_only)
            before = metrics(state.base_url)
            again, again_wall, _, _ = asyncio.run(ours.read(pdf, QUESTION, cache))
            cached = (again_wall, delta(before, metrics(state.base_url)), again)
            row = {
                "n": n,
                "chunks": chunks,
                "pages": page_counts[n],
                "runs": runs,
                "cached": cached,
                "identical": identical,
                "load": (load_before, _load()),
            }
            if args.cli:
                reset_prefix_cache(state.base_url)
                row["cli"] = run_cli(state.base_url, pdf, QUESTION, args.concurrency, work)
                print(f"{model} {n} chunks cli: {row['cli']}", file=sys.stderr)
            if args.qwen and n <= args.qwen_max_chunks:
                reset_prefix_cache(state.base_url)
                row["qwen"] = run_qwen(
                    args.qwen, state.base_url, state.served_name, pdf, QUESTION, work, 256, context, args.qwen_margin
                )
                print(
                    f"{model} {n} chunks qwen-agent: { {k: v for k, v in row['qwen'].items() if k != 'answer'} }",
                    file=sys.stderr,
                )
            out["rows"].append(row)
        if needles:
            out["needles"] = needle_test(ours, state, args, work, paragraphs, needles, context)
    finally:
        manager.stop(state)
    return out


def needle_test(ours: Ours, state, args, work: Path, paragraphs: list, n: int, context: int) -> list[dict]:
    results = []
    total_pages = args.needle_pages
    for i, (fact, question, expect) in enumerate(NEEDLES[:n]):
        page = 2 + (i * 5) % max(1, total_pages - 2)
        pdf = write_pdf(
            work / f"needle-{i}.pdf", paginate(paragraphs[40 * i :] + paragraphs[: 40 * i], total_pages), (fact, page)
        )
        row = {"question": question, "expect": expect, "page": page, "ours": {}}
        for size in args.needle_chunk_tokens:
            reset_prefix_cache(state.base_url)
            before = metrics(state.base_url)
            res, wall, _, chunks = asyncio.run(ours.read(pdf, question, chunk_tokens=size))
            used = delta(before, metrics(state.base_url))
            cited = {int(x) for x in re.findall(r"\[(\d+)\]", res.answer)}
            row["ours"][size] = {
                "chunks": chunks,
                "seconds": wall,
                "answer_hit": expect.lower() in res.answer.lower(),
                "page_hit": any(
                    _page_in(line, page)
                    for line in res.sources
                    if not cited or int(re.match(r"\[(\d+)\]", line).group(1)) in cited
                ),
                "map_found": any(
                    expect.lower() in (f.answer + " ".join(f.quotes)).lower() for f in res.findings if f.relevant
                ),
                "relevant": res.relevant,
                "requests": used["request_success_total"],
                "answer": res.answer[:300],
                "sources": res.sources[:4],
            }
        if args.qwen:
            reset_prefix_cache(state.base_url)
            q = run_qwen(
                args.qwen, state.base_url, state.served_name, pdf, question, work, 256, context, args.qwen_margin
            )
            if "error" not in q:
                q["answer_hit"] = expect.lower() in q["answer"].lower()
                q["page_hit"] = bool(re.search(rf"\b(page|p\.)\s*{page}\b", q["answer"], re.IGNORECASE))
                q["answer"] = q["answer"][:300]
            row["qwen"] = q
        print(f"needle {i + 1}: {json.dumps(row)[:800]}", file=sys.stderr)
        results.append(row)
    return results


def _page_in(line: str, page: int) -> bool:
    m = re.search(r"p\. (\d+)(?:-(\d+))?", line)
    return bool(m) and int(m.group(1)) <= page <= int(m.group(2) or m.group(1))


# --- report ------------------------------------------------------------------------------------


def report(results: list[dict], args) -> None:
    print(
        f"\nread-all on {os.cpu_count()} CPU cores; concurrency {args.concurrency}; {args.rounds} interleaved "
        f"round(s) per size (medians); vLLM prefix cache reset before each timed run; question: {QUESTION!r}; "
        f"load (1/5/15 min) at the end: {_load()}\n"
    )
    for res in results:
        print(f"### {res['model']} (context {res['context']} tokens)\n")
        if res["rows"]:
            print(
                "| chunks | pages | ours s | raw s (map+reduce) | raw map-only s | ours/raw | ours/raw (best runs) | s per chunk (ours) "
                "| requests ours/raw | prompt tokens ours/raw | output tokens ours/raw | prefix-cache hit rate "
                "| relevant | cached re-ask s (requests) | identical map bodies | load before -> after |"
            )
            print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---|---|---|")
            for row in res["rows"]:
                ours = statistics.median(w for w, _, _ in row["runs"]["ours"])
                raw = statistics.median(w for w, _ in row["runs"]["raw"])
                raw_map = statistics.median(row["runs"]["raw_map"])
                o_used, r_used = row["runs"]["ours"][-1][1], row["runs"]["raw"][-1][1]
                result = row["runs"]["ours"][-1][2]
                hits = o_used["prefix_cache_hits_total"] / max(1, o_used["prefix_cache_queries_total"])
                cw, cu, _ = row["cached"]
                best = min(w for w, _, _ in row["runs"]["ours"]) / min(w for w, _ in row["runs"]["raw"])
                print(
                    f"| {row['chunks']} | {row['pages']} | {ours:.1f} | {raw:.1f} | {raw_map:.1f} | {ours / raw:.2f} | {best:.2f} "
                    f"| {ours / row['chunks']:.2f} | {o_used['request_success_total']:.0f}/{r_used['request_success_total']:.0f} "
                    f"| {o_used['prompt_tokens_total']:,.0f}/{r_used['prompt_tokens_total']:,.0f} "
                    f"| {o_used['generation_tokens_total']:,.0f}/{r_used['generation_tokens_total']:,.0f} | {hits:.0%} "
                    f"| {result.relevant} | {cw:.1f} ({cu['request_success_total']:.0f}) "
                    f"| {'yes' if row['identical'] else 'NO'} | {row['load'][0]} -> {row['load'][1]} |"
                )
            if any("cli" in row or "qwen" in row for row in res["rows"]):
                print(
                    "\n| chunks (ours) | ours s | `assistant ask` CLI s (its chunks, reader s, requests) "
                    "| Qwen-Agent ParallelDocQA s (its chunks, requests, prompt tokens) | Qwen-Agent/ours |"
                )
                print("|---:|---:|---|---|---:|")
                for row in res["rows"]:
                    ours = statistics.median(w for w, _, _ in row["runs"]["ours"])
                    cli = row.get("cli")
                    q = row.get("qwen")
                    cli_s = (
                        (
                            "error: " + cli["error"]
                            if "error" in cli
                            else f"{cli['wall']:.1f} ({cli['chunks']}, {cli['reader_s']}, {cli['request_success_total']:.0f})"
                        )
                        if cli
                        else "-"
                    )
                    if q and "error" not in q:
                        q_s = f"{q['seconds']:.1f} ({q.get('members')}, {q['request_success_total']:.0f}, {q['prompt_tokens_total']:,.0f})"
                        q_s += f" [retrieval budget {q['rag_tokens']}]" if q.get("rag_tokens") else ""
                        ratio = f"{q['seconds'] / ours:.2f}"
                    else:
                        q_s, ratio = ("error: " + q["error"], "-") if q else ("-", "-")
                    print(f"| {row['chunks']} | {ours:.1f} | {cli_s} | {q_s} | {ratio} |")
        if res["needles"]:
            nd = res["needles"]
            yn = lambda b: "yes" if b else "no"
            sizes = list(nd[0]["ours"])
            label = lambda size: f"ours, chunk_tokens={size or 'auto'}"
            print(
                f"\nNeedles: one invented fact on a known page of a {args.needle_pages}-page PDF of the FAQ's text. "
                "'fact' = the final answer contains it; 'page' = a source the answer cites covers that page; "
                "'map' = some relevant map finding contains it.\n"
            )
            print("| question | page | reader | chunks | fact | page | map | requests | s |")
            print("|---|---:|---|---:|---|---|---|---:|---:|")
            for row in nd:
                for size, o in row["ours"].items():
                    print(
                        f"| {row['question']} | {row['page']} | {label(size)} | {o['chunks']} | {yn(o['answer_hit'])} "
                        f"| {yn(o['page_hit'])} | {yn(o['map_found'])} | {o['requests']:.0f} | {o['seconds']:.1f} |"
                    )
                q = row.get("qwen")
                if q and "error" not in q:
                    print(
                        f"| {row['question']} | {row['page']} | Qwen-Agent ParallelDocQA | {q.get('members')} "
                        f"| {yn(q['answer_hit'])} | {yn(q['page_hit'])} (page named) | - | {q['request_success_total']:.0f} "
                        f"| {q['seconds']:.1f} |"
                    )
                elif q:
                    print(
                        f"| {row['question']} | {row['page']} | Qwen-Agent ParallelDocQA | - | error: {q['error'][:200]} "
                        "| - | - | - | - |"
                    )
            k = len(nd)
            print()
            for size in sizes:
                runs = [r["ours"][size] for r in nd]
                print(
                    f"- {label(size)}: {sum(o['answer_hit'] for o in runs)}/{k} answers contain the fact, "
                    f"{sum(o['answer_hit'] and o['page_hit'] for o in runs)}/{k} also cite its page; "
                    f"median {statistics.median(o['seconds'] for o in runs):.1f} s per question"
                )
            qs = [r["qwen"] for r in nd if r.get("qwen") and "error" not in r["qwen"]]
            if qs:
                print(
                    f"- Qwen-Agent ParallelDocQA: {sum(q['answer_hit'] for q in qs)}/{len(qs)} answers contain the fact; "
                    f"median {statistics.median(q['seconds'] for q in qs):.1f} s per question"
                    + (
                        f" (retrieval budget lowered to {qs[0]['rag_tokens']} tokens to fit the context)"
                        if qs[0].get("rag_tokens")
                        else ""
                    )
                )
            print("\nAnswers:")
            for row in nd:
                print(f"\n- {row['question']} (fact: {row['expect']}, p. {row['page']})")
                for size, o in row["ours"].items():
                    print(f"  - {label(size)}: {o['answer'][:240]!r} sources {o['sources'][:2]}")
                if row.get("qwen"):
                    print(f"  - Qwen-Agent: {(row['qwen'].get('answer') or row['qwen'].get('error', ''))[:240]!r}")
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,bundled:smollm2")
    ap.add_argument(
        "--sizes",
        action="append",
        default=[],
        help="MODEL=N,N,... chunk counts per model (default tiny=10,25,50,100 and bundled:smollm2=10,25)",
    )
    ap.add_argument("--concurrency", type=int, default=8, help="map requests at once (the plugin's default is 8)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--kv-cache-gib", type=int, default=2)
    ap.add_argument("--cli", action="store_true", help="also time `assistant ask --read read-all` per size")
    ap.add_argument("--qwen", default="", help="a Python with qwen-agent installed, e.g. /tmp/qwenvenv/bin/python")
    ap.add_argument("--qwen-max-chunks", type=int, default=100, help="run Qwen-Agent only up to this size")
    ap.add_argument(
        "--qwen-margin",
        type=int,
        default=1024,
        help="max_input_tokens = context - 256 - this (its tokenizer is not the model's)",
    )
    ap.add_argument("--needles", type=int, default=4, help="needle questions (0: none)")
    ap.add_argument("--needle-model", default="bundled:smollm2")
    ap.add_argument("--needle-pages", type=int, default=16)
    ap.add_argument(
        "--needle-chunk-tokens",
        default="0,500",
        help="reader chunk sizes to try on the needles (0: the automatic size)",
    )
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.needle_chunk_tokens = [int(x) for x in args.needle_chunk_tokens.split(",") if x]
    sizes = {"tiny": [10, 25, 50, 100], "bundled:smollm2": [10, 25]}
    for spec in args.sizes:
        m, _, ns = spec.partition("=")
        sizes[m] = [int(x) for x in ns.split(",") if x]
    work = Path(tempfile.mkdtemp(prefix="bench-read-"))
    os.environ["XDG_CONFIG_HOME"] = str(work / "config")  # no user prompt overrides
    paragraphs = faq_paragraphs()
    results = []
    try:
        for model in args.models.split(","):
            needles = args.needles if model == args.needle_model else 0
            results.append(bench_model(model, sizes.get(model, []), args, work, paragraphs, needles))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(results, args)


if __name__ == "__main__":
    main()
