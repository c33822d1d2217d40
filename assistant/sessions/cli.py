"""`assistant sessions ...`: list, show, export, delete and rename saved conversations.

`run()` lets AssistantErrors propagate; the main CLI turns them into messages and exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import UsageError


def add_parser(subparsers, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    sessions = subparsers.add_parser("sessions", parents=[common_parent], help="saved conversations")
    sub = sessions.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    id_help = "session id, any unique prefix of it, or 'last'"

    ls = sub.add_parser("list", parents=[common_parent], help="the most recently updated sessions")
    ls.add_argument("-n", "--limit", type=int, default=50, help="how many (default 50)")
    ls.add_argument("--json", action="store_true", help="one JSON array")

    show = sub.add_parser("show", parents=[common_parent], help="print a session's messages and tool calls")
    show.add_argument("id", help=id_help)

    export = sub.add_parser(
        "export", parents=[common_parent], help="write a session as Markdown, JSON, or a replayable test scenario"
    )
    export.add_argument("id", help=id_help)
    export.add_argument(
        "--format", choices=("markdown", "json", "scenario"), default="markdown",
        help="scenario: a JSON scenario whose scripted replies are the recorded answers (assistant.testing.scenarios)",
    )
    export.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    export.add_argument(
        "--embed-attachments", action="store_true", help="json: include attachment bytes (base64), not only hashes"
    )

    delete = sub.add_parser("delete", parents=[common_parent], help="delete a session and the attachments only it used")
    delete.add_argument("id", help=id_help)
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    rename = sub.add_parser("rename", parents=[common_parent], help="set a session's title")
    rename.add_argument("id", help=id_help)
    rename.add_argument("title", nargs="+", help="the new title")
    return sessions


def open_store(settings):
    from .store import SessionStore

    state = settings.paths.state()
    return SessionStore(state / "sessions.db", state / "attachments")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _cmd_list(store, args) -> int:
    rows = store.list_sessions(limit=args.limit)
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(r) for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("no saved sessions yet")
        return 0
    print(f"{'ID':22}  {'UPDATED':16}  {'MSGS':>4}  {'MODEL':20}  TITLE")
    for r in rows:
        title = r.title or (f"({r.preview})" if r.preview else "(untitled)")
        marks = "  [" + ", ".join(f"{k}={v}" for k, v in r.marks.items()) + "]" if r.marks else ""
        print(f"{r.id:22}  {_when(r.updated_at):16}  {r.message_count:>4}  {_one_line(r.model, 20):20}  {title}{marks}")
    return 0


def _cmd_show(store, args) -> int:
    from .export import content_markdown

    sid = store.resolve(args.id)
    s = store.get_session(sid)
    print(f"{s.id}  {s.title or '(untitled)'}")
    print(f"model {s.model or '-'}; created {_when(s.created_at)}, updated {_when(s.updated_at)}")
    if s.marks:
        print("marks: " + ", ".join(f"{k}={v}" for k, v in s.marks.items()))
    records = {r["call_id"]: r for r in store.tool_calls(sid)}
    for msg in store.messages(sid):
        print(f"\n[{msg['role']}{': ' + msg['name'] if msg['name'] else ''}]")
        text = content_markdown(store, msg["content"])
        if text:
            print(text)
        for sha in msg["attachments"]:
            info = store.attachment_info(sha) or {}
            print(f"  attachment: {info.get('filename') or sha[:12]} ({info.get('mime', '?')})")
        for call in msg["tool_calls"] or []:
            fn = call.get("function", {})
            rec = records.get(call.get("id"))
            decision = f" [{rec['risk']}, {rec['decision']}]" if rec else ""
            print(f"  → {fn.get('name')}({_one_line(fn.get('arguments') or '', 200)}){decision}")
            if rec and rec["error"]:
                print(f"    error: {_one_line(rec['error'], 200)}")
    t = store.usage_totals(sid)
    print(
        f"\n{t['messages']} messages, {t['tool_calls']} tool calls, "
        f"{t['prompt_tokens']} prompt + {t['completion_tokens']} completion tokens"
    )
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """A half-written export never replaces a good file of the same name."""
    from ..atomic_folder import write_file_atomic

    path = path.expanduser()
    try:
        write_file_atomic(path, text.encode("utf-8"))
    except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
        raise UsageError(f"cannot write {path}: {exc}", hint="check that the folder exists and is writable") from None


def _cmd_export(store, args, settings=None) -> int:
    from .export import export_json, export_markdown, export_scenario

    sid = store.resolve(args.id)
    if args.format == "json":
        dump = export_json(store, sid, embed_attachments=args.embed_attachments)
        text = json.dumps(dump, ensure_ascii=False, indent=2) + "\n"
    elif args.format == "scenario":
        from ..runtime import load_registry

        # Which plugins the replay needs (nothing is set up: only names are looked at).
        scenario = export_scenario(store, sid, registry=load_registry(settings) if settings else None)
        text = json.dumps(scenario, ensure_ascii=False, indent=2) + "\n"
    else:
        text = export_markdown(store, sid)
    if args.out and args.out != "-":
        _write_atomically(Path(args.out), text)
        print(f"exported {sid} to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_delete(store, args) -> int:
    sid = store.resolve(args.id)
    s = store.get_session(sid)
    label = f"{sid} ({s.title or s.preview or 'untitled'}, {s.message_count} messages)"
    if not args.yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise UsageError(f"not deleting {label} without confirmation", hint="pass --yes to delete without asking")
        answer = input(f"Delete session {label}? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("not deleted")
            return 0
    store.delete(sid)
    print(f"deleted {label}")
    return 0


def _cmd_rename(store, args) -> int:
    sid = store.resolve(args.id)
    title = " ".join(args.title).strip()
    store.rename(sid, title)
    print(f"{sid} is now titled {title!r}")
    return 0


def run(args: argparse.Namespace, settings) -> int:
    handler = {
        "list": _cmd_list, "show": _cmd_show, "export": _cmd_export, "delete": _cmd_delete, "rename": _cmd_rename,
    }[args.sessions_command]  # fmt: skip
    store = open_store(settings)
    try:
        if args.sessions_command == "export":
            return _cmd_export(store, args, settings)
        return handler(store, args)
    finally:
        store.close()
