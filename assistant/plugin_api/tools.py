"""Tools as the model sees them: schema from type hints and docstrings, validated arguments.

LangChain's `StructuredTool.from_function` does the schema work (type hints -> pydantic model,
Google-style docstring -> descriptions); we only call the plugin method ourselves, because the
loop needs the raw exception (to hand back to the model) and injected `ToolContext`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from dataclasses import dataclass
from typing import Any, Callable

from .contract import Plugin, Risk, ToolContext, ToolOutput, tool_mark


class ArgumentError(Exception):
    """The model's arguments do not match the tool's schema (fed back to the model)."""


@dataclass
class ToolSpec:
    name: str  # namespaced: <plugin>_<tool>
    plugin: Plugin
    fn: Callable  # the bound method
    risk: Risk
    description: str
    schema: dict  # JSON schema of the arguments
    args_model: Any  # pydantic model validating them; None: validated against `schema` itself
    context_param: str | None  # name of the injected ToolContext parameter
    needs: str | None = None  # "file": offered to small models only when a file is in the conversation

    def openai(self) -> dict:
        return {"type": "function", "function": {"name": self.name, "description": self.description, "parameters": self.schema}}

    def parse_arguments(self, raw: str | dict | None) -> dict:
        """JSON text (as the model wrote it) -> validated keyword arguments."""
        if isinstance(raw, dict):
            data = raw
        else:
            text = (raw or "").strip() or "{}"
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ArgumentError(f"arguments are not valid JSON ({exc.msg} at position {exc.pos}): {text[:200]}") from None
        if not isinstance(data, dict):
            raise ArgumentError(f"arguments must be a JSON object, got {type(data).__name__}: {str(data)[:200]}")
        if self.args_model is None:  # a schema from elsewhere (an MCP server): checked as JSON Schema
            return self._check_against_schema(data)
        from pydantic import ValidationError

        try:
            model = self.args_model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise ArgumentError(problems) from None
        return {k: getattr(model, k) for k in type(model).model_fields}

    @functools.cached_property
    def _schema_validator(self) -> Any:
        """Built once per tool, not per call; None when the schema itself is broken (the server judges)."""
        import jsonschema

        try:
            return json_schema_validator(self.schema)
        except jsonschema.SchemaError:
            return None

    def _check_against_schema(self, data: dict) -> dict:
        if self._schema_validator is None:
            return data
        problems = sorted(self._schema_validator.iter_errors(data), key=lambda e: list(e.path))
        if problems:
            raise ArgumentError("; ".join(f"{'.'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in problems[:5]))
        return data

    async def call(self, kwargs: dict, ctx: ToolContext) -> tuple[str, ToolOutput | None]:
        """Run the tool; returns (text for the model, the ToolOutput when files came back)."""
        if self.context_param:
            kwargs = {**kwargs, self.context_param: ctx}
        if inspect.iscoroutinefunction(self.fn):
            result = await self.fn(**kwargs)
        else:
            # Sync tools may block (disk, network, CPU): keep the event loop and the UI responsive.
            result = await asyncio.to_thread(functools.partial(self.fn, **kwargs))
        if isinstance(result, ToolOutput):
            return result.text, result
        if isinstance(result, str):
            return result, None
        return json.dumps(result, ensure_ascii=False, default=str), None


def json_schema_validator(schema: dict) -> Any:
    """A validator for `schema` (the draft its `$schema` names, else 2020-12); raises
    jsonschema.SchemaError when the schema itself is invalid."""
    import jsonschema  # comes with the mcp SDK, the only source of such schemas

    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def build_tool_specs(plugin: Plugin) -> list[ToolSpec]:
    from langchain_core.tools import StructuredTool

    specs = []
    for attr in dir(type(plugin)):
        mark = tool_mark(getattr(type(plugin), attr, None))
        if mark is None:
            continue
        fn = getattr(plugin, attr)
        sig = inspect.signature(fn)
        ctx_param = next((p.name for p in sig.parameters.values() if _is_context(p.annotation)), None)
        visible = [p for p in sig.parameters.values() if p.name != ctx_param]

        # A stand-in with the injected parameter removed, so it never reaches the schema.
        def stand_in(**kw):  # pragma: no cover - only inspected, never called
            raise AssertionError

        stand_in.__signature__ = sig.replace(parameters=visible)
        stand_in.__doc__ = inspect.getdoc(fn) or ""
        stand_in.__name__ = fn.__name__
        stand_in.__annotations__ = {k: v for k, v in _hints(fn).items() if k != ctx_param}
        name = f"{plugin.name}_{mark.name or fn.__name__}"
        lc = StructuredTool.from_function(stand_in, name=name, parse_docstring=True, error_on_invalid_docstring=False)
        schema = lc.args_schema.model_json_schema()
        schema.pop("title", None)
        description = schema.pop("description", None) or (stand_in.__doc__.split("\n\n")[0] if stand_in.__doc__ else "")
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        specs.append(ToolSpec(name, plugin, fn, mark.risk, description.strip(), schema, lc.args_schema, ctx_param, mark.needs))
    return specs


def _hints(fn: Callable) -> dict:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward refs: fall back to the raw annotations
        return dict(getattr(fn, "__annotations__", {}))


def _is_context(annotation: Any) -> bool:
    return annotation is ToolContext or annotation == "ToolContext"


