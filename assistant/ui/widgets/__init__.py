"""Widgets of the terminal UI. They show plain values and post messages; none of them imports
the model or dialogue layers (the screen feeds them)."""

from .attachments import AttachmentChip, AttachmentTray
from .image_preview import ImagePreview
from .messages import AssistantMessage, MessageList, Note, ProducedFile, UserMessage
from .progress_panel import ProgressPanel, ProgressRow
from .prompt import PromptInput, pasted_path
from .sessions import SessionItem, SessionsSidebar
from .tool_panel import ToolCallPanel

__all__ = [
    "AssistantMessage",
    "AttachmentChip",
    "AttachmentTray",
    "ImagePreview",
    "MessageList",
    "Note",
    "ProducedFile",
    "ProgressPanel",
    "ProgressRow",
    "PromptInput",
    "SessionItem",
    "SessionsSidebar",
    "ToolCallPanel",
    "UserMessage",
    "pasted_path",
]
