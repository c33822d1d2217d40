"""The `assistant` command. Heavy libraries are imported inside the commands that need them."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import time
from typing import NamedTuple

from . import errors
from .command_discovery import PluginCommand, discover_commands, find_module_file, help_line
from .errors import AssistantError


class Command(NamedTuple):
    module: str  # has add_parser(subparsers, common) and run(args, settings)
    help: str  # the line in `assistant --help`; the module itself is only imported when it is used


# The core's commands that live next to the code they drive: `assistant --help` lists each with a
# stub parser, and only the command being run (or asked for --help) has its module imported and its
# real parser built, so `assistant config path` does not pay for pydantic, asyncio or a package it
# does not use. Plugins add theirs the same lazy way through the `assistant.commands` entry-point
# group (below); the built-in kb, imagine and support commands are declared there, in pyproject.toml.
_COMMAND_MODULES = {
    "plugins": Command("assistant.plugin_api.commands", "list, check and create plugins"),
    "sessions": Command("assistant.sessions.cli", "saved conversations"),
    "batch": Command("assistant.batch.cli", "answer a JSONL/CSV file of questions concurrently"),
    "mcp": Command("assistant.mcp.cli", "MCP servers: add, list, test them; serve the assistant's tools over MCP"),
    "serve": Command("assistant.serve.cli", "the assistant as an OpenAI-compatible HTTP server"),
    "chat": Command("assistant.ui.cli", "open the terminal UI (also what `assistant` with no command does)"),
}
_CORE = ("ask", "engine", "models", "config", *_COMMAND_MODULES)


def _available_dotted(name: str) -> bool:
    """Whether a command's module is installed (the speech/imagegen extras are optional)."""
    return find_module_file(name) is not None


class _PluginIndex(NamedTuple):
    commands: dict[str, PluginCommand]  # by name; for a clashing name, its first declaration
    clashes: dict[str, list[PluginCommand]]  # a name the core has or several declare -> its declarations


def _index(found: list[PluginCommand]) -> _PluginIndex:
    commands: dict[str, PluginCommand] = {}
    declared: dict[str, list[PluginCommand]] = {}
    for cmd in found:
        commands.setdefault(cmd.name, cmd)
        declared.setdefault(cmd.name, []).append(cmd)
    clashes = {name: cmds for name, cmds in declared.items() if name in _CORE or len(cmds) > 1}
    return _PluginIndex(commands, clashes)


def clash_sources(name: str, declarations: list[PluginCommand]) -> str:
    core = ["the core command (assistant/cli.py)"] if name in _CORE else []
    return "; ".join(core + [cmd.describe() for cmd in declarations])


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="extra config.toml to read (also $ASSISTANT_CONFIG)")
    g.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=argparse.SUPPRESS,
        help="override one setting, e.g. --set model.temperature=0 (repeatable)",
    )  # fmt: skip
    g.add_argument("--model", default=argparse.SUPPRESS, help="model.name: hub id, folder, preset or 'bundled:smollm2'")
    g.add_argument("--base-url", default=argparse.SUPPRESS, help="model.base_url: use this OpenAI-compatible server")
    return p


def _epilog(clashes: dict[str, list[PluginCommand]]) -> str:
    epilog = "exit codes: 0 ok, 1 internal error, 2 usage/config/input error, 3 model/engine error, 130 interrupted"
    if not clashes:
        return epilog
    import textwrap

    warnings = [f"warning: `assistant {name}` is declared more than once and will not run: " + clash_sources(name, cmds)
                for name, cmds in clashes.items()]  # fmt: skip
    return "\n\n".join(textwrap.fill(text, 100, subsequent_indent="  ", break_on_hyphens=False)
                       for text in [epilog, *warnings])  # fmt: skip


def build_parser(command: str | None = None, plugins: _PluginIndex | None = None) -> argparse.ArgumentParser:
    """The whole CLI. Commands from _COMMAND_MODULES and plugins get a stub that takes any
    arguments, except `command`, whose module is imported to add its real parser."""
    plugins = plugins or _index(discover_commands())
    common = _common()
    parser = argparse.ArgumentParser(
        prog="assistant",
        description="A multimodal assistant on a local vLLM engine.",
        parents=[common],
        epilog=_epilog(plugins.clashes),
        # Clash warnings are paragraphs of their own, which the default formatter would join.
        formatter_class=argparse.RawDescriptionHelpFormatter if plugins.clashes else argparse.HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", parents=[common], help="ask one question; the answer streams to stdout")
    ask.add_argument("question", nargs="*", help="the question; '-' or nothing reads it from stdin")
    ask.add_argument("-i", "--image", action="append", default=[], metavar="PATH", help="attach an image (repeatable)")
    ask.add_argument(
        "-a", "--attach", action="append", default=[], metavar="PATH",
        help="attach any file: image, audio, document, text; typed by its content (repeatable)",
    )  # fmt: skip
    ask.add_argument("--session", metavar="ID", help="continue a saved session (an id or unique prefix)")
    ask.add_argument("--no-save", action="store_true", help="do not save this conversation")
    ask.add_argument(
        "--read", choices=("auto", "inline", "read-all", "retrieve"),
        help="how attached documents reach the model: whole text, every chunk read (map-reduce), or "
        "the closest passages (default: plugins.documents.mode, 'auto')",
    )
    ask.add_argument("--tool", metavar="NAME", help="make the model call this tool first (e.g. utilities_calculate)")
    ask.add_argument("-s", "--system", help="system prompt")
    ask.add_argument("--json", action="store_true", help="print one JSON object with answer, usage and timings")
    ask.add_argument("-t", "--temperature", type=float, help="model.temperature for this question")
    ask.add_argument("--max-tokens", type=int, help="model.max_tokens for this question")
    ask.add_argument("--seed", type=int, help="model.seed for this question")
    ask.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")

    engine = sub.add_parser("engine", parents=[common], help="run a local vLLM engine in the background")
    esub = engine.add_subparsers(dest="engine_command", metavar="ACTION", required=True)
    esub.add_parser("start", parents=[common], help="start (or reuse) the background engine")
    status = esub.add_parser("status", parents=[common], help="is it running, what does it serve (exit 3 if not running)")
    status.add_argument("--json", action="store_true")
    esub.add_parser("stop", parents=[common], help="stop the background engine")
    logs = esub.add_parser("logs", parents=[common], help="print the end of the engine's log")
    logs.add_argument("-n", "--lines", type=int, default=40)

    models = sub.add_parser("models", parents=[common], help="the models you can use")
    msub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    msub.add_parser("list", parents=[common], help="the bundled models, the presets, and what model.name resolves to")
    prep = msub.add_parser("prepare", parents=[common], help="convert bundled models now (otherwise done on first use)")
    prep.add_argument("names", nargs="*", metavar="NAME", help="e.g. bundled:qwen2.5-coder-1.5b; default: the one auto takes")

    for name, cmd in _COMMAND_MODULES.items():
        if name == command:
            importlib.import_module(cmd.module).add_parser(sub, common)
        elif _available_dotted(cmd.module):
            # Takes whatever follows (main() parses with parse_known_args first), --help included.
            sub.add_parser(name, help=cmd.help, add_help=False)

    config = sub.add_parser("config", parents=[common], help="inspect settings")
    csub = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    csub.add_parser("show", parents=[common], help="every setting, its value and what it means")
    csub.add_parser("path", parents=[common], help="where the user config file lives")
    csub.add_parser("defaults", parents=[common], help="print the documented default config.toml")

    for name, cmd in sorted(plugins.commands.items()):
        if name in _CORE:
            continue  # the core's parser stays; running it is refused while the clash lasts (parse)
        if name == command:
            from .plugin_api.plugin_commands import add_real_parser, load

            add_real_parser(cmd, load(cmd), sub, common)
            continue
        if name in plugins.clashes:
            text = "NOT RUNNABLE: declared by more than one distribution (see the warning below)"
        else:
            line = help_line(cmd.module)
            text = f"(broken: {cmd.module} from {cmd.dist} is not installed)" if line is None else line
        sub.add_parser(name, help=text, add_help=False)
    return parser


def _settings(args: argparse.Namespace):
    from .settings import load_settings, parse_assignments

    overrides = parse_assignments(getattr(args, "set", []) or [])
    if getattr(args, "read", None):
        overrides.setdefault("plugins", {}).setdefault("documents", {})["mode"] = args.read
    model = overrides.setdefault("model", {})
    pairs = [("model", "name"), ("base_url", "base_url")]
    if getattr(args, "command", None) == "ask":  # other commands' --seed/--temperature mean other things
        pairs += [("temperature", "temperature"), ("max_tokens", "max_tokens"), ("seed", "seed")]
    for attr, key in pairs:
        value = getattr(args, attr, None)
        if value is not None:
            model[key] = value
    return load_settings(getattr(args, "config", None), overrides)


def _read_question(args: argparse.Namespace) -> str:
    words = args.question
    if words in ([], ["-"]):
        if sys.stdin is None or sys.stdin.isatty():
            raise errors.UsageError("no question given", hint='usage: assistant ask "your question" (or pipe it on stdin)')
        text = sys.stdin.read()
    else:
        text = " ".join(words)
    if not text.strip():
        raise errors.UsageError("the question is empty")
    return text.strip()


def _cmd_ask(args: argparse.Namespace) -> int:
    from .ask import AskRequest, run_ask

    settings = _settings(args)
    req = AskRequest(
        _read_question(args), args.attach, args.image, args.system, args.json, args.quiet,
        session=args.session, save=not args.no_save, force_tool=args.tool,
    )  # fmt: skip
    return run_ask(settings, req)


def _cmd_engine(args: argparse.Namespace) -> int:
    from .model.engine import EngineManager, _tail
    from .progress import StderrProgress

    settings = _settings(args)
    progress = StderrProgress()
    manager = EngineManager(settings, progress)
    action = args.engine_command
    if action == "start":
        from .model.models import engine_device, resolve_model

        device = engine_device(settings)
        spec = resolve_model(settings, device, progress.say)
        state = manager.start(spec, device, background=True)
        print(f"engine running: {state.served_name} at {state.base_url} (pid {state.pid})")
        print(f"log: {state.log_path}")
        return 0
    if action == "status":
        state = manager.running()
        if args.json:
            print(json.dumps({"running": state is not None, **(state.__dict__ if state else {})}))
        elif state:
            up = time.time() - state.started_at
            print(f"running: {state.served_name} at {state.base_url}\n  pid {state.pid}, up {up:.0f} s\n  log {state.log_path}")
        else:
            print("not running (start one with `assistant engine start`)")
        return 0 if state else errors.EXIT_MODEL
    if action == "stop":
        state = manager.stop()
        print(f"stopped engine pid {state.pid} ({state.served_name})" if state else "no background engine was running")
        return 0
    if action == "logs":
        state = manager.running()
        logs = sorted((manager.dir / "logs").glob("engine-*.log"), key=lambda p: p.stat().st_mtime)
        path = state.log_path if state else (str(logs[-1]) if logs else None)
        if not path:
            raise errors.UsageError("no engine log yet", hint="start one with `assistant engine start`")
        print(f"==> {path} <==\n{_tail(path, args.lines)}")
        return 0
    raise AssertionError(action)


def _cmd_models(args: argparse.Namespace) -> int:
    from .model import listing
    from .progress import StderrProgress

    settings = _settings(args)
    if args.models_command == "prepare":
        for folder in listing.prepare(settings, args.names, StderrProgress().say):
            print(folder)
        return 0
    print(listing.render_list(settings))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from .settings import describe, render_default_config, user_config_path

    if args.config_command == "path":
        print(user_config_path())
        return 0
    if args.config_command == "defaults":
        print(render_default_config(), end="")
        return 0
    settings = _settings(args)
    print("# read from: " + ", ".join(settings.sources))
    for key, value, doc in describe(settings):
        shown = "***" if key.endswith("api_key") and value else json.dumps(list(value) if isinstance(value, tuple) else value)
        print(f"{key} = {shown}\n    {doc}")
    return 0


def _raise_interrupt(signum, frame):  # SIGTERM behaves like Ctrl-C so `finally` blocks stop engines
    raise KeyboardInterrupt


def parse(argv: list[str], plugins: _PluginIndex | None = None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """Two passes: the first (stubs only) finds the command; the second parses with its real parser."""
    plugins = plugins or _index(discover_commands())
    parser = build_parser(plugins=plugins)
    command = parser.parse_known_args(argv)[0].command
    if not command and _available_dotted(_COMMAND_MODULES["chat"].module):
        command, argv = "chat", argv + ["chat"]  # `assistant [--flags]` opens the terminal UI
    if command in plugins.clashes:
        from .plugin_api.plugin_commands import clash_error

        raise clash_error(command, plugins.clashes[command])
    if command in _COMMAND_MODULES or command in plugins.commands:
        parser = build_parser(command, plugins)
    return parser, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    plugins = _index(discover_commands())
    try:
        parser, args = parse(argv, plugins)
    except AssistantError as exc:  # a plugin command that clashes or cannot be loaded
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if not args.command:
        parser.print_help()
        return errors.EXIT_USAGE
    signal.signal(signal.SIGTERM, _raise_interrupt)
    handlers = {"ask": _cmd_ask, "engine": _cmd_engine, "models": _cmd_models, "config": _cmd_config}
    try:
        if args.command in handlers:
            return handlers[args.command](args)
        cmd = _COMMAND_MODULES.get(args.command) or plugins.commands[args.command]
        return importlib.import_module(cmd.module).run(args, _settings(args))
    except AssistantError as exc:
        if getattr(args, "json", False):
            from .ask import error_json

            print(error_json(exc))
        print(f"\nerror: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return errors.EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
