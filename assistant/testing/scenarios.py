"""Scenarios: scripted multi-turn conversations, replayed through the real `Dialogue`, the real
plugins and a real session store in a temporary folder, then checked.

    from assistant.testing.scenarios import assert_scenario
    run = assert_scenario("tests/scenarios/order_lookup.json", workdir=tmp_path)

A scenario is a JSON file:

    {
      "format": "assistant-scenario", "version": 1,
      "name": "...", "description": "...",
      "plugins": ["orders", "handoff"],          # installed plugins to load (omit: all installed)
      "options": {"orders": {"max_attempts": 2}}, # [plugins.NAME] tables
      "settings": {"approval": {"side_effects": "auto"}},   # other config sections
      "model_accepts_images": true,
      "turns": [{
        "user": "Where is order A1001? I'm ana.lima@example.com",
        "attachments": [{"path": "photo.jpg"}, {"name": "memo.wav", "speech": "The box was crushed"},
                        {"name": "photo.png", "image": {"width": 64, "height": 48, "color": "#a0522d"}},
                        {"name": "note.txt", "text": "..."}, {"name": "x.bin", "base64": "..."}],
        "replies": [{"tool_calls": [{"name": "orders_lookup", "arguments": {"order_id": "A1001", "email": "..."}}]},
                    "It was delivered on Monday."],
        "force_tool": "orders_lookup",               # the first model call must call it (live runs need it)
        "approval": {"side_effects": "ask"},         # this turn's [approval] levels
        "approvals": ["approve"],                    # a person answering the approval prompts, in order
        "expect": {
          "tool_calls": [{"name": "orders_lookup", "arguments": {"order_id": "A1001"}, "decision": "auto",
                          "error": false, "result_contains": ["delivered"], "result_json": {"verified": true}}],
          "answer_contains": ["Monday"], "failed": false,
          "attachments": [{"filename": "memo.wav", "handled_by": "speech", "text_contains": "crushed"}]
        }
      }],
      "expect": {                                    # the state after the last turn
        "marks": {"customer": "ana.lima@example.com", "handed_off": "*", "ticket": null},
        "sql": [{"db": "tickets/tickets.sqlite", "query": "SELECT count(*) FROM tickets", "rows": [[1]]}],
        "files": [{"glob": "handoff/queue/*.json", "count": 1, "json": {"customer.verified": true, "attachments.#": 2}}]
      }
    }

Attachment keys other than path, base64, text and image come from plugins' testing helpers
(`assistant.testing` entry points, see helpers.py): `speech` is the speech plugin's.

Paths of `db` and `glob` are relative to the plugins' data root (`<state>/plugins`, so
`tickets/...` is the tickets plugin's data folder); attachment `path`s to the scenario file.
In `json` checks a key is a dotted path (`attachments.0.kind`; `#` is a list's length); `"*"`
matches any value that is present and not null.

Replies are the scripted model's answers (a string is a text answer). A live run
(`run_scenario(..., model=ChatClient(...), live=True)`) ignores them: each turn's `force_tool`
makes the real model call that tool, and only what does not depend on the model's wording is
checked (tool names, risk and approval decisions, attachments, the final state); any check
with `"live": false` is skipped in live runs.

`assistant sessions export ID --format scenario` writes a saved conversation as a scenario
(see assistant/sessions/export.py); replayed, it makes the same tool calls.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..events import ApprovalDecided, AttachmentProcessed, ToolCall, ToolCallFinished, ToolCallStarted, TurnFailed, TurnFinished
from .fake_model import Reply, ScriptedModel
from .helpers import BUILT_IN_KEYS, REINSTALL_HINT, ScenarioAttachment, scenario_attachments
from .helpers import ENTRY_POINT_GROUP as HELPERS_GROUP

FORMAT = "assistant-scenario"
VERSION = 1
ANY = "*"
ANSWERS = ("approve", "deny", "always")
LEVELS = ("auto", "ask", "deny")

_TOP = {"format", "version", "name", "description", "plugins", "options", "settings", "model_accepts_images", "turns",
        "expect", "source_session"}
_TURN = {"user", "attachments", "replies", "force_tool", "approval", "approvals", "expect"}
_TURN_EXPECT = {"tool_calls", "exact", "answer_contains", "answer_excludes", "failed", "attachments", "live"}
_CALL_EXPECT = {"name", "arguments", "decision", "risk", "error", "result_contains", "result_excludes", "result_json", "live"}
_FINAL = {"marks", "sql", "files"}


class ScenarioError(ValueError):
    """The scenario file itself is wrong (not a failed expectation)."""


# --- loading ---------------------------------------------------------------------------------


def load_scenario(source: str | Path | dict) -> dict:
    """A scenario from a file (or an already parsed dict), checked for shape and unknown keys.
    The folder attachment paths are relative to is kept under the key "_base"."""
    if isinstance(source, dict):
        data, base, label = dict(source), Path.cwd(), "scenario"
    else:
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc}") from None
        base, label = path.parent, str(path)
    if data.get("format") != FORMAT or data.get("version") != VERSION:
        raise ScenarioError(f"{label}: not an {FORMAT} version {VERSION} file (format/version keys)")
    _keys(data, _TOP, label)
    turns = data.get("turns")
    if not isinstance(turns, list) or not turns:
        raise ScenarioError(f"{label}: 'turns' must be a non-empty list")
    for n, turn in enumerate(turns, 1):
        where = f"{label}, turn {n}"
        if not isinstance(turn, dict) or not isinstance(turn.get("user"), str):
            raise ScenarioError(f"{where}: each turn needs a 'user' text")
        _keys(turn, _TURN, where)
        for reply in turn.get("replies", []):
            to_reply(reply, n, 0)  # raises on a malformed reply
        for key, level in (turn.get("approval") or {}).items():
            if key not in ("read_only", "side_effects", "non_interactive") or level not in LEVELS or (
                key == "non_interactive" and level == "ask"
            ):
                raise ScenarioError(f"{where}: approval is {{read_only|side_effects|non_interactive: auto|ask|deny}}, "
                                    f"not {key}={level!r}")
        bad = [a for a in turn.get("approvals", []) if a not in ANSWERS]
        if bad:
            raise ScenarioError(f"{where}: approvals are {', '.join(ANSWERS)}, not {bad}")
        expect = turn.get("expect") or {}
        _keys(expect, _TURN_EXPECT, f"{where}, expect")
        for i, call in enumerate(expect.get("tool_calls", []), 1):
            _keys(call, _CALL_EXPECT, f"{where}, expected call {i}")
    _keys(data.get("expect") or {}, _FINAL, f"{label}, expect")
    data["_base"] = base
    return data


def _keys(obj: Any, allowed: set[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise ScenarioError(f"{where}: expected an object, got {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed - {"_base"})
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")


def to_reply(reply: Any, turn: int, step: int) -> Reply:
    """A scenario reply -> the ScriptedModel's Reply. Call ids are made unique per turn and step."""
    if isinstance(reply, str):
        return Reply(text=reply)
    if not isinstance(reply, dict) or set(reply) - {"text", "tool_calls"}:
        raise ScenarioError(f"turn {turn}: a reply is a string or {{'text', 'tool_calls'}}, got {reply!r}")
    calls = []
    for i, c in enumerate(reply.get("tool_calls", []), 1):
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or set(c) - {"name", "arguments", "id"}:
            raise ScenarioError(f"turn {turn}: a tool call is {{'name', 'arguments', 'id'?}}, got {c!r}")
        args = c.get("arguments", {})
        calls.append(ToolCall(c.get("id") or f"call-{turn}-{step}-{i}", c["name"],
                              args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)))
    return Reply(text=reply.get("text", ""), tool_calls=tuple(calls))


def missing_requirements(scenario: dict) -> list[str]:
    """What this machine lacks to run the scenario (for pytest.skip), as the testing helpers of
    the plugin attachments it uses say (e.g. espeak-ng for speech)."""
    specs = [a for t in scenario["turns"] for a in t.get("attachments", [])]
    if all(any(key in spec for key in BUILT_IN_KEYS) for spec in specs):
        return []  # the plugins' helpers are not even looked up
    missing: list[str] = []
    for key, helper in scenario_attachments().items():
        if any(key in spec for spec in specs):
            missing += [m for m in helper.missing() if m not in missing]
    return missing


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRecord:
    name: str
    arguments: dict
    risk: str
    decision: str  # "none" when the approval policy was not reached (bad arguments, unknown tool)
    result: str
    error: str | None


@dataclass
class TurnRecord:
    index: int
    user: str
    events: list[Any]
    calls: list[CallRecord]
    answer: str
    failed: str | None
    attachments: list[AttachmentProcessed]


@dataclass
class ScenarioRun:
    scenario: dict
    state_dir: Path
    live: bool
    session_id: str | None = None
    turns: list[TurnRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def data_root(self) -> Path:
        return self.state_dir / "plugins"

    def open_store(self):
        from ..sessions.store import SessionStore

        return SessionStore(self.state_dir / "sessions.db", self.state_dir / "attachments")

    def calls(self) -> list[CallRecord]:
        return [c for t in self.turns for c in t.calls]

    def assert_ok(self) -> ScenarioRun:
        if self.problems:
            name = self.scenario.get("name") or "scenario"
            raise AssertionError(f"{name}: {len(self.problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in self.problems))
        return self


def run_scenario(source: str | Path | dict, *, workdir: str | Path, model: Any = None, plugins: Sequence[type] = (),
                 live: bool = False, settings: dict | None = None, options: dict | None = None,
                 model_name: str = "scenario") -> ScenarioRun:
    """Replay a scenario; problems are collected in `run.problems` (see `assert_scenario`).

    `model`: None for the scripted model built from the replies, or a real client for a live run
    (`live=True`). `plugins`: extra plugin classes (e.g. one not installed, loaded from a file).
    `settings`: config sections merged over the scenario's own (e.g. the live model's temperature);
    `options`: `[plugins.NAME]` tables merged over the scenario's (e.g. a shared, pre-filled folder)."""
    from .conformance import _run_sync

    return _run_sync(lambda: arun_scenario(source, workdir=workdir, model=model, plugins=plugins, live=live,
                                           settings=settings, options=options, model_name=model_name))


def assert_scenario(source: str | Path | dict, **kw: Any) -> ScenarioRun:
    return run_scenario(source, **kw).assert_ok()


async def arun_scenario(source: str | Path | dict, *, workdir: str | Path, model: Any = None,
                        plugins: Sequence[type] = (), live: bool = False, settings: dict | None = None,
                        options: dict | None = None, model_name: str = "scenario") -> ScenarioRun:
    from ..dialogue.turn import Dialogue
    from ..sessions.store import SessionStore

    scenario = load_scenario(source)
    workdir = Path(workdir)
    state = workdir / "state"
    run = ScenarioRun(scenario, state, live)
    if live and model is None:
        raise ScenarioError("a live run needs the real model client: run_scenario(..., model=client, live=True)")
    config = _settings(scenario, state, workdir, settings)
    registry = _registry(scenario, state, plugins, options)
    scripted = model is None
    model = ScriptedModel() if scripted else model
    store = SessionStore(state / "sessions.db", state / "attachments")
    try:
        dialogue = Dialogue(model, settings=config, registry=registry, store=store, model_name=model_name,
                            model_accepts_images=scenario.get("model_accepts_images", True))
        base_approval = config.approval
        for n, turn in enumerate(scenario["turns"], 1):
            dialogue.policy.settings = dataclasses.replace(base_approval, **(turn.get("approval") or {}))
            answers = list(turn.get("approvals", []))
            dialogue.policy.approver = _approver(answers, run, n) if "approvals" in turn else None
            if scripted:
                model.replies = [to_reply(r, n, i) for i, r in enumerate(turn.get("replies", []), 1)]
            attachments = _attachments(turn.get("attachments", []), scenario["_base"], workdir / "files" / f"turn{n}")
            force = turn.get("force_tool") if (live or turn.get("force_tool")) else None
            try:
                events = [e async for e in dialogue.turn(turn["user"], attachments, force_tool=force)]
            except AssertionError as exc:  # the scripted model ran out of replies
                run.problems.append(f"turn {n}: {exc} (the dialogue made more model calls than the turn scripts)")
                break
            record = _record(n, turn["user"], events)
            run.turns.append(record)
            run.session_id = run.session_id or dialogue.session_id
            if scripted and model.replies:
                run.problems.append(f"turn {n}: {len(model.replies)} scripted repl(ies) unused "
                                    "(the dialogue made fewer model calls than the turn scripts)")
            if answers:
                run.problems.append(f"turn {n}: approval answers left unused: {answers}")
            run.problems += [f"turn {n}: {p}" for p in _check_turn(turn.get("expect") or {}, record, live)]
        if run.session_id:
            run.problems += _check_final(scenario.get("expect") or {}, run, store)
    finally:
        store.close()
    return run


def _settings(scenario: dict, state: Path, workdir: Path, extra: dict | None):
    from ..settings import load_settings

    overrides: dict[str, dict] = {}
    for source in (scenario.get("settings") or {}, extra or {}):
        for section, values in source.items():
            overrides.setdefault(section, {}).update(values)
    overrides.setdefault("paths", {})["state_dir"] = str(state)
    overrides.setdefault("dialogue", {}).setdefault("system_prompt", "")
    # The developer's own config.toml must not change a replay.
    return load_settings(overrides=overrides, environ={"XDG_CONFIG_HOME": str(workdir / "no-user-config")})


def _registry(scenario: dict, state: Path, extra: Sequence[type], options: dict | None):
    import importlib.metadata

    from ..plugin_api.registry import ENTRY_POINT_GROUP, load_plugins

    wanted = scenario.get("plugins")
    installed = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    disabled = set() if wanted is None else installed - set(wanted)
    missing = set(wanted or ()) - installed - {cls.name for cls in extra}
    if missing:
        raise ScenarioError(f"the scenario needs plugins that are not installed: {', '.join(sorted(missing))}")
    tables = {name: dict(values) for name, values in (scenario.get("options") or {}).items()}
    for name, values in (options or {}).items():
        tables.setdefault(name, {}).update(values)
    # A scenario gets the plugins it names, or every installed one: opt-in ones (the support
    # pack) included, since a recorded conversation may have used them.
    registry = load_plugins(options=tables, disabled=disabled, enabled=set(wanted or installed),
                            data_root=state / "plugins", extra=list(extra))
    if registry.failures:
        raise ScenarioError("plugins failed to load:\n" + "\n".join(f"  - {f.name}: {f.error}" for f in registry.failures))
    return registry


def _approver(answers: list[str], run: ScenarioRun, turn: int):
    async def person(request) -> str:
        if not answers:
            run.problems.append(f"turn {turn}: approval asked for {request.tool} but no answer was scripted")
            return "deny"
        return answers.pop(0)

    return person


def _attachments(specs: Iterable[dict], base: Path, folder: Path) -> list:
    from ..dialogue.attachments import sniff

    out = []
    for spec in specs:
        if "path" in spec:
            out.append(sniff(base / spec["path"]))
            continue
        name = spec.get("name")
        if not name:
            raise ScenarioError(f"an attachment needs a 'path' or a 'name': {spec!r}")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        if "base64" in spec:
            target.write_bytes(base64.b64decode(spec["base64"]))
        elif "text" in spec:
            target.write_text(spec["text"], encoding="utf-8")
        elif "image" in spec:
            _draw(target, **spec["image"])
        else:
            key, helper = _plugin_attachment(spec)
            helper.write(target, spec[key])
        out.append(sniff(target))
    return out


def _plugin_attachment(spec: dict) -> tuple[str, ScenarioAttachment]:
    """The attachment kind a plugin's testing helpers add (`assistant.testing` entry points)."""
    offered = scenario_attachments()
    keys = [key for key in spec if key in offered]
    if not keys:
        kinds = ", ".join((*BUILT_IN_KEYS, *sorted(offered)))
        raise ScenarioError(f"attachment {spec.get('name')}: give one of {kinds} (other keys come from plugins' "
                            f"'{HELPERS_GROUP}' entry points; {REINSTALL_HINT})")
    return keys[0], offered[keys[0]]


def _draw(path: Path, width: int = 64, height: int = 48, color: str = "#a0522d", label: str = "") -> None:
    """A small deterministic picture: a coloured box with a dark 'crack' across it."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.rectangle([width // 8, height // 8, width * 7 // 8, height * 7 // 8], fill=color)
    draw.line([(width // 8, height // 4), (width * 7 // 8, height * 3 // 4)], fill="black", width=max(1, width // 32))
    if label:
        draw.text((2, 2), label, fill="black")
    img.save(path)


def _record(n: int, user: str, events: list[Any]) -> TurnRecord:
    started = {e.call_id: e for e in events if isinstance(e, ToolCallStarted)}
    decided = {e.call_id: e.decision for e in events if isinstance(e, ApprovalDecided)}
    calls = [
        CallRecord(e.name, started[e.call_id].arguments, started[e.call_id].risk, decided.get(e.call_id, "none"),
                   e.result, e.error)
        for e in events if isinstance(e, ToolCallFinished)
    ]  # fmt: skip
    finished = [e for e in events if isinstance(e, TurnFinished)]
    failed = [e for e in events if isinstance(e, TurnFailed)]
    return TurnRecord(n, user, events, calls, finished[0].text if finished else "",
                      f"{type(failed[0].error).__name__}: {failed[0].error}" if failed else None,
                      [e for e in events if isinstance(e, AttachmentProcessed)])


# --- checking --------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _check_turn(expect: dict, rec: TurnRecord, live: bool) -> list[str]:
    if live and expect.get("live") is False:
        return []
    problems = []
    want = [c for c in expect.get("tool_calls", []) if not (live and c.get("live") is False)]
    got = rec.calls
    if "failed" in expect and not live:
        if expect["failed"] is False and rec.failed:
            problems.append(f"the turn failed: {rec.failed}")
        elif isinstance(expect["failed"], str) and expect["failed"] not in (rec.failed or ""):
            problems.append(f"the turn should fail with {expect['failed']!r}, got {rec.failed!r}")
    elif rec.failed:
        problems.append(f"the turn failed: {rec.failed}")
    exact = expect.get("exact", True) and not live
    if (exact and len(got) != len(want)) or len(got) < len(want):
        problems.append(f"expected {len(want)} tool call(s) {[c.get('name') for c in want]}, "
                        f"got {len(got)} {[c.name for c in got]}")
    for i, (w, g) in enumerate(zip(want, got), 1):
        problems += [f"call {i} ({g.name}): {p}" for p in _check_call(w, g, live)]
    if not live:
        for text in _as_list(expect.get("answer_contains", [])):
            if text not in rec.answer:
                problems.append(f"the answer lacks {text!r}: {rec.answer[:200]!r}")
        for text in _as_list(expect.get("answer_excludes", [])):
            if text in rec.answer:
                problems.append(f"the answer contains {text!r}")
    for i, w in enumerate(expect.get("attachments", []), 1):
        match = [a for a in rec.attachments if a.filename == w.get("filename")]
        if not match:
            problems.append(f"attachment {w.get('filename')!r} was not processed; processed: {[a.filename for a in rec.attachments]}")
            continue
        a = match[0]
        if "handled_by" in w and a.handled_by != w["handled_by"]:
            problems.append(f"attachment {a.filename} was handled by {a.handled_by}, not {w['handled_by']}")
        for text in _as_list(w.get("text_contains", [])):
            if text.lower() not in a.text.lower():
                problems.append(f"attachment {a.filename}: its text lacks {text!r}: {a.text[:200]!r}")
    return problems


def _check_call(w: dict, g: CallRecord, live: bool) -> list[str]:
    problems = []
    for key in ("name", "decision", "risk"):
        if key in w and getattr(g, key) != w[key]:
            problems.append(f"{key} is {getattr(g, key)!r}, expected {w[key]!r}")
    if live:
        return problems
    for key, value in (w.get("arguments") or {}).items():
        if g.arguments.get(key) != value:
            problems.append(f"argument {key} is {g.arguments.get(key)!r}, expected {value!r}")
    if "error" in w:
        if w["error"] is False and g.error:
            problems.append(f"unexpected error: {g.error[:300]}")
        elif w["error"] is True and not g.error:
            problems.append("expected an error, the call succeeded")
        elif isinstance(w["error"], str) and w["error"] not in (g.error or ""):
            problems.append(f"expected an error containing {w['error']!r}, got {g.error!r}")
    for text in _as_list(w.get("result_contains", [])):
        if text not in g.result:
            problems.append(f"the result lacks {text!r}: {g.result[:300]!r}")
    for text in _as_list(w.get("result_excludes", [])):
        if text in g.result:
            problems.append(f"the result contains {text!r}")
    if "result_json" in w:
        try:
            data = json.loads(g.result)
        except ValueError:
            return problems + [f"the result is not JSON: {g.result[:200]!r}"]
        problems += _check_json(data, w["result_json"], "result")
    return problems


_MISSING = object()


def json_path(data: Any, path: str) -> Any:
    """`a.b.0.c` into nested dicts/lists; `x.#` is the length of list x; _MISSING if absent."""
    node = data
    for part in path.split("."):
        if part == "#" and isinstance(node, (list, dict, str)):
            return len(node)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _check_json(data: Any, expected: dict, where: str) -> list[str]:
    problems = []
    for path, want in expected.items():
        got = json_path(data, path)
        if want == ANY:
            if got is _MISSING or got is None:
                problems.append(f"{where}: {path} is missing")
        elif got is _MISSING:
            problems.append(f"{where}: {path} is missing, expected {want!r}")
        elif got != want:
            problems.append(f"{where}: {path} is {got!r}, expected {want!r}")
    return problems


def _check_final(expect: dict, run: ScenarioRun, store: Any) -> list[str]:
    problems = []
    live = run.live
    marks = store.get_session(run.session_id).marks
    for key, want in (expect.get("marks") or {}).items():
        got = marks.get(key)
        if want is None and got is not None:
            problems.append(f"final state: the session should not be marked {key}, but {key}={got}")
        elif want == ANY and got is None:
            problems.append(f"final state: the session is not marked {key} (marks: {marks})")
        elif want not in (None, ANY) and got != want and not live:
            problems.append(f"final state: mark {key} is {got!r}, expected {want!r}")
    for check in expect.get("sql", []):
        if live and check.get("live") is False:
            continue
        db = run.data_root / check["db"]
        if not db.exists():
            problems.append(f"final state: database {check['db']} does not exist")
            continue
        conn = sqlite3.connect(f"{db.absolute().as_uri()}?mode=ro", uri=True)
        try:
            rows = [list(r) for r in conn.execute(check["query"], check.get("params", [])).fetchall()]
        except sqlite3.Error as exc:
            problems.append(f"final state: {check['query']!r} failed: {exc}")
            continue
        finally:
            conn.close()
        if "rows" in check and rows != check["rows"]:
            problems.append(f"final state: {check['query']!r} gave {rows}, expected {check['rows']}")
    for check in expect.get("files", []):
        if live and check.get("live") is False:
            continue
        found = sorted(run.data_root.glob(check["glob"]))
        if "count" in check and len(found) != check["count"]:
            problems.append(f"final state: {len(found)} file(s) match {check['glob']}, expected {check['count']}")
        for path in found:
            if "json" in check:
                problems += _check_json(json.loads(path.read_text(encoding="utf-8")), check["json"],
                                        f"final state: {path.relative_to(run.data_root)}")
    return problems


def compare_calls(a: ScenarioRun, b: ScenarioRun) -> list[str]:
    """Differences between the tool calls of two runs (name, arguments, decision), turn by turn."""
    problems = []
    if len(a.turns) != len(b.turns):
        problems.append(f"{len(a.turns)} turns vs {len(b.turns)}")
    for ta, tb in zip(a.turns, b.turns):
        left = [(c.name, c.arguments, c.decision) for c in ta.calls]
        right = [(c.name, c.arguments, c.decision) for c in tb.calls]
        if left != right:
            problems.append(f"turn {ta.index}: {left} != {right}")
    return problems


__all__ = [
    "ANY", "FORMAT", "VERSION", "CallRecord", "ScenarioError", "ScenarioRun", "TurnRecord", "arun_scenario",
    "assert_scenario", "compare_calls", "json_path", "load_scenario", "missing_requirements", "run_scenario", "to_reply",
]  # fmt: skip
