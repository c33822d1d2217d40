"""Benchmark: word error rate and real-time factor of the speech plugin's offline models.

Each bundled model (tiny.en, base) transcribes the same espeak-ng sentences through the plugin
(decoding included, as a user's attachment would go). Prints a Markdown table:

  WER       word error rate over all sentences (word edit distance / reference words)
  recall    share of the reference words found in the transcript
  RTF       transcription wall time / audio duration (below 1 is faster than real time)
  CPU       CPU seconds used (all threads) per audio second: steadier than RTF on a busy machine

`--long MIN` adds a MIN-minute compressed recording (a sentence a minute, quiet noise between;
`--dense`: speech throughout) transcribed by the plugin (streamed in windows and clips) and by
faster-whisper on the whole file, with the peak Python/numpy memory (tracemalloc) of each.

Needs the speech extra and espeak-ng (apt-get install -y espeak-ng).
Usage:  HF_HUB_OFFLINE=1 python bench/bench_speech.py [--models tiny.en,base] [--format ogg]
            [--beam-size 5] [--threads 2] [--long 20 [--dense]]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from assistant.testing import make_plugin  # noqa: E402
from assistant_plugins.speech import Speech  # noqa: E402
from assistant_plugins.speech import testing as synth  # noqa: E402
from assistant_plugins.speech.decode import AudioReader  # noqa: E402


def audio_seconds(path: Path) -> float:
    with AudioReader.open(path) as reader:
        for _ in reader.chunks():
            pass
        return reader.decoded_s


def bench_model(model: str, files: list[tuple[str, Path]], args, models_dir: Path) -> dict:
    plugin = make_plugin(
        Speech,
        {"model": model, "beam_size": args.beam_size, "cpu_threads": args.threads, "models_dir": str(models_dir)},
        data_dir=models_dir / "data",
    )  # fmt: skip
    t0 = time.perf_counter()
    plugin.load()
    load_s = time.perf_counter() - t0
    plugin.transcribe_file(files[0][1])  # warm-up, not timed
    edits = ref_words = found = 0
    busy = audio = cpu = 0.0
    worst = (0.0, "", "")
    for reference, path in files:
        t0, c0 = time.perf_counter(), time.process_time()
        out = plugin.transcribe_file(path)
        busy += time.perf_counter() - t0
        cpu += time.process_time() - c0
        audio += out.metadata["duration_s"]
        n = len(synth.words(reference))
        err = synth.wer(reference, out.text)
        edits += err * n
        ref_words += n
        found += synth.recall(reference, out.text) * n
        if err > worst[0]:
            worst = (err, reference, out.text)
    return {
        "model": plugin.choice.label, "device": plugin.device, "compute": plugin.compute_type, "n": len(files),
        "audio_s": audio, "wer": edits / ref_words, "recall": found / ref_words, "load_s": load_s, "busy_s": busy,
        "rtf": busy / audio, "cpu_s": cpu, "worst": worst,
    }  # fmt: skip


def measure(fn) -> tuple[object, float, float, int]:
    """(result, wall s, CPU s, peak Python/numpy bytes) of fn(), run twice: timed, then under
    tracemalloc (which slows Python code down, so it does not run while timing)."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tracemalloc.start()
    try:
        fn()
        return result, wall, cpu, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_long(minutes: int, tmp: Path, args, models_dir: Path) -> list[dict]:
    from faster_whisper import WhisperModel

    clips = [synth.read_samples(synth.speak(s, tmp / f"long{i}.wav"), 16000) for i, s in enumerate(synth.SENTENCES)]
    block_s = 5.5 if args.dense else 60.0  # dense: one sentence after another; else one a minute
    blocks = int(minutes * 60 / block_s)
    path = synth.write_long(tmp / "long.ogg", clips, block_s=block_s, blocks=blocks, rate=16000)
    settings = {"model": "tiny.en", "cpu_threads": args.threads, "beam_size": args.beam_size}
    plugin = make_plugin(Speech, settings, data_dir=models_dir / "data")
    plugin.load()
    out, wall, cpu, peak = measure(lambda: plugin.transcribe_file(path))
    window = plugin.settings.window_minutes
    rows = [
        {"how": f"plugin ({window:g}-min windows and clips)", "wall": wall, "cpu": cpu,
         "peak": peak, "segments": len(out.metadata["segments"]), "audio_s": out.metadata["duration_s"]}
    ]  # fmt: skip
    stock = WhisperModel(plugin.choice.source, device="cpu", compute_type="int8", cpu_threads=args.threads)

    def whole_file():
        segments, info = stock.transcribe(str(path), vad_filter=True, beam_size=args.beam_size)
        return list(segments), info

    (segments, info), wall, cpu, peak = measure(whole_file)
    rows.append({"how": "faster-whisper on the whole file", "wall": wall, "cpu": cpu, "peak": peak,
                 "segments": len(segments), "audio_s": info.duration})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny.en,base", help="comma-separated: tiny.en, base, a folder...")
    ap.add_argument("--format", default="wav", choices=sorted(synth.FORMATS), help="encode the sentences to this first")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="CTranslate2 CPU threads")
    ap.add_argument("--voice", default="en-us", help="espeak-ng voice")
    ap.add_argument("--long", type=int, default=0, metavar="MIN", help="also a MIN-minute recording (memory)")
    ap.add_argument("--dense", action="store_true", help="the long recording is speech throughout")
    ap.add_argument("--models-dir", default=str(ROOT / ".cache" / "test-models" / "speech-models"))
    args = ap.parse_args()
    if not synth.espeak_available():
        sys.exit("espeak-ng is not installed: apt-get install -y espeak-ng")

    with tempfile.TemporaryDirectory(prefix="bench-speech-") as tmp:
        tmp = Path(tmp)
        files = []
        for i, sentence in enumerate(synth.SENTENCES):
            wav = synth.speak(sentence, tmp / f"s{i:02d}.wav", voice=args.voice)
            files.append(
                (sentence, wav if args.format == "wav" else synth.encode(wav, tmp / f"s{i:02d}.{args.format}"))
            )
        results = [
            bench_model(m.strip(), files, args, Path(args.models_dir)) for m in args.models.split(",") if m.strip()
        ]
        long_rows = bench_long(args.long, tmp, args, Path(args.models_dir)) if args.long else []

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n### Speech-to-text: {len(files)} espeak-ng sentences ({args.voice}, {args.format}), "
          f"{platform.machine()} {os.cpu_count()} cores, {args.threads} threads, beam {args.beam_size}, "
          f"load average {load:.1f} at the end\n")  # fmt: skip
    print("| model | device | compute | audio | WER | word recall | load | transcribe | RTF | CPU time | CPU/audio |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        cells = [
            r["model"], r["device"], r["compute"], f"{r['audio_s']:.1f} s", f"{r['wer']:.1%}", f"{r['recall']:.1%}",
            f"{r['load_s']:.2f} s", f"{r['busy_s']:.2f} s", f"{r['rtf']:.3f}", f"{r['cpu_s']:.1f} s",
            f"{r['cpu_s'] / r['audio_s']:.3f}",
        ]  # fmt: skip
        print("| " + " | ".join(cells) + " |")
    for r in results:
        if r["worst"][0] > 0:
            print(f"\nWorst for {r['model']} ({r['worst'][0]:.0%}): {r['worst'][1]!r} -> {r['worst'][2]!r}")
    if long_rows:
        whole = long_rows[0]["audio_s"] * 16000 * 4
        kind = "dense speech" if args.dense else "a sentence a minute"
        print(f"\n### A {args.long}-minute Opus recording ({kind}), tiny.en; the whole file as float32 is "
              f"{whole / 1e6:.0f} MB\n")  # fmt: skip
        print("| how | segments | wall | RTF | CPU time | peak numpy memory |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in long_rows:
            print(f"| {r['how']} | {r['segments']} | {r['wall']:.1f} s | {r['wall'] / r['audio_s']:.3f} "
                  f"| {r['cpu']:.1f} s | {r['peak'] / 1e6:.0f} MB |")  # fmt: skip


if __name__ == "__main__":
    main()
