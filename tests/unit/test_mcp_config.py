"""MCP client pieces that need no server: config tables, ${VAR}, JSON import, config editing,
risk from annotations, result conversion, argument checks against a server's JSON schema."""

import base64
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from assistant.errors import SettingsError
from assistant.mcp.config import configured_servers, from_json, parse_server, write_servers
from assistant.mcp.tools import McpServerPlugin, McpToolError, build_specs, to_output, tool_name, tool_risk
from assistant.plugin_api.contract import Risk
from assistant.plugin_api.tools import ArgumentError
from assistant.settings import load_settings


def test_stdio_and_http_tables_with_variables():
    env = {"TOKEN": "s3cret", "HOME": "/home/u"}
    s = parse_server("docs", {"url": "https://x/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}}, env)
    assert s.transport == "http" and s.headers["Authorization"] == "Bearer s3cret"
    t = parse_server("fs", {"command": "npx", "args": ["-y", "server", "${HOME}/docs"], "env": {"A": "${UNSET:-dflt}"}}, env)
    assert t.transport == "stdio" and t.args == ("-y", "server", "/home/u/docs") and t.env == {"A": "dflt"}


@pytest.mark.parametrize(
    "table, message",
    [
        ({}, "needs either command"),
        ({"command": "a", "url": "http://b"}, "not both"),
        ({"url": "ftp://x"}, "http:// or https://"),
        ({"command": "a", "argz": []}, "unknown key(s) argz"),
        ({"command": "a", "env": {"K": ["x"]}}, "table of strings"),
        ({"command": "a", "args": ["${NOPE}"]}, "${NOPE}, which is not set"),
        ({"command": "a", "startup_timeout": -1}, "positive number"),
    ],
)
def test_bad_tables_say_what_is_wrong(table, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")):
        parse_server("x", table, environ={})


def test_one_bad_server_does_not_hide_the_others():
    settings = load_settings(overrides={"mcp": {"servers": {"ok": {"command": "a"}, "bad": {"argz": 1}, "off": {"command": "b", "disabled": True}}}},
                             environ={})  # fmt: skip
    servers, errors = configured_servers(settings.mcp)
    assert [s.name for s in servers] == ["ok"] and errors[0][0] == "bad"


def test_config_files_merge_server_tables(tmp_path):
    user = tmp_path / "assistant" / "config.toml"
    user.parent.mkdir()
    user.write_text('[mcp.servers.a]\ncommand = "one"\n[mcp.servers.b]\ncommand = "two"\n')
    extra = tmp_path / "extra.toml"
    extra.write_text('[mcp.servers.a]\nargs = ["--x"]\n[mcp]\nstartup_timeout = 5\n')
    s = load_settings(extra, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert s.mcp.servers == {"a": {"command": "one", "args": ["--x"]}, "b": {"command": "two"}}
    assert s.mcp.startup_timeout == 5


def test_mcp_servers_json_imports_into_tables():
    data = {"mcpServers": {
        "time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
        "my docs": {"type": "http", "url": "https://docs/mcp", "headers": {"X-Key": "${KEY}"}},
    }}  # fmt: skip
    tables = from_json(data)
    assert tables == {"time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
                      "my_docs": {"url": "https://docs/mcp", "headers": {"X-Key": "${KEY}"}}}  # fmt: skip
    with pytest.raises(SettingsError, match="SSE transport"):
        from_json({"mcpServers": {"old": {"type": "sse", "url": "http://x/sse"}}})
    with pytest.raises(SettingsError, match="no \"mcpServers\""):
        from_json({"servers": {}})


def test_write_servers_keeps_the_rest_of_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("# my settings\n[model]\ntemperature = 0.2  # cooler\n")
    write_servers(path, {"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"], "env": {"A": "1"}}})
    text = path.read_text()
    assert "# my settings" in text and "temperature = 0.2  # cooler" in text and "[mcp.servers.time]" in text
    assert load_settings(path, environ={}).mcp.servers["time"]["args"] == ["--local-timezone", "UTC"]
    with pytest.raises(SettingsError, match="already in"):
        write_servers(path, {"time": {"command": "other"}})
    write_servers(path, {"time": {"command": "other"}}, replace=True)
    assert load_settings(path, environ={}).mcp.servers["time"] == {"command": "other"}
    write_servers(path, remove=("time",))
    assert "time" not in load_settings(path, environ={}).mcp.servers and "# my settings" in path.read_text()
    with pytest.raises(SettingsError, match="no MCP server named"):
        write_servers(path, remove=("time",))


def test_cli_add_list_import_remove(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "assistant", "mcp", *args], env=env, capture_output=True, text=True, timeout=60)

    out = run("add", "time", "--", "mcp-server-time", "--local-timezone", "Europe/Berlin")
    assert out.returncode == 0, out.stderr
    (tmp_path / "claude.json").write_text(json.dumps({"mcpServers": {"web": {"url": "https://w/mcp"}}}))
    assert run("import", str(tmp_path / "claude.json")).returncode == 0
    listed = json.loads(run("list", "--json").stdout)
    assert [(s["name"], s["transport"]) for s in listed["servers"]] == [("time", "stdio"), ("web", "http")]
    assert listed["servers"][0]["target"] == "mcp-server-time --local-timezone Europe/Berlin"
    assert run("add", "bad").returncode == 2  # neither a command nor --url
    assert run("remove", "web").returncode == 0
    assert [s["name"] for s in json.loads(run("list", "--json").stdout)["servers"]] == ["time"]


def _tool(name, read_only=None, schema=None):
    ann = SimpleNamespace(read_only_hint=read_only) if read_only is not None else None
    return SimpleNamespace(name=name, title=None, description=f"{name} does things", annotations=ann,
                           input_schema=schema or {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]})  # fmt: skip


def test_risk_is_read_only_only_when_the_server_says_so_or_the_config_trusts_it():
    cfg = parse_server("s", {"command": "x"}, {})
    assert tool_risk(cfg, _tool("a", True)) is Risk.READ_ONLY
    assert tool_risk(cfg, _tool("b", False)) is Risk.SIDE_EFFECTS
    assert tool_risk(cfg, _tool("c")) is Risk.SIDE_EFFECTS  # no annotation: not trusted
    trusting = parse_server("s", {"command": "x", "read_only": ["c"], "side_effects": ["a"]}, {})
    assert tool_risk(trusting, _tool("c")) is Risk.READ_ONLY and tool_risk(trusting, _tool("a", True)) is Risk.SIDE_EFFECTS
    assert tool_name("my-srv", "get.time/now") == "my-srv_get_time_now" and len(tool_name("s" * 40, "t" * 60)) == 64


def test_specs_check_arguments_against_the_servers_schema():
    cfg = parse_server("s", {"command": "x"}, {})
    conn = SimpleNamespace(tools=[_tool("find")])
    spec = build_specs(McpServerPlugin(cfg, None), cfg, conn)[0]
    assert spec.name == "s_find" and spec.openai()["function"]["parameters"]["required"] == ["q"]
    assert spec.parse_arguments('{"q": "x"}') == {"q": "x"}
    with pytest.raises(ArgumentError, match="'q' is a required property"):
        spec.parse_arguments("{}")
    with pytest.raises(ArgumentError, match="is not of type 'string'"):
        spec.parse_arguments('{"q": 3}')


def test_results_text_images_and_errors():
    png = base64.b64encode(b"\x89PNG fake").decode()
    result = SimpleNamespace(is_error=False, structured_content=None, content=[
        SimpleNamespace(type="text", text="here it is"), SimpleNamespace(type="image", data=png, mime_type="image/png"),
    ])  # fmt: skip
    out = to_output(result, "swatch")
    assert out.files[0].data == b"\x89PNG fake" and out.files[0].mime == "image/png" and out.files[0].filename == "swatch-2.png"
    assert "here it is" in out.text and "shown to the user" in out.text
    structured = SimpleNamespace(is_error=False, structured_content={"t": 1}, content=[])
    assert json.loads(to_output(structured, "x").text) == {"t": 1}
    with pytest.raises(McpToolError, match="locked"):
        to_output(SimpleNamespace(is_error=True, structured_content=None, content=[SimpleNamespace(type="text", text="db locked")]), "x")
