"""Transcription of a decoded stream with faster-whisper, in bounded memory, with progress.

The stream comes in windows (decode.AudioReader.windows). Voice activity detection runs on
each window; the speech it finds is copied out and collected, across windows, into clips of at
most `clip_s` seconds of speech (the plugin uses the window's length), and each clip is one
faster-whisper call. So:

- memory is bounded by a window plus a clip, whatever the file's length (with the blockwise
  feature extractor of features.py: faster-whisper's own needs ~1 MB per second of the audio
  it is given, 3.7 GB for an hour of speech in one call);
- a sparse recording (a few sentences in an hour) costs a few calls, not one per window;
- times are mapped back to the stream per word, and a segment that spans a removed pause is
  split there. (faster-whisper's own VAD mapping put a segment's end at the start of the next
  speech chunk: a sentence said at 0-4 s followed by a minute of silence came out as 0-60 s.)

The language is detected on the first clip with words and kept for the rest. The tail of each
clip's text primes the next one (`initial_prompt`), as Whisper does across its own 30-second
steps.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .decode import SAMPLE_RATE, AudioReader, quietest_point

PROMPT_CHARS = 200
CLIP_S = 180.0  # seconds of speech per faster-whisper call, at most
SPLIT_GAP_S = 1.0  # a removed pause at least this long ends a segment


class Cancelled(Exception):
    """The caller set the stop event: the turn was cancelled."""


@dataclass
class Segment:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    text: str
    language: str | None
    language_probability: float | None
    duration_s: float
    segments: list[Segment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    speech_found: bool = False


@dataclass
class Options:
    language: str | None = None  # None: detect
    vad: bool = True
    beam_size: int = 5
    window_s: float = 180.0
    clip_s: float = CLIP_S


def transcribe_reader(
    model: Any,
    reader: AudioReader,
    options: Options,
    *,
    progress: Callable[[float | None], None] = lambda fraction: None,
    stop: threading.Event | None = None,
) -> Transcript:
    """Transcribe everything `reader` decodes. `progress(fraction)` is called as work is done."""
    multilingual = bool(getattr(model.model, "is_multilingual", True))
    state = {"language": options.language if multilingual else "en", "probability": None, "tail": "", "done": 0.0}
    total = reader.info.duration_s
    segments: list[Segment] = []
    pending: list[np.ndarray] = []  # speech samples waiting for the next call
    chunks: list[tuple[int, int]] = []  # where they are in the stream (sample indices)
    clip_samples = int(options.clip_s * SAMPLE_RATE)

    def report(seconds: float) -> None:
        state["done"] = max(state["done"], seconds)  # never backwards: speech is transcribed late
        progress(min(1.0, state["done"] / total) if total else None)

    def check() -> None:
        if stop is not None and stop.is_set():
            raise Cancelled

    def flush() -> None:
        if not pending:
            return
        clip = pending[0] if len(pending) == 1 else np.concatenate(pending)
        timeline = Timeline(list(chunks))
        pending.clear()
        chunks.clear()
        parts, info = model.transcribe(
            clip,
            language=state["language"],
            vad_filter=False,  # done already, with exact timestamps
            beam_size=options.beam_size,
            initial_prompt=state["tail"] or None,
            word_timestamps=timeline.has_gaps,  # to split segments at removed pauses
        )
        texts = []
        for seg in parts:  # lazy: each segment is decoded as it is asked for
            check()
            for start, end, text in timeline.split(seg):
                segments.append(Segment(round(start, 2), round(end, 2), text))
                texts.append(text)
                report(end)
        if texts:
            state["tail"] = " ".join(texts)[-PROMPT_CHARS:]
            if state["language"] is None:  # detected on the first clip with words; kept from then on
                state["language"] = info.language
                state["probability"] = round(float(info.language_probability), 3)

    speech = False
    for offset, audio in reader.windows(options.window_s):
        check()
        base = round(offset * SAMPLE_RATE)
        for a, b in _pieces(audio, options.vad, clip_samples):
            speech = speech or options.vad
            if pending and sum(p.size for p in pending) + (b - a) > clip_samples:
                flush()
            pending.append(audio[a:b].copy())  # the window's buffer is reused for the next one
            if chunks and chunks[-1][1] == base + a:  # continues across the window's edge
                chunks[-1] = (chunks[-1][0], base + b)
            else:
                chunks.append((base + a, base + b))
        if not options.vad:  # no pauses to wait for: transcribe window by window
            flush()
        report(offset + audio.size / SAMPLE_RATE if not pending else chunks[0][0] / SAMPLE_RATE)
    check()
    flush()
    report(reader.decoded_s)

    language = state["language"]
    return Transcript(
        text=" ".join(s.text for s in segments),
        language=language if (segments or options.language or not multilingual) else None,
        language_probability=state["probability"] if segments else None,
        duration_s=round(reader.decoded_s, 2),
        segments=segments,
        warnings=list(reader.warnings),
        speech_found=speech or bool(segments),
    )


def _pieces(audio: np.ndarray, vad: bool, limit: int) -> list[tuple[int, int]]:
    """Sample ranges of a window to transcribe, none longer than `limit`: its speech (VAD), or
    all of it cut at quiet moments."""
    if vad:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        options = VadOptions(max_speech_duration_s=limit / SAMPLE_RATE)  # split long speech at short pauses
        return [(c["start"], c["end"]) for c in get_speech_timestamps(audio, options) if c["end"] > c["start"]]
    pieces, start = [], 0
    while audio.size - start > limit:
        cut = quietest_point(audio, start + limit // 2, start + limit)
        pieces.append((start, cut))
        start = cut
    if audio.size > start:
        pieces.append((start, audio.size))
    return pieces


class Timeline:
    """Maps times in a clip of concatenated speech chunks (sample ranges of the stream) back to
    times in the stream."""

    def __init__(self, chunks: list[tuple[int, int]]) -> None:
        self.chunks = chunks
        self.starts_in_clip = []
        self.group = []  # chunks separated by less than SPLIT_GAP_S share a group
        at, group = 0, 0
        for i, (start, end) in enumerate(chunks):
            if i and start - chunks[i - 1][1] >= SPLIT_GAP_S * SAMPLE_RATE:
                group += 1
            self.starts_in_clip.append(at)
            self.group.append(group)
            at += end - start

    @property
    def has_gaps(self) -> bool:
        return bool(self.group) and self.group[-1] > 0

    def chunk_at(self, seconds: float, *, end: bool = False) -> int:
        x = round(seconds * SAMPLE_RATE)
        # An end that falls exactly on a joint belongs to the chunk before it.
        find = bisect.bisect_left if end else bisect.bisect_right
        return max(0, min(find(self.starts_in_clip, x) - 1, len(self.chunks) - 1))

    def original(self, seconds: float, *, end: bool = False, chunk: int | None = None) -> float:
        i = self.chunk_at(seconds, end=end) if chunk is None else chunk
        start, stop = self.chunks[i]
        x = round(seconds * SAMPLE_RATE) - self.starts_in_clip[i]
        return min(max(start + x, start), stop) / SAMPLE_RATE

    def split(self, seg: Any) -> list[tuple[float, float, str]]:
        """A Whisper segment of the clip -> (start, end, text) in the stream: one piece per
        group of chunks its words fall in (by each word's middle)."""
        text = seg.text.strip()
        words = [w for w in (getattr(seg, "words", None) or []) if w.word.strip()]
        if not self.has_gaps or not words:
            return [(self.original(seg.start), self.original(seg.end, end=True), text)] if text else []
        runs: list[tuple[int, list]] = []  # (group, [(chunk, word), ...])
        for w in words:
            i = self.chunk_at((w.start + w.end) / 2)
            if runs and runs[-1][0] == self.group[i]:
                runs[-1][1].append((i, w))
            else:
                runs.append((self.group[i], [(i, w)]))
        out = []
        for _, run in runs:
            piece = "".join(w.word for _, w in run).strip()
            if piece:
                (first, w0), (last, w1) = run[0], run[-1]
                out.append((self.original(w0.start, chunk=first), self.original(w1.end, chunk=last), piece))
        return out
