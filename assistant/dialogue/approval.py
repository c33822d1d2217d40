"""Whether a tool may run: a policy per risk level, and a person where the policy says ask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Literal

from ..settings import ApprovalSettings

Answer = Literal["approve", "deny", "always"]


@dataclass(frozen=True)
class ApprovalRequest:
    call_id: str
    tool: str
    plugin: str
    risk: str
    arguments: dict


# A front end that can ask a person supplies one of these (the TUI shows a modal, `ask` on a
# terminal prompts on stderr). Without one, the run is non-interactive and the policy decides.
Approver = Callable[[ApprovalRequest], Awaitable[Answer]]


class ApprovalPolicy:
    def __init__(self, settings: ApprovalSettings, approver: Approver | None = None):
        self.settings = settings
        self.approver = approver
        self._always: set[str] = set()  # tools the person approved for the rest of the dialogue

    async def decide(self, request: ApprovalRequest) -> tuple[bool, str]:
        """(may run, decision) — the decision string is recorded with the tool call."""
        level = self.settings.read_only if request.risk == "read_only" else self.settings.side_effects
        if level == "auto":
            return True, "auto"
        if level == "deny":
            return False, "denied-by-policy"
        if request.tool in self._always:
            return True, "approved-always"
        if self.approver is None:
            allowed = self.settings.non_interactive == "auto"
            return allowed, "approved-by-policy" if allowed else "denied-by-policy"
        answer = await self.approver(request)
        if answer == "always":
            self._always.add(request.tool)
        return (True, "approved") if answer in ("approve", "always") else (False, "denied")
