"""The support team's side of the hand-off queue, from a terminal:

    assistant support queue list [--state queued|claimed|resolved]
    assistant support queue show REFERENCE       # the whole packet, as JSON
    assistant support queue claim REFERENCE --by maria
    assistant support queue resolve REFERENCE

It opens the queue the handoff plugin writes ([plugins.handoff] database, by default
handoffs.sqlite in the plugin's data folder), found through the assistant's own settings
(config.toml, ASSISTANT_* variables, --config/--set), so it works wherever `assistant` does.
`python -m assistant_plugins.support.queue_cli ACTION ...` is an alias of `assistant support queue`.
The `support` command itself is declared in commands.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .handoff import STATES, HandoffQueue, HandoffSettings
from .storage import resolve_path


def queue_path(settings=None) -> Path:
    from assistant.settings import load_settings

    settings = settings or load_settings()
    options = HandoffSettings.model_validate(dict(settings.plugins.options.get("handoff", {})))
    return resolve_path(options.database, settings.paths.state() / "plugins" / "handoff" / "handoffs.sqlite")


def add_actions(parser: argparse.ArgumentParser, common: argparse.ArgumentParser | None = None) -> None:
    """The list/show/claim/resolve actions, under `parser` (`assistant support queue`)."""
    parents = [common] if common is not None else []
    sub = parser.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", parents=parents, help="hand-offs, urgent first, then oldest first")
    ls.add_argument("--state", choices=STATES, help="only those in this state (default: all)")
    for name, text in (("show", "print a packet as JSON"), ("claim", "take a hand-off"), ("resolve", "close it")):
        cmd = sub.add_parser(name, parents=parents, help=text)
        cmd.add_argument("reference")
        if name == "claim":
            cmd.add_argument("--by", required=True, help="who takes it")


def work(args: argparse.Namespace, path: Path) -> int:
    """Carry out one parsed action on the queue at `path`; 1 when the queue or reference is missing."""
    if not path.exists():
        print(f"no hand-off queue at {path} yet", file=sys.stderr)
        return 1 if args.queue_command != "list" else 0
    queue = HandoffQueue(path)
    if args.queue_command == "list":
        for row in queue.list(args.state):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created_at"]))
            who = f" ({row['assignee']})" if row["assignee"] else ""
            print(f"{row['reference']}  {when}  {row['state']}{who}  {row['urgency']}  {row['reason']}  "
                  f"{row['email'] or '-'}  {row['summary'][:80]}")
        return 0
    row = queue.get(args.reference)
    if row is None:
        print(f"no hand-off {args.reference!r}", file=sys.stderr)
        return 1
    if args.queue_command == "show":
        print(json.dumps(json.loads(row["packet"]), ensure_ascii=False, indent=2))
        return 0
    queue.set_state(args.reference, "claimed" if args.queue_command == "claim" else "resolved",
                    assignee=getattr(args, "by", None))
    print(f"{args.reference}: {'claimed by ' + args.by if args.queue_command == 'claim' else 'resolved'}")
    return 0


def main(argv: list[str] | None = None, *, path: Path | None = None) -> int:
    """The `python -m` alias: `assistant support queue ARGV...`. With `path` (tests, scripts that
    know the database) the queue there is worked directly, without reading any settings."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if path is None:
        from assistant.plugin_api.plugin_commands import run_as_assistant

        return run_as_assistant(["support", "queue", *argv])
    parser = argparse.ArgumentParser(prog="assistant support queue",
                                     description="Work the hand-off queue of the handoff plugin.")
    add_actions(parser)
    return work(parser.parse_args(argv), path)


if __name__ == "__main__":
    sys.exit(main())
