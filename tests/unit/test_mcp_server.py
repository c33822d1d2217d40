"""`assistant mcp serve`'s pieces: what the approval policy exposes, annotations, results, the
bearer check; and the handlers through the SDK's own client, in process (no sockets)."""

from __future__ import annotations

import base64

import pytest
from mcp import Client, MCPError

from assistant.errors import UsageError
from assistant.mcp.server import (
    BearerAuth, ToolServer, exposure, http_token, is_loopback, mcp_tool, run_server, tool_result,
)  # fmt: skip
from assistant.plugin_api import OutputFile, Plugin, Risk, ToolContext, ToolOutput, tool
from assistant.plugin_api.registry import load_plugins
from assistant.settings import ApprovalSettings, load_settings


class Desk(Plugin):
    name = "desk"
    description = "A test help desk"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.setups = 0
        self.filed: list[str] = []

    async def setup(self):
        self.setups += 1

    @tool
    def look(self, ref: str, full: bool = False) -> dict:
        """Look up a case.

        Args:
            ref: The case reference, e.g. "C-1".
            full: Include the history.
        """
        return {"ref": ref, "state": "open", "full": full}

    @tool(risk=Risk.SIDE_EFFECTS)
    async def file(self, subject: str, ctx: ToolContext) -> ToolOutput:
        """File a case.

        Args:
            subject: One line.
        """
        for fraction in (0.25, 0.25, 0.5, 1.0):  # the repeated 0.25 must not be sent twice
            ctx.progress(f"filing {fraction}", fraction)
        ctx.progress("done, no fraction")
        self.filed.append(subject)
        return ToolOutput('{"case": "C-7"}', say="Your case number is C-7.")

    @tool
    def broken(self) -> str:
        """Always fails."""
        raise RuntimeError("the desk database is down")

    @tool
    def report(self) -> ToolOutput:
        """A chart and its data."""
        return ToolOutput("made a report", (
            OutputFile(b"\x89PNG fake", "image/png", "chart.png"),
            OutputFile(b"%PDF-1.4 fake", "application/pdf", "report 1.pdf"),
            OutputFile("a,b\n1,2\n".encode(), "text/csv", "data.csv"),
        ))  # fmt: skip


def desk_server(tmp_path, allow_side_effects=False, **approval) -> tuple[ToolServer, Desk, list[str]]:
    """The server, its plugin, and what it wrote to stderr."""
    registry = load_plugins(extra=[Desk], include_entry_points=False, data_root=tmp_path)
    errors: list[str] = []
    server = ToolServer(registry, ApprovalSettings(**approval), allow_side_effects, errors.append)
    return server, registry.plugins["desk"], errors


@pytest.mark.parametrize(
    ("risk", "approval", "allow", "exposed"),
    [
        (Risk.READ_ONLY, {}, False, True),  # defaults: read_only auto
        (Risk.SIDE_EFFECTS, {}, False, False),  # defaults: side_effects ask, non_interactive deny
        (Risk.SIDE_EFFECTS, {}, True, True),  # the calling host asks
        (Risk.SIDE_EFFECTS, {"non_interactive": "auto"}, False, True),
        (Risk.SIDE_EFFECTS, {"side_effects": "auto"}, False, True),
        (Risk.SIDE_EFFECTS, {"side_effects": "deny"}, True, False),  # deny wins over the flag
        (Risk.READ_ONLY, {"read_only": "deny"}, True, False),
        (Risk.READ_ONLY, {"read_only": "ask"}, True, False),  # the flag is about side effects only
        (Risk.READ_ONLY, {"read_only": "ask", "non_interactive": "auto"}, False, True),
    ],
)
def test_exposure_follows_the_approval_policy(risk, approval, allow, exposed):
    why = exposure(risk, ApprovalSettings(**approval), allow)
    assert (why == "") is exposed
    if not exposed:
        assert f"[approval] {risk.value}" in why


def test_tools_carry_schema_title_and_annotations_from_their_risk(tmp_path):
    server, _, _ = desk_server(tmp_path, allow_side_effects=True)
    look, file = mcp_tool(server.tools["desk_look"]), mcp_tool(server.tools["desk_file"])
    assert look.input_schema == server.tools["desk_look"].schema
    assert look.input_schema["required"] == ["ref"] and look.description == "Look up a case."
    assert look.title == look.annotations.title == "Desk: look"
    assert look.annotations.read_only_hint is True and look.annotations.destructive_hint is None
    assert file.annotations.read_only_hint is False and file.annotations.destructive_hint is True
    wire = file.model_dump(by_alias=True, exclude_none=True)
    assert wire["inputSchema"]["required"] == ["subject"]
    assert wire["annotations"] == {"title": "Desk: file", "readOnlyHint": False, "destructiveHint": True}


def test_results_carry_files_by_kind_and_words_for_the_user():
    out = ToolOutput("{\"ok\": true}", (
        OutputFile(b"\x89PNG fake", "image/png", "chart.png"),
        OutputFile(b"%PDF fake", "application/pdf", "report 1.pdf"),
        OutputFile(b"a,b\n", "text/csv", "data.csv"),
        OutputFile(b"\xff\xfe not utf-8", "text/plain", "odd.txt"),
    ), say="Your ticket number is T-1001.")  # fmt: skip
    result = tool_result(out.text, out, "desk_report")
    text, say, image, pdf, csv, odd = result.content
    assert not result.is_error and text.text == '{"ok": true}' and result.structured_content == {"ok": True}
    assert say.text == "Your ticket number is T-1001." and say.annotations.audience == ["user"]
    assert image.type == "image" and image.mime_type == "image/png" and base64.b64decode(image.data) == b"\x89PNG fake"
    assert pdf.type == "resource" and pdf.resource.uri == "assistant://desk_report/report%201.pdf"
    assert base64.b64decode(pdf.resource.blob) == b"%PDF fake" and pdf.resource.mime_type == "application/pdf"
    assert csv.resource.text == "a,b\n"
    assert base64.b64decode(odd.resource.blob) == b"\xff\xfe not utf-8"  # mislabelled text stays bytes
    plain = tool_result("just words", None, "desk_look")
    assert [c.text for c in plain.content] == ["just words"] and plain.structured_content is None


@pytest.mark.parametrize(
    ("header", "ok"),
    [(b"Bearer s3cret", True), (b"bearer s3cret", True), (b"Bearer s3cre", False), (b"Bearer s3cret2", False),
     (b"Basic s3cret", False), (b"s3cret", False), (None, False)],
)  # fmt: skip
def test_bearer_check(header, ok):
    headers = [(b"host", b"127.0.0.1")] + ([(b"Authorization", header)] if header is not None else [])
    assert BearerAuth(None, "s3cret").authorized(headers) is ok


async def test_bearer_middleware_answers_401_and_passes_the_rest():
    reached, sent = [], []

    async def app(scope, receive, send):
        reached.append(scope["type"])

    async def send(message):
        sent.append(message)

    auth = BearerAuth(app, "s3cret")
    await auth({"type": "http", "headers": [(b"authorization", b"Bearer nope")]}, None, send)
    assert sent[0]["status"] == 401 and (b"www-authenticate", b'Bearer realm="assistant-mcp"') in sent[0]["headers"]
    assert b"Authorization: Bearer" in sent[1]["body"] and reached == []
    await auth({"type": "lifespan"}, None, send)  # the app's start-up is no request
    await auth({"type": "http", "headers": [(b"authorization", b"Bearer s3cret")]}, None, send)
    assert reached == ["lifespan", "http"]


def test_is_loopback():
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.5", "::", "example.com"]))


def test_http_token_rules():
    token, generated = http_token("127.0.0.1", None)
    assert generated and len(token) >= 40 and http_token("127.0.0.1", None)[0] != token
    assert http_token("0.0.0.0", "  s3cret ") == ("s3cret", False)
    with pytest.raises(UsageError, match="refusing to serve on 0.0.0.0 without a token") as err:
        http_token("0.0.0.0", None)
    assert "--token" in err.value.hint
    with pytest.raises(UsageError, match="empty"):
        http_token("127.0.0.1", "  ")


def test_refusals_come_before_anything_loads(tmp_path, monkeypatch):
    import assistant.runtime

    monkeypatch.setattr(assistant.runtime, "load_registry", lambda settings: pytest.fail("loaded plugins"))
    settings = load_settings(overrides={"paths": {"state_dir": str(tmp_path)}}, environ={})
    with pytest.raises(UsageError, match="without a token"):
        run_server(settings, transport="http", host="192.168.1.5")
    with pytest.raises(UsageError, match="transport"):
        run_server(settings, transport="sse")


async def test_calls_through_the_sdk_client(tmp_path):
    server, desk, errors = desk_server(tmp_path)
    async with Client(server.build()) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert listed == {"desk_look", "desk_broken", "desk_report"}  # desk_file: side effects at 'ask'
        assert desk.setups == 0  # plugins set up on first use, not at listing

        ok = await client.call_tool("desk_look", {"ref": "C-1"})
        assert not ok.is_error and ok.structured_content == {"ref": "C-1", "state": "open", "full": False}
        await client.call_tool("desk_look", {"ref": "C-2"})
        assert desk.setups == 1

        bad = await client.call_tool("desk_look", {"ref": "C-1", "full": "very"})
        assert bad.is_error and "full" in bad.content[0].text and "input schema" in bad.content[0].text
        missing = await client.call_tool("desk_look", {})
        assert missing.is_error and "ref" in missing.content[0].text

        broken = await client.call_tool("desk_broken", {})
        assert broken.is_error and broken.content[0].text == "error: RuntimeError: the desk database is down"
        assert errors == ["warning: tool desk_broken failed: RuntimeError: the desk database is down\n"]

        report = await client.call_tool("desk_report", {})  # still serving after the failure
        assert [c.type for c in report.content] == ["text", "image", "resource", "resource"]

        with pytest.raises(MCPError, match="--allow-side-effects"):
            await client.call_tool("desk_file", {"subject": "x"})
        with pytest.raises(MCPError, match="no tool named 'desk_nope'"):
            await client.call_tool("desk_nope", {})
    assert desk.filed == []


async def test_side_effects_allowed_relay_progress(tmp_path):
    server, desk, _ = desk_server(tmp_path, allow_side_effects=True)
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total, message))

    async with Client(server.build()) as client:
        result = await client.call_tool("desk_file", {"subject": "Teapot broken"}, progress_callback=on_progress)
    assert desk.filed == ["Teapot broken"]
    assert [c.text for c in result.content] == ['{"case": "C-7"}', "Your case number is C-7."]
    assert seen == [(25.0, 100.0, "filing 0.25"), (50.0, 100.0, "filing 0.5"), (100.0, 100.0, "filing 1.0")]
