"""Test audio made on the spot: espeak-ng speech, re-encoded with PyAV's own FFmpeg.

Used by the speech tests and `bench/bench_speech.py`; nothing binary is committed. espeak-ng
is a Debian package (`apt-get install -y espeak-ng`); the encoders come with the `av` wheel.

    wav = speak("The quick brown fox.", tmp / "fox.wav")
    ogg = encode(wav, tmp / "fox.ogg")          # the format follows the extension

`scenario_speech` gives scenario files their `speech` attachments (the `assistant.testing` entry
point of the same name, in pyproject.toml).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from assistant.plugin_api import ScenarioAttachment

# Sentences whose words tiny.en and base get mostly right when espeak-ng says them.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "The weather today is sunny with a light breeze from the west.",
    "We need to buy milk, bread and eggs before the shop closes.",
    "My flight to London leaves at seven in the morning.",
    "The meeting has been moved to Thursday afternoon.",
    "Turn left at the second traffic light and then go straight ahead.",
    "She reads a book every evening before going to sleep.",
    "The children played football in the park until it got dark.",
    "Remember to send the report to the manager by Friday.",
    "A cup of hot coffee is the best way to start the day.",
    "The train was late because of the heavy snow.",
]
GERMAN = "Guten Morgen. Heute ist das Wetter sehr schön, und wir gehen zusammen in den Park."


@dataclass(frozen=True)
class Format:
    container: str
    codecs: tuple[str, ...]  # first one PyAV's FFmpeg has wins
    rate: int


FORMATS: dict[str, Format] = {
    "wav": Format("wav", ("pcm_s16le",), 22050),
    "mp3": Format("mp3", ("libmp3lame", "mp3"), 44100),
    "flac": Format("flac", ("flac",), 22050),
    "ogg": Format("ogg", ("libopus", "opus"), 48000),
    "opus": Format("ogg", ("libopus", "opus"), 48000),
    "m4a": Format("ipod", ("aac",), 44100),
    "webm": Format("webm", ("libopus", "opus"), 48000),
}


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, path: str | Path, *, voice: str = "en-us", speed: int = 150) -> Path:
    """Say `text` with espeak-ng into a WAV file (22.05 kHz mono)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install -y espeak-ng")
    path = Path(path)
    subprocess.run([exe, "-v", voice, "-s", str(speed), "-w", str(path), text], check=True, capture_output=True)
    return path


def encoder_for(fmt: str) -> str | None:
    """The codec PyAV's bundled FFmpeg encodes `fmt` with, or None if it has none."""
    import av

    for name in FORMATS[fmt].codecs:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - UnknownCodecError and friends
            continue
    return None


def encode(src: str | Path, dst: str | Path, *, fmt: str | None = None, bitrate: int | None = None) -> Path:
    """Re-encode an audio file with PyAV. `fmt` defaults to `dst`'s extension."""
    import av

    dst = Path(dst)
    fmt = fmt or dst.suffix.lstrip(".").lower()
    spec = FORMATS[fmt]
    codec = encoder_for(fmt)
    if codec is None:
        raise RuntimeError(f"PyAV's FFmpeg has no encoder for {fmt} (tried {', '.join(spec.codecs)})")
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=spec.container) as out:
        ost = out.add_stream(codec, rate=spec.rate, layout="mono")
        if bitrate:
            ost.bit_rate = bitrate
        if codec == "opus":  # FFmpeg's own Opus encoder is marked experimental
            ost.codec_context.options = {"strict": "-2"}
        resampler = av.AudioResampler(format=ost.codec_context.format.name, layout="mono", rate=spec.rate)
        for frame in inp.decode(audio=0):
            frame.pts = None
            for piece in resampler.resample(frame):
                out.mux(ost.encode(piece))
        for piece in resampler.resample(None):
            out.mux(ost.encode(piece))
        out.mux(ost.encode(None))
    return dst


def read_samples(path: str | Path, rate: int = 16000):
    """A (short) audio file as float32 mono samples at `rate`."""
    import av
    import numpy as np

    with av.open(str(path)) as inp:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces = [f.to_ndarray().reshape(-1) for frame in inp.decode(audio=0) for f in resampler.resample(frame)]
        pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(pieces).astype(np.float32) if pieces else np.zeros(0, np.float32)


def write_long(
    path: str | Path,
    clips: list,
    *,
    block_s: float = 60.0,
    blocks: int = 21,
    noise: float = 0.002,
    rate: int | None = None,
) -> Path:
    """A long recording, encoded as it is made (never whole in memory): block k starts with
    clips[k % len(clips)] (float32 samples at `rate`, default the format's usual rate) and is
    quiet noise for the rest of `block_s`."""
    import av
    import numpy as np

    path = Path(path)
    spec = FORMATS[path.suffix.lstrip(".").lower()]
    codec = encoder_for(path.suffix.lstrip(".").lower())
    rate = rate or spec.rate
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format=spec.container) as out:
        ost = out.add_stream(codec, rate=rate, layout="mono")
        if codec == "opus":
            ost.codec_context.options = {"strict": "-2"}
        fmt = ost.codec_context.format.name
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate)
        step = rate  # one second per frame handed to the encoder
        for k in range(blocks):
            block = np.zeros(int(block_s * rate), dtype=np.float32)
            clip = clips[k % len(clips)][: block.size]
            block[: clip.size] = clip
            block += (rng.standard_normal(block.size) * noise).astype(np.float32)
            for at in range(0, block.size, step):
                piece = block[at : at + step].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="flt", layout="mono")
                frame.sample_rate = rate
                for f in resampler.resample(frame):
                    out.mux(ost.encode(f))
        for f in resampler.resample(None):
            out.mux(ost.encode(f))
        out.mux(ost.encode(None))
    return path


def write_wav(path: str | Path, samples, rate: int = 16000) -> Path:
    """float32 samples in [-1, 1] -> 16-bit mono WAV."""
    import wave

    import numpy as np

    pcm = (np.clip(np.asarray(samples, dtype=np.float32), -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return Path(path)


def words(text: str) -> list[str]:
    """Lower-case words, punctuation dropped: what WER compares."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance / reference length."""
    ref, hyp = words(reference), words(hypothesis)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(1, len(ref))


def recall(reference: str, hypothesis: str) -> float:
    """Share of the reference's words found anywhere in the hypothesis."""
    ref, hyp = words(reference), set(words(hypothesis))
    return sum(w in hyp for w in ref) / max(1, len(ref))


# --- for scenario files: the `assistant.testing` entry point `speech` --------------------------


def _write_speech(path: Path, text: str) -> None:
    """`{"name": "memo.ogg", "speech": "The box was crushed"}`: the words said by espeak-ng, in
    the format the name's extension asks for."""
    if path.suffix.lower() == ".wav":
        speak(text, path)
    else:
        encode(speak(text, path.with_suffix(".src.wav")), path)


def _missing_for_speech() -> list[str]:
    missing = []
    if not espeak_available():
        missing.append("espeak-ng (apt-get install -y espeak-ng) to make the test speech")
    try:
        import av  # noqa: F401
        import faster_whisper  # noqa: F401
    except ImportError:
        missing.append("the speech extra (pip install 'assistant[speech]')")
    return missing


scenario_speech = ScenarioAttachment(write=_write_speech, missing=_missing_for_speech)
