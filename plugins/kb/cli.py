"""Knowledge bases: ingest documents, search them.

`assistant kb ingest|list|search|remove|drop`, registered through the `assistant.commands`
entry-point group (the first line above is its line in `assistant --help`)."""

from __future__ import annotations

import argparse
import json
import sys

from assistant.errors import EXIT_INTERRUPTED, UsageError


def add_parser(subparsers, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    kb = subparsers.add_parser("kb", parents=[common], help="knowledge bases: ingest documents, search them")
    sub = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)
    coll = {"help": "collection name (default: [plugins.kb] collection)"}

    ingest = sub.add_parser("ingest", parents=[common], help="add files and folders (new and changed files only)")
    ingest.add_argument("paths", nargs="+", metavar="PATH", help="files or folders (PDF, DOCX, HTML, Markdown, text)")
    ingest.add_argument("-c", "--collection", **coll)
    ingest.add_argument("--no-sync", action="store_true", help="keep files that vanished from an ingested folder")
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")

    ls = sub.add_parser("list", parents=[common], help="collections, or the files of one")
    ls.add_argument("collection", nargs="?", help="list this collection's files")
    ls.add_argument("--json", action="store_true")

    search = sub.add_parser("search", parents=[common], help="hybrid (vector + BM25) search with citations")
    search.add_argument("query", nargs="+")
    search.add_argument("-c", "--collection", **coll)
    search.add_argument("-k", type=int, default=0, help="how many hits (default: [plugins.kb] k)")
    search.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="filter: source=PATH, kind=pdf|docx|html|markdown|text, section=..., page=N")
    search.add_argument("--mode", choices=("hybrid", "vector", "keyword"), default="hybrid")
    search.add_argument("--json", action="store_true")

    remove = sub.add_parser("remove", parents=[common], help="forget files")
    remove.add_argument("paths", nargs="+", metavar="PATH")
    remove.add_argument("-c", "--collection", **coll)

    drop = sub.add_parser("drop", parents=[common], help="delete a whole collection")
    drop.add_argument("collection")
    drop.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    return kb


def _open(settings):
    from . import KBSettings, open_knowledge_base

    try:
        kb_settings = KBSettings(**settings.plugins.options.get("kb", {}))
    except Exception as exc:  # pydantic's message names the bad key
        raise UsageError(f"invalid [plugins.kb] settings: {exc}") from exc
    return kb_settings, open_knowledge_base(kb_settings, settings.paths.state() / "plugins" / "kb")


def run(args: argparse.Namespace, settings) -> int:
    from assistant.progress import StderrProgress
    from assistant.events import Progress

    kb_settings, kb = _open(settings)
    out = sys.stdout
    name = getattr(args, "collection", None) or kb_settings.collection
    try:
        if args.kb_command == "ingest":
            show = StderrProgress()
            try:
                report = kb.ingest(args.paths, name, progress=lambda m, f: show(Progress("kb", m, f)),
                                   sync=not args.no_sync)
            except KeyboardInterrupt:
                show.clear()
                print("interrupted: every finished batch is kept; run the same command again to resume",
                      file=sys.stderr)
                return EXIT_INTERRUPTED
            show.clear()
            if args.json:
                json.dump(report.__dict__, out, indent=2)
                out.write("\n")
            else:
                out.write(f"{name}: {len(report.added)} added, {len(report.updated)} updated, "
                          f"{len(report.unchanged)} unchanged, {len(report.duplicates)} duplicates, "
                          f"{len(report.removed)} removed, {len(report.failed)} failed; "
                          f"{report.chunks} chunks embedded in {report.seconds:.1f} s\n")
                for path, why in report.failed:
                    out.write(f"  failed: {path}: {why}\n")
            return 2 if report.failed else 0
        if args.kb_command == "list":
            if args.collection:
                rows = kb.files(args.collection)
                if args.json:
                    json.dump(rows, out, indent=2)
                    out.write("\n")
                for r in [] if args.json else rows:
                    state = "" if r["done"] else "  (partial: re-run ingest to finish)"
                    out.write(f"{r['path']}  {r['kind']}  {r['chunks']} chunks{state}\n")
                return 0
            infos = kb.collections()
            if args.json:
                json.dump([i.__dict__ for i in infos], out, indent=2)
                out.write("\n")
            elif not infos:
                out.write("no collections yet: `assistant kb ingest PATH --collection NAME` makes one\n")
            for i in [] if args.json else infos:
                out.write(f"{i.name}  {i.files} files  {i.chunks} chunks\n")
            return 0
        if args.kb_command == "search":
            where = {}
            for item in args.where:
                key, sep, value = item.partition("=")
                if not sep:
                    raise UsageError(f"--where {item!r} is not KEY=VALUE")
                where[key.strip()] = value.strip()
            hits = kb.search(" ".join(args.query), name, k=args.k or kb_settings.k, where=where, mode=args.mode)
            if args.json:
                json.dump([h.__dict__ | {"citation": h.citation()} for h in hits], out, indent=2)
                out.write("\n")
                return 0
            if not hits:
                out.write("no matches\n")
            for n, h in enumerate(hits, 1):
                text = " ".join(h.text.split())
                out.write(f"[{n}] {h.citation()}  (score {h.score:.4f})\n    {text[:300]}{'…' if len(text) > 300 else ''}\n")
            return 0
        if args.kb_command == "remove":
            removed = kb.remove(args.paths, name)
            out.write(f"removed {len(removed)} file(s) from {name}\n")
            return 0
        if args.kb_command == "drop":
            if not args.yes:
                if not sys.stdin.isatty():
                    raise UsageError(f"refusing to drop {args.collection!r} without confirmation", hint="add --yes")
                if input(f"delete collection {args.collection!r} and its index? [y/N] ").strip().lower() not in ("y", "yes"):
                    return 1
            kb.drop(args.collection)
            out.write(f"dropped {args.collection}\n")
            return 0
    finally:
        kb.close()
    return 2
