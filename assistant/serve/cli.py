"""`assistant serve`: the assistant as an OpenAI-compatible HTTP server.

assistant/cli.py wires it in with `add_parser(subparsers, common)` and `run(args, settings)`.
Heavy imports (Starlette, uvicorn, the dialogue) happen in `run`, so `assistant --help` stays fast.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from typing import Any

from ..errors import UsageError
from ..settings import ServeSettings, Settings, with_overrides

S = ServeSettings()

DESCRIPTION = """\
Serve the assistant (its dialogue loop with plugins, MCP tools, retrieval and the approval
policy) as an OpenAI-compatible API: GET /v1/models, POST /v1/chat/completions (streaming or
not). Each conversation is saved as a session; send its id back in the X-Assistant-Session
header (or session_id) to continue it. The model is the local engine (started like `ask`
does) or --base-url. See docs/serving.md.
"""

EPILOG = """\
auth: with an API key set (--api-key, [serve] api_key or ASSISTANT_SERVE__API_KEY) every /v1
  request needs 'Authorization: Bearer <key>'. Without a key the server refuses to start, unless
  it listens on loopback (127.0.0.1, ::1, localhost) and --no-auth is given. /health is open.
tools: the assistant runs its own tools; requests that send client-side `tools` are refused
  (unless tool_choice is "none"). Approval is non-interactive: approval.non_interactive decides.
exit codes: 0 stopped cleanly, 2 bad flags/config (e.g. no key on a public address, port in use),
  3 model/engine error at start-up, 130 interrupted.
"""

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve", parents=[common], help="the assistant as an OpenAI-compatible HTTP server",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--host", help=f"address to listen on (default: serve.host, {S.host})")
    p.add_argument("--port", type=int, help=f"port to listen on; 0 picks a free one (default: serve.port, {S.port})")
    p.add_argument(
        "--api-key", metavar="KEY",
        help="bearer key clients must send (default: serve.api_key; prefer ASSISTANT_SERVE__API_KEY: a flag shows in `ps`)",
    )  # fmt: skip
    p.add_argument("--no-auth", action="store_true", help="serve without a key; only allowed on a loopback address")
    p.add_argument(
        "--max-concurrent", type=int, metavar="N",
        help=f"turns answered at once; more wait (default: serve.max_concurrent, {S.max_concurrent})",
    )  # fmt: skip
    p.add_argument("--access-log", action="store_true", help="log every request on stderr")
    return p


def is_loopback(host: str) -> bool:
    if host.strip().lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_key(serve: ServeSettings, no_auth: bool) -> str | None:
    """The key clients must send, or None to serve without one. Refuses an open server on any
    address other than loopback, before anything starts."""
    if no_auth:
        if not is_loopback(serve.host):
            raise UsageError(
                f"--no-auth is only allowed on a loopback address, not {serve.host}: anyone who can reach it "
                "could use the assistant and its tools",
                hint="set a key (ASSISTANT_SERVE__API_KEY=... or --api-key), or listen on 127.0.0.1",
            )
        return None
    if not serve.api_key:
        raise UsageError(
            "no API key is set, so the server would be open to anyone who can reach it",
            hint="set one (export ASSISTANT_SERVE__API_KEY=$(openssl rand -hex 16), or --api-key KEY); on "
            "127.0.0.1 you may instead pass --no-auth",
        )
    return serve.api_key


def apply_flags(settings: Settings, args: argparse.Namespace) -> Settings:
    flags = {k: v for k in ("host", "port", "api_key", "max_concurrent") if (v := getattr(args, k, None)) is not None}
    return with_overrides(settings, {"serve": flags})


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port is a clear error and port 0 is
    known before the server starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host!r}: {exc.strerror}", hint="pass an IP address or host name of this machine with --host") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: each streamed chunk is a small write that Nagle's algorithm
    # would otherwise hold back until the client's delayed ACK (~40 ms; measured on the MCP server).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="pick another port with --port (0 picks a free one), or stop what is using it",
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from uvicorn.loops.auto import auto_loop_factory

    from ..model.endpoint import open_endpoint, tool_modes
    from ..progress import StderrProgress
    from ..runtime import load_registry, open_store, prompt_library, report_plugin_failures

    settings = apply_flags(settings, args)
    key = auth_key(settings.serve, args.no_auth)  # before any engine starts
    sock = listen(settings.serve.host, settings.serve.port)
    store = None
    try:
        registry = load_registry(settings)
        report_plugin_failures(registry, sys.stderr.write)
        prompts = prompt_library(settings, registry)
        store = open_store(settings)
        progress = StderrProgress()
        with open_endpoint(settings, progress) as endpoint:
            progress.clear()
            native, selection = tool_modes(settings, endpoint.spec)
            parts = dict(registry=registry, prompts=prompts, store=store, native=native, selection=selection)
            # uvicorn's loop choice: uvloop where installed (vLLM brings it), which costs less
            # CPU per streamed chunk than asyncio's own loop.
            with asyncio.Runner(loop_factory=auto_loop_factory(use_subprocess=False)) as runner:
                runner.run(_serve(settings, endpoint, sock, key, args.access_log, **parts))
    finally:
        sock.close()
        if store is not None:
            store.close()
    return 0


def _server_class():
    import contextlib
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            """Ctrl-C and SIGTERM shut the server down gracefully and the command exits 0.
            uvicorn's own version raises the signal again afterwards, which the CLI would
            report as an interruption (exit 130) although nothing was cut short."""
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


async def _serve(settings: Settings, endpoint: Any, sock: socket.socket, key: str | None, access_log: bool, *,
                 registry: Any, prompts: Any, store: Any, native: bool, selection: str) -> None:  # fmt: skip
    import asyncio

    import uvicorn

    from ..errors import AssistantError
    from ..model.client import ChatClient
    from .app import create_app
    from .backend import Backend, BackendInfo, SharedModel
    from .protocol import MODEL_ID

    async with ChatClient(endpoint.client) as client:
        # Asked once here: a wrong --base-url fails now, not on the first request.
        model_name = endpoint.client.model or await client.model_name()
        try:
            context = await client.context_length()
        except AssistantError:
            context = None
        info = BackendInfo(
            model_name, endpoint.client.base_url, endpoint.engine is not None, context, endpoint.client.vision, native, selection
        )
        backend = Backend(SharedModel(client, context), settings, info, registry=registry, prompts=prompts, store=store)
        config = uvicorn.Config(
            create_app(backend, api_key=key), lifespan="off", access_log=access_log,
            log_level="info" if access_log else "warning",  # uvicorn logs each request at info
            timeout_graceful_shutdown=5,  # Ctrl-C does not wait for long turns to end
        )  # fmt: skip
        server = _server_class()(config)
        try:
            # MCP servers start once, here, rather than in whichever turns come first at once;
            # /v1/models then lists their tools too.
            await registry.connect()
            serving = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.05)
            if server.started:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                auth = "bearer key required" if key else "no auth (--no-auth, loopback only)"
                print(f"assistant serve: ready at http://{shown}:{port}/v1 (model '{MODEL_ID}', backed by {model_name}; "
                      f"{len(registry.tools)} tools; {auth}). Ctrl-C stops it.", file=sys.stderr, flush=True)  # fmt: skip
            await serving
            print("assistant serve: stopped", file=sys.stderr, flush=True)
        finally:
            await registry.aclose()  # the MCP servers' processes and connections

