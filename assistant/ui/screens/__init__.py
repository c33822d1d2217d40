"""Screens of the terminal UI: the chat screen and its modal dialogs."""

from .chat import ChatScreen
from .dialogs import ApprovalScreen, ConfirmScreen, RenameScreen

__all__ = ["ApprovalScreen", "ChatScreen", "ConfirmScreen", "RenameScreen"]
