"""A process killed mid-turn loses nothing the dialogue had already committed."""

import subprocess
import sys
import textwrap

from assistant.sessions import SessionStore

CHILD = textwrap.dedent(
    """
    import asyncio, os, sys
    from assistant.dialogue.turn import Dialogue
    from assistant.plugin_api import Plugin, tool
    from assistant.plugin_api.registry import load_plugins
    from assistant.sessions import SessionStore
    from assistant.settings import load_settings
    from assistant.testing.fake_model import ScriptedModel, call

    class Bomb(Plugin):
        name = "bomb"
        description = "dies"

        @tool
        def explode(self) -> str:
            \"\"\"Kill the process, as a crash or power cut would.\"\"\"
            os._exit(9)

    state = sys.argv[1]
    settings = load_settings(overrides={"paths": {"state_dir": state}, "dialogue": {"system_prompt": ""}}, environ={})
    store = SessionStore(__import__("pathlib").Path(state) / "sessions.db", __import__("pathlib").Path(state) / "att")
    registry = load_plugins(extra=[Bomb], include_entry_points=False, data_root=__import__("pathlib").Path(state))
    model = ScriptedModel("First answer.", call("bomb_explode", {}, text="Let me try."), "never reached")
    d = Dialogue(model, settings=settings, registry=registry, store=store, model_name="scripted")

    async def main():
        async for _ in d.turn("first question"):
            pass
        print(d.session_id, flush=True)
        async for _ in d.turn("second question"):
            pass

    asyncio.run(main())
    """
)


def test_kill_during_a_tool_keeps_everything_before_it(tmp_path):
    out = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 9, out.stderr
    session = out.stdout.strip()
    store = SessionStore(tmp_path / "sessions.db", tmp_path / "att")
    history = store.history(session)
    assert [(m["role"], m.get("content")) for m in history] == [
        ("user", "first question"),
        ("assistant", "First answer."),
        ("user", "second question"),
        ("assistant", "Let me try."),
    ]
    assert history[-1]["tool_calls"][0]["function"]["name"] == "bomb_explode"
    store.close()
