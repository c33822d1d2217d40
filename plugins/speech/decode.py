"""Streaming audio decoding with PyAV: any format FFmpeg reads, as 16 kHz mono float32 windows.

faster-whisper's `decode_audio` returns the whole file as one float32 array (an hour at 16 kHz
is 230 MB), and its feature extractor then needs ~16x that while it runs. Here the file is
decoded and resampled frame by frame into one preallocated window buffer; each window ends at
the quietest moment of its last seconds (so words are not cut in half) and is handed out before
the next one is decoded. Memory stays at a window's worth whatever the file's length.

PyAV bundles its own FFmpeg libraries: no system ffmpeg is needed. A damaged packet is
skipped; a file that stops decoding part-way keeps what decoded, with a warning.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Iterator

import numpy as np

from assistant.errors import AttachmentError

SAMPLE_RATE = 16000
FORMATS_HINT = "use a common audio format: WAV, MP3, FLAC, OGG/Opus, M4A/AAC or WebM"
MAX_BAD_PACKETS = 200  # damaged packets in a row before giving up


@dataclass
class AudioInfo:
    container: str = ""
    codec: str = ""
    channels: int = 0
    rate: int = 0
    duration_s: float | None = None  # from the header; None when the container does not say


@dataclass
class AudioReader:
    """Open with `AudioReader.open(path_or_bytes, name)`; iterate `windows()` once.

    After iterating, `decoded_s` is how much audio came out and `warnings` what went wrong
    without stopping it (damaged packets, a file that ends early)."""

    name: str
    container: object
    stream: object
    info: AudioInfo
    warnings: list[str] = field(default_factory=list)
    decoded_samples: int = 0
    bad_packets: int = 0

    @classmethod
    def open(cls, source: str | Path | bytes, name: str | None = None) -> AudioReader:
        import av

        if isinstance(source, (bytes, bytearray, memoryview)):
            name = name or "audio"
            if not len(source):
                raise AttachmentError(f"{name} is empty", hint="attach a recording with content")
            target = io.BytesIO(bytes(source))
        else:
            path = Path(source).expanduser()
            name = name or path.name
            if not path.exists():
                raise AttachmentError(f"audio file {path} does not exist", hint="check the path")
            if not path.is_file():
                raise AttachmentError(f"{path} is not a regular file", hint="give the path of an audio file")
            if path.stat().st_size == 0:
                raise AttachmentError(f"{name} is empty (0 bytes)", hint="attach a recording with content")
            target = str(path)
        try:
            container = av.open(target, metadata_errors="ignore")
        except Exception as exc:  # noqa: BLE001 - av.error.* and OSError: all mean "cannot read"
            raise AttachmentError(
                f"cannot read {name} as audio: {_why(exc)}",
                hint=f"the file is not audio, or is damaged or cut short before its header ends; {FORMATS_HINT}",
            ) from None
        audio = [s for s in container.streams if s.type == "audio"]
        if not audio:
            kinds = " and ".join(sorted({s.type for s in container.streams})) or "no"
            what = container.format.long_name or container.format.name
            container.close()
            raise AttachmentError(
                f"{name} is not audio: it has no audio track (FFmpeg reads it as {what}, with {kinds} streams)",
                hint=FORMATS_HINT,
            )
        stream = audio[0]
        ctx = stream.codec_context
        info = AudioInfo(
            container=container.format.name,
            codec=getattr(ctx, "name", "") or "",
            channels=getattr(ctx, "channels", 0) or 0,
            rate=getattr(ctx, "sample_rate", 0) or 0,
            duration_s=_duration(container, stream),
        )
        return cls(name, container, stream, info)

    def close(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def decoded_s(self) -> float:
        return self.decoded_samples / SAMPLE_RATE

    # --- decoding ----------------------------------------------------------------------------

    def chunks(self) -> Iterator[np.ndarray]:
        """16 kHz mono float32 pieces (one decoded frame each), in order."""
        import av

        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        in_a_row = 0
        try:
            for packet in self.container.demux(self.stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError as exc:  # a damaged packet: skip it, like ffmpeg does
                    self.bad_packets += 1
                    in_a_row += 1
                    if in_a_row > MAX_BAD_PACKETS:
                        self.warnings.append(
                            f"decoding stopped after {self.decoded_s:.1f} s: too many damaged packets ({_why(exc)})"
                        )
                        break
                    continue
                in_a_row = 0
                for frame in frames:
                    frame.pts = None  # gaps and resets in timestamps must not upset the resampler
                    try:
                        out = resampler.resample(frame)
                    except ValueError:  # the input format changed mid-stream (e.g. a new sample rate)
                        yield from self._emit(resampler.resample(None))
                        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
                        out = resampler.resample(frame)
                    yield from self._emit(out)
        except (av.error.FFmpegError, OSError, EOFError) as exc:  # the demuxer gave up (truncated file)
            self.warnings.append(f"decoding stopped after {self.decoded_s:.1f} s: {_why(exc)}")
        try:
            yield from self._emit(resampler.resample(None))
        except Exception:  # noqa: BLE001 - nothing buffered, or a resampler never fed
            pass
        total = self.info.duration_s
        if total and self.decoded_s < total - max(1.0, 0.02 * total):
            self.warnings.insert(
                0, f"the file seems cut short: {self.decoded_s:.1f} s decoded of the {total:.1f} s its header announces"
            )
        if self.bad_packets:
            self.warnings.append(f"{self.bad_packets} damaged packet(s) were skipped")

    def _emit(self, frames) -> Iterator[np.ndarray]:
        for frame in frames:
            samples = frame.to_ndarray().reshape(-1)
            if samples.dtype != np.float32:
                samples = samples.astype(np.float32)
            self.decoded_samples += samples.size
            yield samples

    def windows(self, window_s: float = 180.0, search_s: float = 20.0) -> Iterator[tuple[float, np.ndarray]]:
        """(start in seconds, samples) windows of at most `window_s`, cut at the quietest 0.3 s
        of their last `search_s` seconds.

        The samples are a view into a buffer reused for the next window: use them (transcribe)
        before asking for the next one, and do not keep them.
        """
        size = max(SAMPLE_RATE, int(window_s * SAMPLE_RATE))
        search = max(1, min(int(search_s * SAMPLE_RATE), size // 4))
        buf = np.empty(size, dtype=np.float32)
        filled, start = 0, 0  # samples in buf; index in the whole stream of buf[0]
        for chunk in self.chunks():
            pos = 0
            while pos < chunk.size:
                take = min(size - filled, chunk.size - pos)
                buf[filled : filled + take] = chunk[pos : pos + take]
                filled += take
                pos += take
                if filled == size:
                    cut = quietest_point(buf, size - search, size)
                    yield start / SAMPLE_RATE, buf[:cut]
                    rest = filled - cut
                    buf[:rest] = buf[cut:filled].copy()
                    filled, start = rest, start + cut
        if filled:
            yield start / SAMPLE_RATE, buf[:filled]


def quietest_point(samples: np.ndarray, lo: int, hi: int, frame: int = SAMPLE_RATE // 10) -> int:
    """Index in [lo, hi] at the centre of the quietest 0.3 s (3 frames of 0.1 s) of the range."""
    n = (hi - lo) // frame
    if n < 3:
        return hi
    region = samples[lo : lo + n * frame].reshape(n, frame)
    energy = np.einsum("ij,ij->i", region, region, dtype=np.float64)
    smooth = np.convolve(energy, np.ones(3), mode="valid")  # frames i..i+2
    best = int(np.argmin(smooth))
    return lo + (best + 1) * frame + frame // 2


def _duration(container, stream) -> float | None:
    try:
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
            if seconds > 0:
                return seconds
        if container.duration is not None and container.duration > 0:
            import av

            return container.duration / av.time_base
    except Exception:  # noqa: BLE001 - odd headers: unknown duration
        pass
    return None


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(text).strip().rstrip(".")
