"""Push-to-talk recording: the unavailable paths for real, the recording path on a fake device."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from assistant.dialogue.attachments import sniff
from assistant.errors import AttachmentError
from assistant_plugins.speech import microphone
from assistant_plugins.speech.microphone import MicrophoneUnavailable, Recorder, microphone_available, record

pytestmark = pytest.mark.speech


def test_without_sounddevice_it_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if not installed
    ok, why = microphone_available()
    assert ok is False and "pip install sounddevice" in why
    with pytest.raises(MicrophoneUnavailable, match="sounddevice") as info:
        record(seconds=1)
    assert "pip install sounddevice" in info.value.hint


def test_really_unavailable_here():
    """This environment has no sounddevice (the project does not install it)."""
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        ok, why = microphone_available()
        assert not ok and ("pip install sounddevice" in why or "PortAudio" in why)
    else:  # pragma: no cover - a developer machine with a sound stack
        pytest.skip("sounddevice is installed here")


class FakePortAudioError(Exception):
    pass


def fake_sounddevice(*, inputs: int = 1, rates: tuple[int, ...] = (16000, 48000), missing: bool = False):
    """A stand-in for the sounddevice module: an input stream that feeds a steady tone."""
    import numpy as np

    mod = types.ModuleType("sounddevice")
    mod.PortAudioError = FakePortAudioError

    def query_devices(device=None, kind=None):
        if missing:
            raise FakePortAudioError("Error querying device -1")
        return {"name": "Fake Mic", "max_input_channels": inputs, "default_samplerate": 48000.0}

    class InputStream:
        def __init__(self, *, samplerate, channels, dtype, device, callback):
            if samplerate not in rates:
                raise FakePortAudioError("Invalid sample rate")
            self.rate, self.callback = samplerate, callback
            self.running = threading.Event()
            self.closed = False

        def start(self):
            self.running.set()
            self.thread = threading.Thread(target=self._feed, daemon=True)
            self.thread.start()

        def _feed(self):
            block = self.rate // 50  # 20 ms blocks
            t = 0
            while self.running.is_set():
                n = np.arange(t, t + block)
                data = (0.3 * 32767 * np.sin(2 * np.pi * 440 * n / self.rate)).astype("<i2").reshape(-1, 1)
                self.callback(data, block, None, None)
                t += block
                time.sleep(0.02)  # real time

        def stop(self):
            self.running.clear()
            self.thread.join()

        def close(self):
            self.closed = True

    mod.query_devices = query_devices
    mod.InputStream = InputStream
    return mod


def test_no_input_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(missing=True))
    ok, why = microphone_available()
    assert not ok and why.startswith("no input device")
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(inputs=0))
    ok, why = microphone_available()
    assert not ok and "no input" in why
    with pytest.raises(MicrophoneUnavailable, match="no input"):
        Recorder().start()


def test_portaudio_missing(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fail(name, *a, **kw):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return real_import(name, *a, **kw)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", fail)
    ok, why = microphone_available()
    assert not ok and "PortAudio" in why and "libportaudio2" in why


def test_record_seconds_gives_a_wav_attachment(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    assert microphone_available() == (True, "input device: Fake Mic")
    levels = []
    att = record(seconds=0.3, on_level=levels.append)
    assert att.kind == "audio" and att.mime == "audio/wav" and att.filename.startswith("recording-")
    assert att.path is None and att.size == len(att.data)
    assert sniff(att.data, filename=att.filename).kind == "audio"
    seconds = (att.size - 44) / 2 / 16000
    assert abs(seconds - 0.3) < 0.021  # capped at the requested length
    assert levels and 0.15 < max(levels) < 0.3


def test_push_to_talk_until_stopped_and_fallback_rate(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice(rates=(48000,)))  # no 16 kHz
    stop = threading.Event()
    threading.Timer(0.25, stop.set).start()
    started = time.monotonic()
    att = record(until=stop, max_seconds=5)
    assert time.monotonic() - started < 2
    import io
    import wave

    with wave.open(io.BytesIO(att.data)) as w:
        assert w.getframerate() == 48000 and w.getnchannels() == 1 and 0.1 < w.getnframes() / 48000 < 1.5


def test_recorder_start_stop_cancel(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    rec = Recorder(max_seconds=0.1).start()
    assert rec.recording
    assert rec.full.wait(2)  # stops taking audio at max_seconds
    att = rec.stop()
    assert not rec.recording and (att.size - 44) / 2 == 1600
    rec = Recorder().start()
    rec.cancel()
    with pytest.raises(AttachmentError, match="nothing was recorded"):
        rec.stop()
    with pytest.raises(ValueError):
        record()


def test_recording_transcribes(monkeypatch, tmp_path):
    """What the TUI will do: the recorded attachment goes through the plugin like any other."""
    pytest.importorskip("faster_whisper")
    from assistant.testing import make_plugin
    from assistant_plugins.speech import Speech

    monkeypatch.setitem(sys.modules, "sounddevice", fake_sounddevice())
    att = record(seconds=0.5)
    plugin = make_plugin(Speech, {"model": "tiny.en"}, data_dir=tmp_path)
    out = plugin.transcribe_file(att.data, att.filename)  # a tone: no words
    assert out.title.startswith(f"Transcript of {att.filename} (") and out.metadata["duration_s"] == 0.5
    assert microphone.SAMPLE_RATE == 16000
