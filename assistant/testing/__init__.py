"""Test helpers for the assistant and for plugin authors.

    from assistant.testing import ScriptedModel, assert_conforms, call, make_dialogue, run_tool, run_turn

Light on purpose: nothing here imports torch or transformers (`assistant.testing.tiny_vlm`,
which builds the test suite's tiny vision model, is imported on its own).
"""

from .conformance import (
    ATTACHMENT_KINDS,
    ToolRun,
    ainvoke_tool,
    arun_tool,
    assert_conforms,
    aturn,
    check_plugin,
    find_tool,
    invoke_tool,
    make_dialogue,
    make_plugin,
    run_tool,
    run_turn,
)
from .fake_model import Reply, ScriptedModel, call, text

__all__ = [
    "ATTACHMENT_KINDS",
    "Reply",
    "ScriptedModel",
    "ToolRun",
    "ainvoke_tool",
    "arun_tool",
    "assert_conforms",
    "aturn",
    "call",
    "check_plugin",
    "find_tool",
    "invoke_tool",
    "make_dialogue",
    "make_plugin",
    "run_tool",
    "run_turn",
    "text",
]
