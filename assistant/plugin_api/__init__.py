"""The plugin contract: everything a plugin author imports comes from here."""

from .contract import AttachmentOutput, OutputFile, Plugin, Risk, ToolContext, ToolOutput, tool

__all__ = ["AttachmentOutput", "OutputFile", "Plugin", "Risk", "ToolContext", "ToolOutput", "tool"]
