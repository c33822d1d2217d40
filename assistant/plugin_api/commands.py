"""`assistant plugins list|doctor|new`: what is installed, and whether it works with the model."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from ..errors import EXIT_USAGE
from ..settings import Settings


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    plugins = sub.add_parser("plugins", parents=[common], help="list, check and create plugins")
    psub = plugins.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)
    lst = psub.add_parser("list", parents=[common], help="installed plugins, their tools and settings, and load failures")
    lst.add_argument("--json", action="store_true")
    doctor = psub.add_parser("doctor", parents=[common], help="check every tool's schema and try a named call on the model")
    doctor.add_argument("--no-model", action="store_true", help="only the offline checks")
    try:
        from .scaffold_cli import add_new_action

        add_new_action(psub, common)
    except ImportError:  # scaffolding is optional
        pass


def run(args: argparse.Namespace, settings: Settings) -> int:
    from ..runtime import load_registry

    if args.plugins_command == "new":
        from .scaffold_cli import run_new

        return run_new(args)
    registry = load_registry(settings)
    if registry.providers:  # MCP servers: started to list their tools, then stopped
        asyncio.run(_connect_and_close(registry))
    if args.plugins_command == "list":
        return _list(registry, args.json)
    return _doctor(registry, settings, args.no_model)


async def _connect_and_close(registry: Any) -> None:
    from ..progress import StderrProgress

    progress = StderrProgress()
    try:
        await registry.connect(progress)
    finally:
        await registry.aclose()
        progress.clear()


def _describe(registry: Any) -> list[dict]:
    rows = []
    for name, plugin in registry.plugins.items():
        fields = {}
        if plugin.Settings is not None:
            for key, f in plugin.Settings.model_fields.items():
                fields[key] = {"default": f.default, "description": f.description or "", "value": getattr(plugin.settings, key)}
        rows.append({
            "name": name, "source": registry.sources[name], "description": plugin.description,
            "consumes": sorted(plugin.consumes), "produces": sorted(plugin.produces), "settings": fields,
            "tools": [{"name": t.name, "risk": t.risk.value, "description": t.description}
                      for t in registry.tools.values() if t.plugin is plugin],
        })  # fmt: skip
    return rows


def _list(registry: Any, as_json: bool) -> int:
    rows = _describe(registry)
    failures = [{"name": f.name, "source": f.source, "error": f.error} for f in registry.failures]
    if as_json:
        print(json.dumps({"plugins": rows, "failures": failures, "not_enabled": registry.not_enabled}, default=str, indent=2))
        return 0
    for row in rows:
        kinds = f" consumes {', '.join(row['consumes'])}" if row["consumes"] else ""
        print(f"{row['name']}: {row['description']}{kinds}\n  from {row['source']}")
        for key, f in row["settings"].items():
            print(f"  [plugins.{row['name']}] {key} = {json.dumps(f['value'], default=str)}  # {f['description']}")
        for t in row["tools"]:
            print(f"  tool {t['name']} ({t['risk']}): {t['description'].splitlines()[0] if t['description'] else ''}")
    for f in failures:
        print(f"FAILED {f['name']} ({f['source']}): {f['error']}")
    if registry.not_enabled:
        names = ", ".join(sorted(registry.not_enabled))
        print(f"installed but not enabled (opt-in): {names}\n  enable with [plugins] enabled = [...] "
              f"or --set 'plugins.enabled=[\"{sorted(registry.not_enabled)[0]}\"]'")
    if not rows and not failures:
        print("no plugins installed")
    return 0


def _doctor(registry: Any, settings: Settings, no_model: bool) -> int:
    from ..testing.conformance import check_plugin

    problems = 0
    for f in registry.failures:
        print(f"✗ {f.name}: failed to load: {f.error}")
        problems += 1
    for name, plugin in registry.plugins.items():
        if registry.sources[name].startswith("MCP server"):
            issues = _check_mcp_schemas(registry, plugin)
            for issue in issues:
                print(f"✗ {name}: {issue}")
            problems += len(issues)
            if not issues:
                print(f"✓ {name}: {sum(1 for t in registry.tools.values() if t.plugin is plugin)} tools from the "
                      f"{registry.sources[name]}, schemas valid")  # fmt: skip
            continue
        issues = check_plugin(type(plugin), settings=settings.plugins.options.get(name))
        for issue in issues:
            print(f"✗ {name}: {issue}")
        problems += len(issues)
        if not issues:
            print(f"✓ {name}: {sum(1 for t in registry.tools.values() if t.plugin is plugin)} tools, schemas valid")
    if not no_model and registry.tools:
        _try_model(registry, settings)
    return EXIT_USAGE if problems else 0


def _check_mcp_schemas(registry: Any, plugin: Any) -> list[str]:
    """An MCP server's schemas come as JSON Schema: check them as such (a broken one would make
    vLLM's grammar refuse the whole request)."""
    import jsonschema

    from .tools import json_schema_validator

    issues = []
    for spec in registry.tools.values():
        if spec.plugin is plugin:
            try:
                json_schema_validator(spec.schema)
            except jsonschema.SchemaError as exc:
                issues.append(f"tool {spec.name}: its input schema is not valid JSON Schema: {exc.message}")
    return issues


def _try_model(registry: Any, settings: Settings) -> None:
    """Ask the served model for a named call of each tool; report whether the call came back
    and whether its arguments validate. Small models often fail the second part: that is what
    the loop's retry and text recovery are for, so it is reported, not fatal."""
    from ..errors import AssistantError
    from ..model.client import ChatClient
    from ..model.endpoint import open_endpoint
    from ..plugin_api.tools import ArgumentError
    from ..progress import StderrProgress

    progress = StderrProgress()
    with open_endpoint(settings, progress) as endpoint:
        progress.clear()
        if endpoint.spec is not None and endpoint.spec.tool_call_parser is None:
            print(f"· {endpoint.spec.served_name} has no tool-call parser: tools are described in the prompt "
                  "and calls recovered from text; named-call check skipped")  # fmt: skip
            return

        async def check() -> None:
            async with ChatClient(endpoint.client) as client:
                for spec in registry.tools.values():
                    tool = spec.openai()
                    tool["function"]["strict"] = True
                    try:
                        done = await client.chat(
                            [{"role": "user", "content": f"Use the tool {spec.name}."}],
                            tools=[tool], tool_choice={"type": "function", "function": {"name": spec.name}},
                            max_tokens=256, temperature=0,
                        )  # fmt: skip
                    except AssistantError as exc:
                        print(f"✗ {spec.name}: the model request failed: {exc}")
                        continue
                    calls = [c for c in done.tool_calls if c.name == spec.name]
                    if not calls:
                        print(f"✗ {spec.name}: the model did not return a call of this tool")
                        continue
                    try:
                        spec.parse_arguments(calls[0].arguments)
                        print(f"✓ {spec.name}: named call returned valid arguments {calls[0].arguments[:120]}")
                    except ArgumentError as exc:
                        print(f"· {spec.name}: named call returned, arguments invalid ({exc})")

        asyncio.run(check())
