"""The real terminal program under tmux, against the tiny vLLM server: type a question, read the
screen, quit with ctrl+q.

tmux gives the program a real pseudo-terminal (so Textual's driver, textual-image's terminal
queries and the key handling are the real ones); `capture-pane -p` reads what a person sees.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, cli_env

pytestmark = [pytest.mark.vllm, pytest.mark.tmux]

QUESTION = "Describe a red apple."


class Tmux:
    """One private tmux server (its own socket) with one session."""

    def __init__(self, socket: Path, name: str = "tui") -> None:
        self.socket, self.name = str(socket), name

    def __call__(self, *args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=check, timeout=30, **kw)

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", self.name).stdout

    def alive(self) -> bool:
        return self("has-session", "-t", self.name, check=False).returncode == 0

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen() if self.alive() else screen
            if predicate(screen):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"timed out waiting for {what}; the screen was:\n{screen}")


@pytest.fixture
def tmux(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    t = Tmux(tmp_path / "tmux.sock")
    yield t
    t("kill-server", check=False)


def test_real_program_answers_in_tmux_and_quits_cleanly(tiny_engine, cache_dir, tmp_path, tmux):
    env = cli_env(
        tmp_path,
        cache_dir,
        ASSISTANT_MODEL__BASE_URL=tiny_engine.base_url,
        ASSISTANT_MODEL__MAX_TOKENS="24",
        ASSISTANT_MODEL__TEMPERATURE="0",
        # No system prompt and one step (which offers no tools): a short, quick answer from the
        # random model. Tools in the UI are tested with Pilot.
        ASSISTANT_DIALOGUE__SYSTEM_PROMPT="",
        ASSISTANT_DIALOGUE__MAX_STEPS="1",
        TERM="xterm-256color",
    )
    exit_file = tmp_path / "exit-code"
    program = f"{sys.executable} -m assistant; echo $? > {exit_file}"  # bare `assistant` opens the UI
    # A new server started with this environment: the program inherits it (isolated XDG dirs).
    tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", tmux.name, program, env=env, cwd=ROOT)

    tmux.wait_for(lambda s: "Ask anything" in s, 60, "the prompt")
    # Plugins load in the background; a question typed now waits for them.
    tmux("send-keys", "-t", tmux.name, "-l", QUESTION)
    tmux("send-keys", "-t", tmux.name, "Enter")

    screen = tmux.wait_for(lambda s: "─ Assistant ─" in s or "Error" in s, 180, "an answer")
    assert "Error" not in screen and "Traceback" not in screen, screen
    assert QUESTION in screen and "─ You ─" in screen
    # The answer is saved when the turn ends: then the program can be left.
    store_db = tmp_path / "state" / "assistant" / "sessions.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _answer_saved(store_db):
        time.sleep(0.5)
    assert _answer_saved(store_db), tmux.screen()
    screen = tmux.screen()
    assert "Traceback" not in screen and "(failed)" not in screen, screen

    tmux("send-keys", "-t", tmux.name, "C-q")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not exit_file.exists():
        time.sleep(0.2)
    assert exit_file.exists(), f"the program did not exit; the screen was:\n{tmux.screen()}"
    assert exit_file.read_text().strip() == "0"


def _answer_saved(db: Path) -> bool:
    if not db.exists():
        return False
    from assistant.sessions import SessionStore

    with SessionStore(db, db.parent / "attachments") as store:
        sessions = store.list_sessions()
        if not sessions:
            return False
        messages = store.messages(sessions[0].id)
    return [m["role"] for m in messages][:1] == ["user"] and messages[-1]["role"] == "assistant"
