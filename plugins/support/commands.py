"""The support team's tools: work the hand-off queue.

`assistant support queue list|show|claim|resolve`, declared in the `assistant.commands`
entry-point group like a third-party plugin's command. The queue actions live in queue_cli.py
(also runnable as `python -m assistant_plugins.support.queue_cli`).
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    from .queue_cli import add_actions

    support = subparsers.add_parser(
        "support", parents=[common], help="the support team's tools: the hand-off queue",
        description="Tools for the team behind the customer-service plugins.",
    )  # fmt: skip
    tools = support.add_subparsers(dest="support_command", metavar="TOOL", required=True)
    queue = tools.add_parser(
        "queue", parents=[common], help="work the hand-off queue (list, show, claim, resolve)",
        description="Work the hand-off queue the handoff plugin writes ([plugins.handoff] database).",
    )  # fmt: skip
    add_actions(queue, common)
    return support


def run(args: argparse.Namespace, settings: Any) -> int:
    from .queue_cli import queue_path, work

    if args.support_command == "queue":
        return work(args, queue_path(settings))
    raise AssertionError(args.support_command)  # argparse only lets the tools above through
