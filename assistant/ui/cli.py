"""`assistant chat` (and bare `assistant`): open the terminal UI.

    assistant chat [--session ID] [--model NAME] [--base-url URL]
    python -m assistant.ui.cli [same options]

`run()` lets AssistantErrors from before the UI opens propagate (the main CLI turns them into a
message and an exit code); inside the UI every error is a notification.
"""

from __future__ import annotations

import argparse
import re
import sys
import time


def add_parser(subparsers, common_parent: argparse.ArgumentParser) -> argparse.ArgumentParser:
    chat = subparsers.add_parser(
        "chat",
        parents=[common_parent],
        help="open the terminal UI (also what `assistant` with no command does)",
        description="Chat in the terminal: streamed answers, attachments, tool calls with approval, saved sessions.",
    )
    add_arguments(chat)
    return chat


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session", metavar="ID", help="resume a saved session (an id, a unique prefix or 'last')")


def run(args: argparse.Namespace, settings) -> int:
    from .backend import build_backend

    backend = build_backend(settings, session=getattr(args, "session", None))
    try:
        _probe_terminal_graphics()
        from .app import create_app

        app = create_app(backend)
        app.run()
    finally:
        if getattr(backend, "started_engine", False):
            print("stopping the engine…", file=sys.stderr, flush=True)
        backend.close()
    return app.return_code or 0


def _probe_terminal_graphics() -> None:
    """textual-image asks the terminal which graphics it supports when it is imported; that
    only works before Textual reads stdin, so it is imported here, just before the app runs."""
    if sys.stdout is None or sys.stdin is None or not (sys.stdout.isatty() and sys.stdin.isatty()):
        return
    try:
        import textual_image.widget  # noqa: F401
    except Exception:  # noqa: BLE001 - previews then fall back to a note
        return
    _drain_late_replies()


def _drain_late_replies(timeout: float = 0.5) -> None:
    """textual-image waits 0.1 s for each answer; on a busy machine (or over ssh) an answer can
    come later and would then be read by Textual as typed text. Ask for the cursor position,
    which every terminal answers, and drop everything up to that answer: replies come in order."""
    import os
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        return
    try:
        tty.setcbreak(fd)  # no echo, no line buffering
        os.write(sys.stdout.fileno(), b"\x1b[6n")
        seen = b""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([fd], [], [], left)[0]:
                break
            seen += os.read(fd, 1024)
            if re.search(rb"\x1b\[\d+;\d+R", seen):
                break
    except OSError:
        pass
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.ui.cli [--base-url URL ...]`: the same as `assistant chat ...`, so settings and errors
    are handled in one place (assistant/cli.py)."""
    from assistant.cli import main as assistant_main

    return assistant_main(["chat", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
