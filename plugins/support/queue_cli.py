"""The support team's side of the hand-off queue, from a terminal:

    python -m assistant_plugins.support.queue_cli list [--state queued|claimed|resolved]
    python -m assistant_plugins.support.queue_cli show REFERENCE       # the whole packet, as JSON
    python -m assistant_plugins.support.queue_cli claim REFERENCE --by maria
    python -m assistant_plugins.support.queue_cli resolve REFERENCE

It opens the queue the handoff plugin writes ([plugins.handoff] database, by default
handoffs.sqlite in the plugin's data folder), found through the assistant's own settings
(config.toml, ASSISTANT_* variables), so it works wherever `assistant` does.
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


def main(argv: list[str] | None = None, *, path: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant_plugins.support.queue_cli",
                                     description="Work the hand-off queue of the handoff plugin.")
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="hand-offs, urgent first, then oldest first")
    ls.add_argument("--state", choices=STATES, help="only those in this state (default: all)")
    for name, text in (("show", "print a packet as JSON"), ("claim", "take a hand-off"), ("resolve", "close it")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("reference")
        if name == "claim":
            cmd.add_argument("--by", required=True, help="who takes it")
    args = parser.parse_args(argv)
    path = path or queue_path()
    if not path.exists():
        print(f"no hand-off queue at {path} yet", file=sys.stderr)
        return 1 if args.command != "list" else 0
    queue = HandoffQueue(path)
    if args.command == "list":
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
    if args.command == "show":
        print(json.dumps(json.loads(row["packet"]), ensure_ascii=False, indent=2))
        return 0
    queue.set_state(args.reference, "claimed" if args.command == "claim" else "resolved",
                    assignee=getattr(args, "by", None))
    print(f"{args.reference}: {'claimed by ' + args.by if args.command == 'claim' else 'resolved'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
