"""Testing helpers plugins offer, found through the `assistant.testing` entry-point group, so
the core reaches them the way it reaches a third party's, never by importing plugin modules.

An entry point's name is an attachment key in scenario files; its object a `ScenarioAttachment`
(assistant/plugin_api/contract.py) that writes that attachment's file. The speech plugin's, in pyproject.toml:

    [project.entry-points."assistant.testing"]
    speech = "assistant_plugins.speech.testing:scenario_speech"

lets a scenario say `{"name": "memo.ogg", "speech": "The box was crushed"}`.
"""

from __future__ import annotations

import importlib.metadata

from ..plugin_api.contract import ScenarioAttachment

ENTRY_POINT_GROUP = "assistant.testing"
BUILT_IN_KEYS = ("path", "base64", "text", "image")  # attachment kinds scenarios.py itself makes
REINSTALL_HINT = "a key added to pyproject.toml appears once the package is reinstalled (pip install -e .)"


def scenario_attachments() -> dict[str, ScenarioAttachment]:
    """Every installed plugin's scenario attachment kinds, by key. Called only for a scenario
    that uses one: it imports the helpers' modules. A key offered twice is an error, since
    silently picking one would make a different file."""
    found: dict[str, ScenarioAttachment] = {}
    sources: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = f"entry point {ep.name} = {ep.value} in {ENTRY_POINT_GROUP!r}"
        if ep.name in BUILT_IN_KEYS or ep.name == "name":
            raise ValueError(f"{where} reuses a built-in attachment key; rename it")
        if ep.name in found:
            raise ValueError(f"{where}: {sources[ep.name]} offers the key {ep.name!r} too; uninstall or rename one")
        helper = ep.load()
        if not isinstance(helper, ScenarioAttachment):
            raise TypeError(f"{where} must be a ScenarioAttachment (assistant.plugin_api.contract), "
                            f"not {type(helper).__name__}")
        found[ep.name], sources[ep.name] = helper, ep.value
    return found
