"""`assistant batch INPUT --out OUTPUT`: answer a JSONL/CSV file of questions, N at a time.

assistant/cli.py wires it in with `add_parser(subparsers, common)` and `run(args, settings)`;
`python -m assistant.batch.cli INPUT --out OUTPUT ...` runs it on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Iterator

from ..errors import EXIT_INTERRUPTED, EXIT_MODEL, AssistantError, UsageError
from ..settings import BatchSettings, Settings, with_overrides
from .inputs import MODES

DESCRIPTION = """\
Answer every item of INPUT (JSONL, or CSV with a header row) and append one JSON record per
item to OUTPUT as it finishes. Items run concurrently, each as an independent turn (no shared
history), against the local engine (started like `ask` does) or the --base-url server(s).

Item fields: id (required, unique), question (required), attachments (a list; in CSV paths
separated by ';'; relative to INPUT's folder), system, expected (text or a list of accepted
answers), match (exact | normalized | contains | regex | judge). Other fields are copied to the
record's "meta".
"""

EPILOG = """\
OpenAI Batch files: request lines ({"custom_id", "method": "POST", "url": "/v1/chat/completions",
  "body": {"messages": [...], "temperature", "max_tokens", "seed"}}) are read as items (system messages
  -> system, the one user message -> question, image_url parts -> attachments), and the output is
  written as OpenAI Batch output lines ({"id", "custom_id", "response": {"status_code", "body"}, "error"}).
record fields: id, question, answer, tool_calls (name, arguments, result, error, decision),
  citations, usage, latency_s, ttft_s, attempts, error (null or {type, message, hint}), model,
  endpoint, steps, finish_reason, attachments, files, session_id; with an expected answer also expected and
  score {mode, correct}; finished_at.
resume: re-run with the same --out: ids with a successful record are skipped, failed ones are
  retried (unless --no-retry-failed). Ctrl-C keeps every finished record; a line cut off by a
  hard kill is removed on the next run.
tools: approval is non-interactive (approval.* settings decide; the decision is recorded).
reproducible runs: --temperature 0 (greedy), or a --seed: vLLM seeds a generator per request
  from it, so an item's sampling does not depend on the other requests in flight. Bit-identical
  output across runs also needs the same hardware, vLLM version and batch-invariant kernels
  (VLLM_BATCH_INVARIANT=1 on the server), since batch composition changes floating-point sums.
exit codes: 0 every item has a successful record, 3 some items failed (see their records),
  2 bad input/flags, 130 interrupted (re-run to resume).
"""


# Flags left out (None) fall back to the [batch] settings; the help shows the built-in defaults.
B = BatchSettings()
_BATCH_FLAGS = ("concurrency", "score", "max_attempts", "cooldown", "retry_failed", "save_sessions")


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "batch", parents=[_without_option(common, "--base-url")], help="answer a JSONL/CSV file of questions concurrently",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("input", metavar="INPUT", help="items to answer: .jsonl or .csv (other names: sniffed)")
    p.add_argument("-o", "--out", required=True, metavar="OUTPUT", help="JSONL results file; appended to, and resumed from")
    p.add_argument("--format", choices=("jsonl", "csv", "tsv"), help="INPUT's format, when its name does not say "
                   "(OpenAI Batch request lines are JSONL and recognised by their custom_id and body)")
    p.add_argument("--out-format", choices=("records", "openai"),
                   help="OUTPUT's lines: the batch records, or OpenAI Batch output lines (custom_id, response, error; the "
                   "record in an 'assistant' field). Default: openai when INPUT is OpenAI Batch requests, else records")  # fmt: skip
    p.add_argument(
        "-c", "--concurrency", type=_positive(int), metavar="N",
        help=f"items in flight at once (default: batch.concurrency, {B.concurrency}: keeps vLLM's continuous "
        "batching busy on a small model; raise it for a big GPU)",
    )  # fmt: skip
    p.add_argument(
        "--base-url", dest="base_urls", action="append", default=[], metavar="URL",
        help="OpenAI-compatible server; repeat it (or give a comma list) to spread items over several, "
        "least busy first. Default: model.base_url, else the local engine",
    )  # fmt: skip
    p.add_argument(
        "--retry-failed", action=argparse.BooleanOptionalAction,
        help=f"on resume, run again the items whose last record is an error (default: batch.retry_failed, {_yes(B.retry_failed)})",
    )  # fmt: skip
    p.add_argument(
        "--save-sessions", action=argparse.BooleanOptionalAction,
        help=f"save each item as a session (default: batch.save_sessions, {_yes(B.save_sessions)})",
    )  # fmt: skip
    p.add_argument("-s", "--system", help="system prompt for items without their own 'system'")
    p.add_argument(
        "--score", choices=MODES,
        help=f"scoring for items with 'expected' and no 'match' (default: batch.score, {B.score})",
    )  # fmt: skip
    p.add_argument("--report", metavar="FILE", help="also write the summary and score table as Markdown")
    p.add_argument("-t", "--temperature", type=float, help="model.temperature for every item (0: greedy)")
    p.add_argument("--seed", type=int, help="model.seed, sent with every request")
    p.add_argument("--max-tokens", type=_positive(int), help="model.max_tokens for every answer")
    p.add_argument(
        "--extra-body", type=_json_object, metavar="JSON",
        help="fields merged into every chat request, e.g. '{\"ignore_eos\": true, \"top_k\": 1}' (vLLM's extra parameters)",
    )  # fmt: skip
    p.add_argument(
        "--max-attempts", type=_positive(int), metavar="N",
        help=f"tries per item when endpoints fail to connect (default: batch.max_attempts, {B.max_attempts})",
    )  # fmt: skip
    p.add_argument(
        "--cooldown", type=_positive(float), metavar="SECONDS",
        help=f"how long an unreachable endpoint is left out (default: batch.cooldown, {B.cooldown:g}, doubling)",
    )  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line or per-item notes (the summary is still printed)")
    return p


def _without_option(common: argparse.ArgumentParser, option: str) -> argparse.ArgumentParser:
    """`common` minus one option. batch's --base-url repeats, the shared one does not, and
    conflict_handler='resolve' would strip the option from the shared action object (so from
    every other command too); copying the other actions leaves `common` as it is."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("configuration")
    for action in common._actions:
        if option not in action.option_strings:
            group._add_action(action)
    return parent


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"ignore_eos\": true}'")
    return value


# --- running -----------------------------------------------------------------------------------


def apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    """The command's flags on top of the settings: --temperature/--seed/--max-tokens into [model]
    (assistant/cli.py's _settings does the same for `ask`), --concurrency, --score, ... into [batch].
    Checked like every other source (a bad value names the flag's setting)."""
    model = {a: v for a in ("temperature", "seed", "max_tokens") if (v := getattr(args, a, None)) is not None}
    if model.get("temperature", 0) < 0:
        raise UsageError(f"--temperature must be at least 0; got {model['temperature']}")
    batch = {a: v for a in _BATCH_FLAGS if (v := getattr(args, a, None)) is not None}
    return with_overrides(settings, {"model": model, "batch": batch})


def base_urls(args: argparse.Namespace, settings: Settings) -> list[str]:
    raw = list(getattr(args, "base_urls", None) or []) or [settings.model.base_url]
    urls = list(dict.fromkeys(u.strip() for chunk in raw for u in chunk.split(",") if u.strip()))
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--base-url {url!r} is not an http(s) URL", hint="e.g. --base-url http://gpu-box:8000/v1")
    return urls


@contextlib.contextmanager
def open_targets(settings: Settings, urls: list[str], progress: Any) -> Iterator[list]:
    """The servers to use: the given URLs, else the local engine exactly as `ask` opens it
    (reused if running in the background, else started here and stopped on exit)."""
    from ..model.client import ChatClient
    from ..model.endpoint import client_config, open_endpoint, tool_modes
    from .pool import Target

    if urls:
        # With several servers a refused connection fails over at once instead of being retried
        # on the same one; one server keeps model.max_retries.
        retries = settings.model.max_retries if len(urls) == 1 else 0
        native, selection = tool_modes(settings, None)
        targets = []
        for url in urls:
            config = dataclasses.replace(client_config(settings, url), max_retries=retries)
            targets.append(Target(url, partial(ChatClient, config), config.model, config.vision, native, selection))
        yield targets
        return
    with open_endpoint(settings, progress) as endpoint:
        c = endpoint.client
        native, selection = tool_modes(settings, endpoint.spec)
        yield [Target(c.base_url, partial(ChatClient, c), c.model, c.vision, native, selection)]


async def _run_and_close(work, registry) -> None:
    try:
        await work
    finally:
        await registry.aclose()  # MCP servers the items used


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from ..runtime import load_registry, open_store, prompt_library, report_plugin_failures
    from .inputs import read_items
    from .output import ResultsFile
    from .pool import Pool
    from .report import BatchProgress, BatchStats, markdown_report, score_rows, score_table, summary
    from .runner import BatchOptions, BatchRunner

    t0 = time.perf_counter()
    stopped: AssistantError | None = None  # the batch could not go on (every endpoint down)
    settings = apply_flags(settings, args)
    bs = settings.batch
    urls = base_urls(args, settings)
    # Everything that can be wrong with the input fails here, before any engine starts.
    items = read_items(args.input, fmt=args.format, default_match=bs.score)
    progress = BatchProgress(BatchStats(len(items), len(items), 0), quiet=args.quiet)
    openai_out = args.out_format == "openai" or (args.out_format is None and all(i.openai for i in items))
    results = ResultsFile(args.out, openai=openai_out).open(lambda msg: print(msg, file=sys.stderr))
    store = None
    try:
        registry = load_registry(settings)
        if not args.quiet:
            report_plugin_failures(registry, sys.stderr.write)
        options = BatchOptions.from_settings(bs, system=args.system, extra_body=args.extra_body)
        runner = BatchRunner(
            items, results, settings, options=options, retry_failed=bs.retry_failed, registry=registry,
            prompts=prompt_library(settings, registry), progress=progress,
        )  # fmt: skip
        if runner.todo:  # nothing left to do: no engine is started
            store = open_store(settings) if bs.save_sessions else None
            runner.store = store
            with open_targets(settings, urls, progress) as targets:
                progress.clear()
                runner.stats.setup_s = time.perf_counter() - t0
                try:
                    asyncio.run(_run_and_close(runner.run(Pool(targets, cooldown=bs.cooldown)), registry))
                except AssistantError as exc:  # reported after the summary of what was done
                    stopped, runner.stats.interrupted = exc, True
    finally:
        results.close()
        if store is not None:
            store.close()
    stats = runner.stats
    rows = score_rows(items, results.records, bs.score)
    progress.clear()
    print(summary(stats, str(results.path)), file=sys.stderr)
    if rows:
        print("\n" + score_table(rows), file=sys.stderr)
    if args.report:
        models = sorted({r.get("model") for i in items if (r := results.records.get(i.id)) and r.get("model")})
        text = markdown_report(stats, rows, input_path=args.input, out=str(results.path), models=models)
        Path(args.report).expanduser().write_text(text)
    if stopped is not None:
        raise stopped
    if stats.interrupted:
        return EXIT_INTERRUPTED
    return 0 if all(results.succeeded(i.id) for i in items) else EXIT_MODEL


# --- on its own: python -m assistant.batch.cli --------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.batch.cli INPUT --out OUT ...`: the same as `assistant batch ...`, so settings and errors
    are handled in one place (assistant/cli.py)."""
    from assistant.cli import main as assistant_main

    return assistant_main(["batch", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
