"""Push-to-talk: record from the microphone into an audio Attachment for the next turn.

Uses `sounddevice` (PortAudio) when it is installed; it is optional and never required:

    ok, why = microphone_available()        # (False, "... pip install sounddevice") without it
    attachment = record(seconds=5)          # or: record(until=stop_event) for push-to-talk

    rec = Recorder(); rec.start()           # key down
    attachment = rec.stop()                 # key up: a WAV Attachment (kind "audio")

The recording is kept in memory as 16-bit WAV (16 kHz mono when the device allows it, which is
what Whisper wants; otherwise the device's own rate, resampled when transcribed).
"""

from __future__ import annotations

import io
import threading
import time
import wave
from datetime import datetime
from typing import Any
from collections.abc import Callable

from assistant.dialogue.attachments import Attachment
from assistant.errors import AttachmentError, UsageError

SAMPLE_RATE = 16000
MAX_SECONDS = 600.0
INSTALL_HINT = "install it with: pip install sounddevice"
PORTAUDIO_HINT = "install the PortAudio library, e.g. apt-get install libportaudio2 (brew install portaudio on macOS)"


class MicrophoneUnavailable(UsageError):
    """No microphone can be used: the library, PortAudio or an input device is missing."""


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError:
        raise MicrophoneUnavailable(
            "recording needs the sounddevice package, which is not installed", hint=INSTALL_HINT
        ) from None
    except OSError as exc:  # sounddevice imports, but cannot find the PortAudio library
        raise MicrophoneUnavailable(f"the PortAudio library is missing ({exc})", hint=PORTAUDIO_HINT) from None
    return sounddevice


def _input_device(sd: Any, device: Any = None) -> dict:
    try:
        info = sd.query_devices(device, kind="input") if device is not None else sd.query_devices(kind="input")
    except Exception as exc:  # noqa: BLE001 - sounddevice.PortAudioError, ValueError
        raise MicrophoneUnavailable(
            f"no input device (microphone) was found: {exc}",
            hint="connect a microphone, or check that this session may use the sound system",
        ) from None
    if not info or int(info.get("max_input_channels", 0) or 0) < 1:
        raise MicrophoneUnavailable(
            f"no input device: {info.get('name', 'the default device') if info else 'none'} has no input channels",
            hint="connect a microphone, or choose another input device",
        )
    return dict(info)


def microphone_available(device: Any = None) -> tuple[bool, str]:
    """(True, "input device: NAME") or (False, the reason and what to do)."""
    try:
        info = _input_device(_sounddevice(), device)
    except MicrophoneUnavailable as exc:
        return False, f"{exc.args[0]}; {exc.hint}" if exc.hint else exc.args[0]
    return True, f"input device: {info.get('name', 'default')}"


class Recorder:
    """Records until `stop()` (or `max_seconds`); `stop()` returns the WAV Attachment.

    `on_level(rms)` is called from the audio thread with each block's loudness (0..1), for a
    level meter. `stop()` raises AttachmentError if nothing was recorded.
    """

    def __init__(
        self,
        *,
        device: Any = None,
        max_seconds: float = MAX_SECONDS,
        on_level: Callable[[float], None] | None = None,
    ) -> None:
        self.device = device
        self.max_seconds = max_seconds
        self.on_level = on_level
        self.samplerate = SAMPLE_RATE
        self.full = threading.Event()  # set when max_seconds is reached
        self._blocks: list[bytes] = []
        self._frames = 0
        self._lock = threading.Lock()
        self._stream: Any = None
        self._started = 0.0

    @property
    def recording(self) -> bool:
        return self._stream is not None

    @property
    def seconds(self) -> float:
        return self._frames / self.samplerate

    def start(self) -> Recorder:
        sd = _sounddevice()
        info = _input_device(sd, self.device)
        try:
            self._stream = self._open(sd, SAMPLE_RATE)
        except Exception:  # noqa: BLE001 - the device does not do 16 kHz: use its own rate
            rate = int(info.get("default_samplerate") or 48000)
            try:
                self._stream = self._open(sd, rate)
            except Exception as exc:  # noqa: BLE001
                raise MicrophoneUnavailable(
                    f"cannot record from {info.get('name', 'the input device')}: {exc}",
                    hint="check that no other program holds the microphone",
                ) from None
        self._started = time.monotonic()
        self._stream.start()
        return self

    def _open(self, sd: Any, rate: int) -> Any:
        self.samplerate = rate
        return sd.InputStream(samplerate=rate, channels=1, dtype="int16", device=self.device, callback=self._callback)

    def _callback(self, indata, frames, time_info, status) -> None:  # the audio thread
        with self._lock:
            room = int(self.max_seconds * self.samplerate) - self._frames
            if room <= 0:
                self.full.set()
                return
            block = indata[: min(frames, room)]
            self._blocks.append(bytes(block))
            self._frames += len(block)
            if self._frames >= int(self.max_seconds * self.samplerate):
                self.full.set()
        if self.on_level is not None:
            try:
                import numpy as np

                samples = np.frombuffer(bytes(block), dtype="<i2").astype(np.float32) / 32768.0
                self.on_level(float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0)
            except Exception:  # noqa: BLE001 - a meter must never break the recording
                pass

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()

    def cancel(self) -> None:
        self._close()
        with self._lock:
            self._blocks.clear()
            self._frames = 0

    def stop(self) -> Attachment:
        self._close()
        with self._lock:
            pcm = b"".join(self._blocks)
            self._blocks.clear()
        if not pcm:
            raise AttachmentError("nothing was recorded", hint="hold the key (or record) a little longer")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.samplerate)
            w.writeframes(pcm)
        data = buf.getvalue()
        name = f"recording-{datetime.now():%Y%m%d-%H%M%S}.wav"
        return Attachment(path=None, data=data, filename=name, mime="audio/wav", kind="audio", size=len(data))


def record(
    seconds: float | None = None,
    *,
    until: threading.Event | None = None,
    device: Any = None,
    max_seconds: float = MAX_SECONDS,
    on_level: Callable[[float], None] | None = None,
) -> Attachment:
    """Record for `seconds`, or until the event `until` is set (push-to-talk), at most
    `max_seconds`. Blocks; run it in a thread from async code. Raises MicrophoneUnavailable."""
    if seconds is None and until is None:
        raise ValueError("give seconds=... or until=threading.Event()")
    limit = min(seconds if seconds is not None else max_seconds, max_seconds)
    rec = Recorder(device=device, max_seconds=limit, on_level=on_level).start()
    # The recorder stops taking audio at `limit` (`full`); the deadline only guards against a
    # device that stops delivering.
    deadline = time.monotonic() + limit + 2.0
    try:
        while not rec.full.is_set() and time.monotonic() < deadline:
            if until is not None and until.wait(0.05):
                break
            rec.full.wait(0.05)
    except BaseException:
        rec.cancel()
        raise
    return rec.stop()


__all__ = ["MicrophoneUnavailable", "Recorder", "microphone_available", "record"]
