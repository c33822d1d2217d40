"""The plugin contract: everything a plugin author imports comes from here."""

from ..atomic_folder import fsync_dir, write_file_atomic
from .contract import (
    AttachmentOutput,
    Capability,
    OutputFile,
    Plugin,
    Recorder,
    Risk,
    ScenarioAttachment,
    ToolContext,
    ToolOutput,
    tool,
)

# write_file_atomic / fsync_dir: the project's one durable write, for plugins that keep files.
__all__ = ["AttachmentOutput", "Capability", "OutputFile", "Plugin", "Recorder", "Risk", "ScenarioAttachment",
           "ToolContext", "ToolOutput", "fsync_dir", "tool", "write_file_atomic"]
