"""Clock and calculator: small models are bad at both, tools are exact."""

from __future__ import annotations

import ast
import math
import operator
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from assistant.plugin_api import Plugin, tool

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}  # fmt: skip
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCS = {name: getattr(math, name) for name in ("sqrt", "log", "log10", "log2", "exp", "sin", "cos", "tan", "floor", "ceil")}
_FUNCS.update(abs=abs, round=round, min=min, max=max)
_NAMES = {"pi": math.pi, "e": math.e, "tau": math.tau}


def evaluate(expression: str) -> float | int:
    """Arithmetic only: the expression is parsed, never executed as Python."""
    if len(expression) > 500:
        raise ValueError("expression too long (500 characters at most)")

    def ev(node: ast.AST):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 1000:
                raise ValueError("exponent too large")
            return _BINARY[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](ev(node.operand))
        if isinstance(node, ast.Name) and node.id in _NAMES:
            return _NAMES[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS and not node.keywords:
            return _FUNCS[node.func.id](*[ev(a) for a in node.args])
        raise ValueError(f"unsupported element {ast.dump(node)[:60]}; use numbers, + - * / // % **, and {', '.join(sorted(_FUNCS))}")

    try:
        tree = ast.parse(expression.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {exc.msg}") from None
    return ev(tree)


class Utilities(Plugin):
    name = "utilities"
    description = "Current date and time, and exact arithmetic"

    @tool
    def current_time(self, timezone: str = "UTC") -> str:
        """The current date and time.

        Args:
            timezone: IANA time zone, e.g. "Europe/Oslo" or "UTC".
        """
        try:
            now = datetime.now(ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {timezone!r}; use an IANA name like 'Europe/Oslo'") from None
        return now.strftime(f"%A %Y-%m-%d %H:%M:%S ({timezone}, UTC%z)")

    @tool
    def calculate(self, expression: str) -> str:
        """Evaluate an arithmetic expression exactly.

        Args:
            expression: e.g. "(17 * 23) / 4" or "sqrt(2) * pi".
        """
        value = evaluate(expression)
        return f"{expression} = {value}"
