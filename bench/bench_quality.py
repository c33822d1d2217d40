"""Benchmark: what each bundled model can do, measured through the assistant itself, in one run.

For every model named (default: all bundled ones) the script starts the local vLLM engine the
way `assistant` does (same command, same dtype choice), then runs sets it builds itself:
  vqa      questions about images it draws (shapes, colours, counts, printed digits); only for
           models that take images, else "n/a (text-only)"
  tools    30 prompts across the built-in tools (calculator, clock, notes) and the customer-service
           pack (orders, FAQ, tickets, hand-off), each through a real Dialogue turn with the model's
           own tool selection ("guided" for the bundled models). Success = the expected tool is the
           first one called, its arguments passed schema validation and the prompt's own check, and
           the final answer uses the result (contains a value taken from the tool's result); also
           counted: invented tool names, turns whose answer is raw JSON
  facts    30 factual questions with known answers, asked as a user would in the default chat
           (tools offered): the answer must contain an accepted answer
  needles  facts planted in a generated document, asked with `read-all` (every chunk read)
and the engine's speed: decode tokens/s of one stream, time to first token, peak memory (summed
RSS of the engine's processes), and decode speed as a fraction of the memory-bandwidth ceiling
(bandwidth measured here with a large copy / bytes of weights read per token at the served dtype).

Usage:  python bench/bench_quality.py [--models bundled:qwen2.5-coder-1.5b,...] [--sets tools,facts,needles]
                                      [--concurrency 4] [--limit N] [--json OUT]
Prints a table; results and commands go in bench/RESULTS-quality.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.dialogue.attachments import sniff  # noqa: E402
from assistant.dialogue.turn import Dialogue  # noqa: E402
from assistant.events import ToolCallFinished, ToolCallStarted, TurnFailed, TurnFinished  # noqa: E402
from assistant.model.client import ChatClient  # noqa: E402
from assistant.model.endpoint import client_config, tool_modes  # noqa: E402
from assistant.model.engine import EngineManager, engine_dtype  # noqa: E402
from assistant.model.models import engine_device, resolve_model  # noqa: E402
from assistant.settings import load_settings  # noqa: E402

TEST_CACHE = ROOT / ".cache" / "test-models"
SUPPORT = ["orders", "faq", "tickets", "handoff"]
GENERAL_OFF = ["kb", "imagegen", "documents", "speech"]  # tools a bench prompt never needs; kept short


# --- the sets -------------------------------------------------------------------------------


@dataclass
class ToolCase:
    prompt: str
    tool: str
    args: Callable[[dict], bool] = lambda a: True
    uses: Callable[[str], list[str]] = lambda result: []  # strings of the result one of which the answer must hold
    support: bool = False


def _number(result: str) -> list[str]:
    value = result.rsplit("=", 1)[-1].strip()
    try:
        x = float(value)
    except ValueError:
        return [value]
    forms = {value, f"{x:,.0f}" if x == int(x) else f"{x:.2f}", f"{x:.0f}" if x == int(x) else f"{x:.3f}"[:-1]}
    if x != int(x):
        forms |= {f"{x:.2f}", f"{x:.1f}"}
    return sorted(forms)


def _clock(result: str) -> list[str]:
    m = re.search(r"(\w+day) (\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2})", result)
    if not m:
        return []
    hour, minute = int(m.group(3)), m.group(4)
    h12 = hour % 12 or 12
    return [f"{m.group(3)}:{minute}", f"{hour}:{minute}", f"{h12}:{minute}"]


def _date(result: str) -> list[str]:
    m = re.search(r"(\w+day) (\d{4})-(\d{2})-(\d{2})", result)
    if not m:
        return []
    import calendar

    month = calendar.month_name[int(m.group(3))]
    day = int(m.group(4))
    return [f"{m.group(2)}-{m.group(3)}-{m.group(4)}", f"{month} {day}", f"{day} {month}", f"{day}th of {month}", m.group(1)]


def _weekday(result: str) -> list[str]:
    m = re.search(r"(\w+day) ", result)
    return [m.group(1)] if m else []


def _field(name: str) -> Callable[[str], list[str]]:
    def get(result: str) -> list[str]:
        try:
            data = json.loads(result)
        except ValueError:
            return []
        value = data.get(name) if isinstance(data, dict) else None
        if not value:
            return []
        word = str(value).replace("_", " ")
        # "processing" told as "being processed": the stem counts as using the result.
        stem = word[:-3] if word.endswith("ing") and len(word) > 7 else word
        return sorted({word, stem})

    return get


def _ticket(result: str) -> list[str]:
    m = re.search(r"T-?\d+", result)
    return [m.group(0)] if m else []


def _has(*words: str) -> Callable[[str], list[str]]:
    return lambda result: list(words)


def _arg(key: str, *needles: str) -> Callable[[dict], bool]:
    return lambda a: any(n.lower() in str(a.get(key, "")).lower() for n in needles)


TOOL_CASES = [
    ToolCase("What is 1234 * 5678?", "utilities_calculate", _arg("expression", "1234"), _number),
    ToolCase("Compute 987654321 divided by 3.", "utilities_calculate", _arg("expression", "987654321"), _number),
    ToolCase("What is 2 to the power of 40?", "utilities_calculate", _arg("expression", "40"), _number),
    ToolCase("What is the square root of 98765?", "utilities_calculate", _arg("expression", "98765"), _number),
    ToolCase("Calculate (17 * 23) - 45 / 9 exactly.", "utilities_calculate", _arg("expression", "17"), _number),
    ToolCase("What is 15% of 2480?", "utilities_calculate", _arg("expression", "2480"), _number),
    ToolCase("How much is 3.75 times 19.2?", "utilities_calculate", _arg("expression", "3.75"), _number),
    ToolCase("What time is it in Tokyo right now?", "utilities_current_time", _arg("timezone", "Tokyo"), _clock),
    ToolCase("What is the current time in New York?", "utilities_current_time", _arg("timezone", "New_York"), _clock),
    ToolCase("What is today's date in UTC?", "utilities_current_time", lambda a: True, _date),
    ToolCase("What day of the week is it in Sydney right now?", "utilities_current_time", _arg("timezone", "Sydney"), _weekday),
    ToolCase("Tell me the current time in Berlin.", "utilities_current_time", _arg("timezone", "Berlin"), _clock),
    ToolCase("Save a note titled groceries with the text: buy milk and eggs", "notes_save", _arg("title", "grocer"),
             _has("groceries", "saved")),  # fmt: skip
    ToolCase("Please save a note called 'Wifi' that says the password is tulip42.", "notes_save", _arg("text", "tulip42"),
             _has("saved", "Wifi", "wifi")),  # fmt: skip
    ToolCase("Search my notes for the word dentist.", "notes_search", _arg("query", "dentist"), _has("14 March", "9:30", "Weber")),
    ToolCase("Do I have any notes that mention the plumber?", "notes_search", _arg("query", "plumber"), _has("Friday", "Kowalski")),
    ToolCase("Read my note titled packing list.", "notes_read", _arg("title", "packing"), _has("passport", "charger", "sunscreen")),
    ToolCase("What does my note 'book club' say?", "notes_read", _arg("title", "book club"), _has("Middlemarch", "Tuesday")),
    ToolCase("Where is my order A1002? My email is ana.lima@example.com", "orders_lookup", _arg("order_id", "A1002"),
             _field("status"), True),  # fmt: skip
    ToolCase("What's the status of order A1003? Email: ben.okafor@example.org", "orders_lookup", _arg("order_id", "A1003"),
             _field("status"), True),  # fmt: skip
    ToolCase("What happened to my order A1005? I'm chloe.martin@example.net", "orders_lookup", _arg("order_id", "A1005"),
             _field("status"), True),  # fmt: skip
    ToolCase("Has order A1007 been delivered? My email is emma.schulz@example.de", "orders_lookup", _arg("order_id", "A1007"),
             _field("status"), True),  # fmt: skip
    ToolCase("Check order A1006 for dmitri.volkov@example.com please.", "orders_lookup", _arg("email", "dmitri"),
             _field("status"), True),  # fmt: skip
    ToolCase("How many days do I have to return an item?", "faq_answer", lambda a: True, _has("30"), True),
    ToolCase("Which payment methods do you accept?", "faq_answer", lambda a: True, _has("PayPal", "Visa", "SEPA"), True),
    ToolCase("What are your customer service opening hours?", "faq_answer", lambda a: True, _has("8:00", "18:00", "8 am", "6 pm"), True),
    ToolCase("My order A1001 arrived with the dripper broken. Please open a ticket; my email is ana.lima@example.com",
             "tickets_create", _arg("order_id", "A1001"), _ticket, True),  # fmt: skip
    ToolCase("Please create a support ticket: I was charged twice for order A1009 (chloe.martin@example.net).",
             "tickets_create", _arg("order_id", "A1009"), _ticket, True),  # fmt: skip
    ToolCase("I want to talk to a human agent, please.", "handoff_request", lambda a: True, _has("person", "colleague", "agent", "team"), True),
    ToolCase("This is unacceptable. Get me a manager right now!", "handoff_request", lambda a: True,
             _has("person", "colleague", "agent", "team", "manager"), True),  # fmt: skip
]

NOTES = {
    "dentist": "# dentist\n\nDentist appointment on 14 March at 9:30 with Dr. Weber.\n",
    "plumber": "# plumber\n\nThe plumber (Mr. Kowalski) comes on Friday to fix the kitchen sink.\n",
    "packing_list": "# packing list\n\npassport, phone charger, sunscreen, two books\n",
    "book_club": "# book club\n\nNext meeting Tuesday at 19:00; we read Middlemarch.\n",
}

FACTS = [
    ("What is the capital of France?", ["Paris"]), ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
    ("What is the chemical symbol for gold?", ["Au"]), ("How many continents are there?", ["seven", "7"]),
    ("What planet is known as the Red Planet?", ["Mars"]), ("What is the largest ocean on Earth?", ["Pacific"]),
    ("Who painted the Mona Lisa?", ["Leonardo", "da Vinci"]), ("What is the boiling point of water at sea level in Celsius?", ["100"]),
    ("What is the capital of Japan?", ["Tokyo"]), ("Which gas do plants absorb from the air for photosynthesis?", ["carbon dioxide", "CO2"]),
    ("What is the longest river in Africa?", ["Nile"]), ("How many legs does a spider have?", ["eight", "8"]),
    ("What is the hardest natural substance?", ["diamond"]), ("In which country are the pyramids of Giza?", ["Egypt"]),
    ("What is the freezing point of water in Fahrenheit?", ["32"]), ("Who developed the theory of relativity?", ["Einstein"]),
    ("What is the capital of Italy?", ["Rome"]), ("What language is mainly spoken in Brazil?", ["Portuguese"]),
    ("What is the largest planet in our solar system?", ["Jupiter"]), ("How many days are in a leap year?", ["366"]),
    ("What is the smallest prime number?", ["2", "two"]), ("Which element has the chemical symbol O?", ["oxygen"]),
    ("What is the capital of Canada?", ["Ottawa"]), ("Who was the first person to walk on the Moon?", ["Armstrong"]),
    ("What currency is used in the United Kingdom?", ["pound", "sterling", "GBP"]), ("How many sides does a hexagon have?", ["six", "6"]),
    ("What is the main language of Germany?", ["German"]), ("What is H2O commonly called?", ["water"]),
    ("Which organ pumps blood through the human body?", ["heart"]), ("What is the tallest mountain in the world?", ["Everest"]),
]

NEEDLE_FILLER = (
    "The regional office reviewed its procedures for the year. Teams met every month to discuss schedules, "
    "budgets and the state of the equipment, and most of the discussion concerned routine maintenance. "
)
NEEDLES = [
    ("The backup generator in building C is tested every second Thursday.", "How often is the backup generator in building C tested?", ["second Thursday"]),
    ("The spare key to the server room is kept by Marta Oyelaran.", "Who keeps the spare key to the server room?", ["Marta", "Oyelaran"]),
    ("The annual safety drill was moved to 17 October.", "When is the annual safety drill?", ["17 October", "October 17"]),
]


def needle_document(folder: Path) -> Path:
    parts = []
    for i, (fact, _q, _a) in enumerate(NEEDLES):
        parts.append(f"## Section {i + 1}\n\n" + NEEDLE_FILLER * 3 + fact + " " + NEEDLE_FILLER * 3)
    path = folder / "office-report.md"
    path.write_text("# Office report\n\n" + "\n\n".join(parts))
    return path


def vqa_images(folder: Path) -> list[tuple[Path, str, list[str]]]:
    from PIL import Image, ImageDraw, ImageFont

    cases = []
    img = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(img).ellipse((48, 48, 208, 208), fill="red")
    cases.append((img, "What shape is in this picture, and what colour is it?", ["circle", "red"]))
    img = Image.new("RGB", (256, 256), "white")
    ImageDraw.Draw(img).rectangle((60, 60, 196, 196), fill="blue")
    cases.append((img, "What colour is the square?", ["blue"]))
    img = Image.new("RGB", (384, 128), "white")
    d = ImageDraw.Draw(img)
    for i in range(3):
        d.ellipse((24 + i * 120, 24, 104 + i * 120, 104), fill="green")
    cases.append((img, "How many circles are there?", ["3", "three"]))
    img = Image.new("RGB", (384, 192), "white")
    try:
        font = ImageFont.load_default(size=120)
    except TypeError:
        font = ImageFont.load_default()
    ImageDraw.Draw(img).text((30, 30), "4721", fill="black", font=font)
    cases.append((img, "What number is printed in the image?", ["4721"]))
    out = []
    for i, (im, q, a) in enumerate(cases):
        p = folder / f"vqa{i}.png"
        im.save(p)
        out.append((p, q, a))
    return out


# --- measuring ------------------------------------------------------------------------------


class PeakRSS:
    """Samples the summed RSS of a process group (the engine and its children)."""

    def __init__(self, pgid: int) -> None:
        self.pgid, self.peak, self._stop = pgid, 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            total = 0
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
                    if int(stat[2]) != self.pgid:
                        continue
                    total += int(open(f"/proc/{pid}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
                except (OSError, IndexError, ValueError):
                    continue
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def memory_bandwidth() -> float:
    """Bytes/s of a large copy (read + write counted), the ceiling a decode step can approach."""
    import numpy as np

    a = np.ones(256 * 2**20 // 8)
    b = np.empty_like(a)
    np.copyto(b, a)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(b, a)
        best = max(best, 2 * a.nbytes / (time.perf_counter() - t))
    return best


def weight_bytes_per_token(folder: Path, dtype_bytes: int) -> int:
    """Bytes of weights a decode step reads: every tensor but the embedding table (one row per token)."""
    from safetensors import safe_open

    total = 0
    for f in folder.glob("*.safetensors"):
        with safe_open(str(f), "np") as st:
            for k in st.keys():
                if "embed_tokens" in k:
                    continue
                n = 1
                for d in st.get_slice(k).get_shape():
                    n *= d
                total += n * dtype_bytes
    return total


@dataclass
class Outcome:
    ok: bool
    detail: str
    seconds: float = 0.0
    invented: bool = False
    raw_json: bool = False


async def run_turn(client, settings, registry, prompts, text, *, native, selection, attachments=()):
    dialogue = Dialogue(client, settings=settings, registry=registry, prompts=prompts, approver=None,
                        model_accepts_images=None, native_tools=native, tool_selection=selection)  # fmt: skip
    calls, finished, failed = [], None, None
    async for e in dialogue.turn(text, attachments):
        if isinstance(e, ToolCallStarted):
            calls.append({"name": e.name, "arguments": e.arguments})
        elif isinstance(e, ToolCallFinished):
            calls[-1].update(result=e.result, error=e.error)
        elif isinstance(e, TurnFinished):
            finished = e
        elif isinstance(e, TurnFailed):
            failed = e
    return calls, finished, failed


def contains(text: str, options: list[str]) -> bool:
    low = text.lower()
    return any(o.lower() in low for o in options)


async def tool_case(case: ToolCase, ctx: dict) -> Outcome:
    registry = ctx["support_registry"] if case.support else ctx["registry"]
    settings = ctx["support_settings"] if case.support else ctx["settings"]
    calls, fin, failed = await run_turn(ctx["client"], settings, registry, ctx["prompts_support" if case.support else "prompts"],
                                        case.prompt, native=ctx["native"], selection=ctx["selection"])  # fmt: skip
    return judge_tool_case(case, registry, calls, fin, failed)


def judge_tool_case(case: ToolCase, registry, calls: list[dict], fin, failed) -> Outcome:
    if failed:
        return Outcome(False, f"failed: {str(failed.error).splitlines()[0]}")
    answer = fin.text if fin else ""
    invented = any(c["name"] not in registry.tools for c in calls)
    raw = answer.strip().startswith(("{", "```json", "<tool_call>"))
    if not calls:
        return Outcome(False, f"no call; answer {answer[:60]!r}", raw_json=raw)
    if raw:
        return Outcome(False, f"answer is raw JSON: {answer[:60]!r}", invented=invented, raw_json=raw)
    first = calls[0]
    if first["name"] != case.tool:
        return Outcome(False, f"called {first['name']}", invented=invented, raw_json=raw)
    if first.get("error") and "_raw" in first["arguments"]:
        return Outcome(False, "invalid arguments", invented=invented, raw_json=raw)
    if not case.args(first["arguments"]):
        return Outcome(False, f"arguments {json.dumps(first['arguments'])[:80]}", invented=invented, raw_json=raw)
    wanted = case.uses(first.get("result") or "")
    if wanted and not contains(answer, wanted):
        return Outcome(False, f"answer does not use the result ({wanted[:2]}): {answer[:80]!r}", invented=invented, raw_json=raw)
    return Outcome(True, "ok", invented=invented, raw_json=raw)


async def fact_case(q: str, accepted: list[str], ctx: dict) -> Outcome:
    calls, fin, failed = await run_turn(ctx["client"], ctx["settings"], ctx["registry"], ctx["prompts"], q,
                                        native=ctx["native"], selection=ctx["selection"])  # fmt: skip
    if failed:
        return Outcome(False, f"failed: {str(failed.error).splitlines()[0]}")
    answer = fin.text if fin else ""
    return Outcome(contains(answer, accepted), f"{'+' if calls else ''}{answer[:70]!r}")


async def needle_case(doc: Path, q: str, accepted: list[str], ctx: dict) -> Outcome:
    att = sniff(doc)
    calls, fin, failed = await run_turn(ctx["client"], ctx["doc_settings"], ctx["doc_registry"], ctx["prompts_doc"], q,
                                        native=ctx["native"], selection=ctx["selection"], attachments=[att])  # fmt: skip
    if failed:
        return Outcome(False, f"failed: {str(failed.error).splitlines()[0]}")
    answer = fin.text if fin else ""
    return Outcome(contains(answer, accepted), answer[:80])


async def vqa_case(path: Path, q: str, accepted: list[str], ctx: dict) -> Outcome:
    att = sniff(path)
    calls, fin, failed = await run_turn(ctx["client"], ctx["plain_settings"], ctx["plain_registry"], None, q,
                                        native=ctx["native"], selection=ctx["selection"], attachments=[att])  # fmt: skip
    if failed:
        return Outcome(False, f"failed: {str(failed.error).splitlines()[0]}")
    answer = fin.text if fin else ""
    return Outcome(all(contains(answer, [a]) for a in accepted[:1]) and contains(answer, accepted), answer[:80])


async def gather_limited(coros, limit: int, label: str, names: list[str] | None = None):
    """Run at most `limit` at once; print each outcome as it finishes (with its name: they finish in any order)."""
    sem = asyncio.Semaphore(limit)
    done = 0

    async def one(c, name):
        nonlocal done
        async with sem:
            t = time.perf_counter()
            out = await c
            out.seconds = time.perf_counter() - t
            done += 1
            print(f"    {label} {done}: {'ok ' if out.ok else 'no '} {name}{out.detail}", file=sys.stderr, flush=True)
            return out

    coros = list(coros)
    return await asyncio.gather(*(one(c, f"[{n}] " if n else "") for c, n in zip(coros, names or [""] * len(coros))))


async def speed(client) -> dict:
    """One stream: time to first token on a short prompt, and decode tokens/s over 64 tokens."""
    msgs = [{"role": "user", "content": "Count from one to one hundred in words, separated by commas."}]
    await client.chat(msgs, max_tokens=4, temperature=0)  # warm
    comp = await client.chat(msgs, max_tokens=64, temperature=0, extra={"ignore_eos": True})
    ttft = comp.timings.time_to_first_token_s or 0.0
    decode = (comp.usage.completion_tokens - 1) / max(1e-6, comp.timings.total_s - ttft)
    return {"ttft_s": ttft, "decode_tps": decode}


# --- one model ------------------------------------------------------------------------------


def settings_for(cache: Path, state: Path, model: str, **extra) -> Any:
    overrides = {"model": {"name": model, "temperature": 0.0, "max_tokens": 256},
                 "engine": {"cpu_kv_cache_gib": 2},
                 "paths": {"state_dir": str(state), "cache_dir": str(cache)},
                 "approval": {"side_effects": "auto"}}  # fmt: skip
    for section, values in extra.items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(overrides=overrides, environ={})


async def bench_model(name: str, args, cache: Path, bandwidth: float) -> dict:
    from assistant.runtime import load_registry, prompt_library

    state = Path(tempfile.mkdtemp(prefix="bench-quality-"))
    base = settings_for(cache, state, name)
    device = engine_device(base)
    spec = resolve_model(base, device, lambda m: print(f"  {m}", file=sys.stderr))
    native, selection = tool_modes(base, spec)
    manager = EngineManager(base)
    t0 = time.perf_counter()
    st = manager.start(spec, device, background=bool(args.reuse_engine))  # background: found or left running
    startup = time.perf_counter() - t0
    rss = PeakRSS(st.pid)
    row: dict[str, Any] = {"model": name, "startup_s": startup, "dtype": engine_dtype(base.engine.dtype, device) or "model's"}
    try:
        config = client_config(base, st.base_url, st.served_name, spec.vision, spec.source)
        async with ChatClient(config) as client:
            general = settings_for(cache, state, name, plugins={"disabled": GENERAL_OFF})
            support = settings_for(cache, state, name, plugins={"enabled": SUPPORT, "disabled": GENERAL_OFF + ["notes", "utilities"]},
                                   dialogue={"system_prompt": "support_agent"})  # fmt: skip
            docs = settings_for(cache, state, name, plugins={"disabled": ["kb", "imagegen", "speech", "notes", "utilities"],
                                                            "documents": {"mode": "read-all"}})  # fmt: skip
            plain = settings_for(cache, state, name, plugins={"disabled": GENERAL_OFF + ["notes", "utilities"]})
            reg = load_registry(general)
            notes_dir = reg.plugins["notes"].data_dir
            notes_dir.mkdir(parents=True, exist_ok=True)
            for slug, text in NOTES.items():
                (notes_dir / f"{slug}.md").write_text(text)
            ctx = {"client": client, "native": native, "selection": selection,
                   "settings": general, "registry": reg, "prompts": prompt_library(general, reg)}  # fmt: skip
            sreg = load_registry(support)
            ctx.update(support_settings=support, support_registry=sreg, prompts_support=prompt_library(support, sreg))
            dreg = load_registry(docs)
            ctx.update(doc_settings=docs, doc_registry=dreg, prompts_doc=prompt_library(docs, dreg))
            preg = load_registry(plain)
            ctx.update(plain_settings=plain, plain_registry=preg)
            row.update(await speed(client))
            sets = args.sets.split(",")
            lim = args.limit or None
            if "vqa" in sets:
                if spec.vision:
                    folder = Path(tempfile.mkdtemp())
                    outs = await gather_limited([vqa_case(p, q, a, ctx) for p, q, a in vqa_images(folder)[:lim]], args.concurrency, "vqa")
                    row["vqa"] = (sum(o.ok for o in outs), len(outs))
                else:
                    row["vqa"] = None
            if "tools" in sets:
                cases = [TOOL_CASES[int(n) - 1] for n in args.cases.split(",")] if args.cases else TOOL_CASES[:lim]
                outs = await gather_limited([tool_case(c, ctx) for c in cases], args.concurrency, "tools", [c.prompt[:32] for c in cases])
                row["tools"] = (sum(o.ok for o in outs), len(outs))
                row["tools_invented"] = sum(o.invented for o in outs)
                row["tools_raw_json"] = sum(o.raw_json for o in outs)
                row["tools_s"] = statistics.median(o.seconds for o in outs)
                row["tools_failures"] = [f"{c.prompt[:40]}: {o.detail}" for c, o in zip(cases, outs) if not o.ok]
            if "facts" in sets:
                outs = await gather_limited([fact_case(q, a, ctx) for q, a in FACTS[:lim]], args.concurrency, "facts")
                row["facts"] = (sum(o.ok for o in outs), len(outs))
                row["facts_failures"] = [f"{q}: {o.detail}" for (q, _), o in zip(FACTS, outs) if not o.ok]
            if "needles" in sets:
                doc = needle_document(Path(tempfile.mkdtemp()))
                outs = await gather_limited([needle_case(doc, q, a, ctx) for _f, q, a in NEEDLES[:lim]], 1, "needles")
                row["needles"] = (sum(o.ok for o in outs), len(outs))
                row["needles_s"] = statistics.median(o.seconds for o in outs)
    finally:
        if not args.reuse_engine:
            manager.stop(st)
        row["peak_gib"] = rss.stop() / 2**30
    dtype_bytes = 4 if row["dtype"] == "float32" else 2
    per_token = weight_bytes_per_token(Path(spec.source), dtype_bytes)
    row["ceiling_tps"] = bandwidth / per_token
    row["bandwidth_fraction"] = row["decode_tps"] / row["ceiling_tps"]
    return row


def fmt(pair) -> str:
    if pair is None:
        return "n/a (text-only)"
    ok, n = pair
    return f"{ok}/{n} ({ok / n:.0%})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="bundled:qwen2.5-coder-1.5b,bundled:qwen2.5-coder-0.5b,bundled:smollm2")
    parser.add_argument("--sets", default="vqa,tools,facts,needles")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--limit", type=int, default=0, help="only the first N of each set (a quick look)")
    parser.add_argument("--json", help="also write the rows here")
    parser.add_argument("--cases", help="only these tool prompts (1-based numbers, e.g. 4,6,16): a quick look at some")
    parser.add_argument("--reuse-engine", action="store_true",
                        help="use (or start and leave running) the background engine, as `assistant engine start` does")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = Path(os.environ.get("ASSISTANT_PATHS__CACHE_DIR") or TEST_CACHE / "assistant-cache")
    bandwidth = memory_bandwidth()
    print(f"memory bandwidth (copy): {bandwidth / 1e9:.1f} GB/s; cpu: {os.cpu_count()} cores", file=sys.stderr)
    rows = []
    for name in args.models.split(","):
        print(f"== {name}", file=sys.stderr, flush=True)
        rows.append(asyncio.run(bench_model(name, args, cache, bandwidth)))
        if args.json:  # after every model, so a later failure keeps what was measured
            Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    head = ["model", "dtype", "VQA", "tool calls", "invented/raw JSON", "facts", "needles (read-all)", "decode tok/s",
            "TTFT s", "peak GiB", "ceiling tok/s", "of ceiling", "start s"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["model"], r["dtype"], fmt(r.get("vqa")) if "vqa" in r else "-", fmt(r["tools"]) if "tools" in r else "-",
                 f"{r.get('tools_invented', 0)}/{r.get('tools_raw_json', 0)}", fmt(r["facts"]) if "facts" in r else "-",
                 fmt(r["needles"]) if "needles" in r else "-", f"{r['decode_tps']:.1f}", f"{r['ttft_s']:.2f}",
                 f"{r['peak_gib']:.1f}", f"{r['ceiling_tps']:.1f}", f"{r['bandwidth_fraction']:.0%}", f"{r['startup_s']:.0f}"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        for key in ("tools_failures", "facts_failures"):
            for line in r.get(key, []):
                print(f"  {r['model']} {key.split('_')[0]} miss: {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
