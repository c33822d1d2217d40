"""Front-end capabilities: push-to-talk is offered only when a loaded plugin declares a
`Recorder` (the speech plugin does), and records through that plugin's callable."""

from __future__ import annotations

import io
import threading
import wave

import pytest

from assistant.dialogue.turn import Dialogue
from assistant.plugin_api import Plugin
from assistant.plugin_api.contract import Capability, Recorder
from assistant.runtime import load_registry
from assistant.settings import load_settings
from assistant.testing.fake_model import ScriptedModel
from assistant.ui.app import create_app
from assistant.ui.backend import ChatBackend

from . import Shop, capture_notifications, make_app, make_backend, run_command, wait_until


def wav_bytes(seconds: float = 0.2, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(int(seconds * rate) * 2))
    return buf.getvalue()


class Dictaphone(Plugin):
    """A third-party plugin with a push-to-talk recorder and no microphone: it returns WAV bytes."""

    name = "dictaphone"
    description = "Records memos"

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.started = threading.Event()
        self.stops: list[bool] = []

    def capabilities(self):
        return (Recorder(name="memo", label="Dictate", description="Dictate a memo", record=self._record, filename="memo.wav"),)

    def _record(self, stop: threading.Event) -> bytes:
        self.started.set()
        self.stops.append(stop.wait(5))  # True: the second key press stopped it
        return wav_bytes()


class Broken(Plugin):
    name = "broken"

    def capabilities(self):
        raise RuntimeError("capabilities() has a bug")


async def footer_actions(pilot) -> set[str]:
    """The actions the footer shows keys for, once it shows any."""
    from textual.widgets._footer import FooterKey

    chat = pilot.app.chat
    await wait_until(pilot, lambda: chat.query(FooterKey), what="the footer's keys")
    return {key.action for key in chat.query(FooterKey)}


def registry_app(tmp_path, **plugins_table):
    """The app over the installed plugins (entry points), configured like config.toml's [plugins]."""
    settings = load_settings(
        overrides={"paths": {"state_dir": str(tmp_path / "state")}, "plugins": plugins_table},
        environ={"XDG_CONFIG_HOME": str(tmp_path / "no-config")},
    )
    dialogue = Dialogue(ScriptedModel("ok"), settings=settings, registry=load_registry(settings), model_name="scripted")
    return create_app(ChatBackend(dialogue), export_dir=tmp_path, clock=lambda: 0.0)


async def palette_names(pilot) -> list[str]:
    """The commands the palette lists before anything is typed (every provider's discover())."""
    from textual.command import CommandList, CommandPalette

    app = pilot.app
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the command palette")
    options = app.screen.query_one(CommandList)
    await wait_until(pilot, lambda: any("New session" in str(o.prompt) for o in options.options), what="the chat's commands")
    names = [str(options.get_option_at_index(i).prompt).split("\n")[0] for i in range(options.option_count)]
    await pilot.press("escape")
    return names


async def test_with_the_speech_plugin_disabled_the_app_starts_without_push_to_talk(tmp_path):
    app = registry_app(tmp_path, disabled=["speech"])
    seen = capture_notifications(app)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.chat.query("PromptInput"))
        assert "speech" not in app.backend.dialogue.registry.plugins and app.backend.recorder() is None
        assert "voice" not in await footer_actions(pilot) and "ctrl+r" not in app.chat.active_bindings
        assert "Voice input" not in await palette_names(pilot)
        await pilot.press("ctrl+r")  # not bound: nothing records, nothing fails
        await pilot.pause(0.1)
        assert app.chat._recording is None and not seen and app.is_running
        app.chat.prompt.value = "/help"
        await pilot.press("enter")
        await wait_until(pilot, lambda: seen)
        assert "/voice" not in seen[-1][2]


async def test_the_installed_speech_plugin_offers_push_to_talk(tmp_path):
    app = registry_app(tmp_path)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.chat.query("PromptInput"))
        recorder = app.backend.recorder()
        assert isinstance(recorder, Recorder) and recorder.label == "Voice input"
        assert "voice" in await footer_actions(pilot) and app.chat.active_bindings["ctrl+r"].enabled


async def test_a_plugins_recorder_is_offered_and_records_through_its_callable(tmp_path):
    app = make_app(tmp_path, plugins=(Shop, Dictaphone))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.chat.query("PromptInput"))
        assert "voice" in await footer_actions(pilot)
        assert "Dictate" in await palette_names(pilot)
        plugin = app.backend.dialogue.registry.plugins["dictaphone"]
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: plugin.started.is_set() and app.chat._recording is not None, what="recording")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: app.chat.tray.items, what="the recording in the tray")
        [memo] = app.chat.tray.items
        assert plugin.stops == [True]
        assert (memo.filename, memo.kind, memo.mime, memo.data) == ("memo.wav", "audio", "audio/wav", wav_bytes())


async def test_the_palette_entry_starts_the_recording(tmp_path):
    app = make_app(tmp_path, plugins=(Shop, Dictaphone))
    async with app.run_test() as pilot:
        plugin = app.backend.dialogue.registry.plugins["dictaphone"]
        await run_command(pilot, "Dictate")
        await wait_until(pilot, plugin.started.is_set, what="recording")
        app.chat.stop_recording()
        await wait_until(pilot, lambda: app.chat.tray.items, what="the recording in the tray")


async def test_a_plugin_whose_capabilities_fail_costs_only_its_capability(tmp_path):
    app = make_app(tmp_path, plugins=(Shop, Broken, Dictaphone))
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.chat.query("PromptInput"))
        assert app.backend.recorder().label == "Dictate"


def test_the_backend_says_why_it_cannot_record(tmp_path):
    backend = make_backend(tmp_path)
    assert "speech plugin" in backend.why_no_recording()
    assert "still loading" in ChatBackend(None).why_no_recording()
    with pytest.raises(Exception, match="speech plugin"):
        backend.record(threading.Event())


def test_a_recorder_that_returns_something_else_is_reported(tmp_path):
    class Odd(Plugin):
        name = "odd"

        def capabilities(self):
            return (Recorder(name="mic", label="Voice input", record=lambda stop: "/tmp/voice.wav"),)

    backend = make_backend(tmp_path, plugins=(Odd,))
    with pytest.raises(TypeError, match=r"'Voice input' recorder \(mic\) returned str, not an Attachment or bytes"):
        backend.record(threading.Event())


def test_the_speech_recorder_without_sounddevice_says_what_to_install(monkeypatch):
    import sys

    from assistant_plugins.speech import Speech

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails, as when it is not installed
    [recorder] = Speech().capabilities()
    assert recorder.kind == "recorder" and "pip install sounddevice" in recorder.unavailable()


def test_a_recorder_needs_a_callable_and_a_broken_check_is_a_reason():
    with pytest.raises(TypeError, match="record=a callable"):
        Recorder(name="mic", label="Voice input")

    def check():
        raise OSError("device busy")

    assert Capability(name="x", label="Camera", check=check).unavailable() == "cannot check whether camera works: OSError: device busy"


def test_the_conformance_check_looks_at_capabilities():
    from assistant.testing import check_plugin

    class Twice(Dictaphone):
        name = "twice"

        def capabilities(self):
            return super().capabilities() * 2 + ("a microphone",)

    assert check_plugin(Dictaphone) == []
    assert check_plugin(Broken) == [
        "`description` is missing: one line saying what the plugin does (shown by `assistant plugins list`)",
        "capabilities() raised RuntimeError: capabilities() has a bug; front ends would offer none of them",
    ]
    assert check_plugin(Twice) == [
        "capabilities() must give Capability objects (e.g. Recorder), not 'a microphone'",
        "two capabilities are named 'memo'; give each its own name",
    ]


async def test_the_key_appears_once_the_plugins_have_loaded(tmp_path):
    """As with the real program, whose plugins load in a thread after the screen is up."""
    from . import make_dialogue

    class LoadsLater(ChatBackend):
        needs_prepare = True

        def __init__(self, dialogue):
            super().__init__(None, store=dialogue.store)
            self.later, self.release = dialogue, threading.Event()

        def prepare(self, progress):
            assert self.release.wait(5)

        async def ensure_ready(self):
            if self._dialogue is None:
                self._use(self.later)

        @property
        def registry(self):
            return self.later.registry if self.release.is_set() else None

    backend = LoadsLater(make_dialogue(tmp_path, plugins=(Shop, Dictaphone)))
    app = create_app(backend, export_dir=tmp_path, clock=lambda: 0.0)
    async with app.run_test() as pilot:  # the chat screen starts the backend's prepare()
        assert "voice" not in await footer_actions(pilot)
        backend.release.set()
        await wait_until(pilot, app.backend_ready.is_set, what="the plugins to load")
        await wait_until(pilot, lambda: "voice" in {k.action for k in app.chat.query("FooterKey")}, what="ctrl+r in the footer")
