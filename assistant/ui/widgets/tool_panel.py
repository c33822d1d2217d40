"""A tool call as a collapsible panel: name and decision in the title; arguments, result and
duration inside."""

from __future__ import annotations

import json

from textual.widgets import Collapsible, Static

_DECISIONS = {
    "auto": "ran automatically",
    "approved": "approved",
    "approved-always": "approved (always)",
    "approved-by-policy": "approved by policy",
    "denied": "denied",
    "denied-by-policy": "denied by policy",
}


def _pretty(value: object) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


class ToolCallPanel(Collapsible):
    """Collapsed by default; the title says what happened: `🔧 shop_order · approved · ✓ 0.02 s`."""

    def __init__(self, call_id: str, name: str, arguments: dict, risk: str = "") -> None:
        self.call_id, self.tool, self.arguments, self.risk = call_id, name, arguments, risk
        self.decision = ""
        self.result: str | None = None
        self.error: str | None = None
        self.duration_s: float | None = None
        self._result_view = Static("running…", classes="tool-result", markup=False)
        super().__init__(
            Static(_pretty(arguments), classes="tool-arguments", markup=False),
            self._result_view,
            title=self._heading(),
            collapsed=True,
            classes="tool-call",
        )

    def _heading(self) -> str:
        parts = [f"🔧 {self.tool}"]
        if self.decision:
            parts.append(_DECISIONS.get(self.decision, self.decision))
        if self.duration_s is not None:
            mark = "✗" if self.error else "✓"
            parts.append(f"{mark} {self.duration_s:.2f} s")
        elif not self.decision.startswith("denied"):
            parts.append("running…")
        return " · ".join(parts)

    def decided(self, decision: str) -> None:
        self.decision = decision
        self.title = self._heading()
        self.set_class(decision.startswith("denied"), "denied")

    def finished(self, result: str, error: str | None, duration_s: float | None) -> None:
        self.result, self.error, self.duration_s = result, error, duration_s
        self.title = self._heading()
        self.set_class(bool(error), "failed")
        self._result_view.update(("error: " + error if error and error != result else _pretty(result)) or "(empty)")

    def interrupted(self) -> None:
        """The turn ended before this call did."""
        if self.duration_s is None and not self.decision.startswith("denied"):
            self.title = f"🔧 {self.tool} · cancelled"
            self._result_view.update("(cancelled before it finished)")
