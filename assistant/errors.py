"""One exception hierarchy for everything the user can be told about.

Every error carries a message that says what happened *and* what to do next, and an
exit code class so the CLI can map it without inspecting message text.
"""

from __future__ import annotations

# Exit codes (documented in the README):
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: unexpected exception
EXIT_USAGE = 2  # bad flags, bad config, bad input file
EXIT_MODEL = 3  # the engine / model failed or refused
EXIT_INTERRUPTED = 130


class AssistantError(Exception):
    """Base of every error meant for the user."""

    exit_code = EXIT_INTERNAL
    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        msg = super().__str__()
        return f"{msg}\n  → {self.hint}" if self.hint else msg


# --- user misuse: fix your input ---------------------------------------------------


class UsageError(AssistantError):
    exit_code = EXIT_USAGE


class SettingsError(UsageError):
    """config.toml, environment override or --set flag is invalid."""


class AttachmentError(UsageError):
    """An attachment cannot be read or is not what it claims to be."""


# --- the model side: engine, server, request -------------------------------------------


class ModelError(AssistantError):
    exit_code = EXIT_MODEL


class ModelNotFound(ModelError):
    """The configured model id / folder cannot be resolved."""


class EngineNotInstalled(ModelError):
    """vLLM (or the conversion tooling) is not installed in this environment."""


class EngineStartFailed(ModelError):
    """The local vLLM server exited or did not become healthy in time."""


class EngineUnreachable(ModelError):
    """Nothing answers at the configured base_url."""


class RequestTimedOut(ModelError):
    """The server accepted the connection but did not answer in time."""


class RequestRejected(ModelError):
    """The server answered with a 4xx that is not one of the cases below."""

    def __init__(self, message: str, *, status: int = 400, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class ContextTooLong(RequestRejected):
    """The prompt (plus requested output) exceeds the model's context window."""


class ImagesNotSupported(ModelError):
    """Images were attached but the served model cannot take them."""


class ServerError(ModelError):
    """The server answered 5xx."""


class StreamInterrupted(ModelError):
    """The response stream broke before it finished; `partial_text` keeps what arrived."""

    def __init__(self, message: str, *, partial_text: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.partial_text = partial_text


# --- plugins ----------------------------------------------------------------------------


class PluginError(UsageError):
    """A plugin is broken or misconfigured, or two plugins clash."""
