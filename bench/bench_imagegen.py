"""Benchmark: seconds per image through the imagegen plugin, as a Markdown table.

Each image goes the way the dialogue sends it: the plugin's `generate` tool (argument
validation, the pipeline with per-step progress, PNG encoding), after one warm-up image per
size. Loading (imports + from_pretrained) is timed separately, once.

Default: the tiny random-weight pipeline the tests use (built into .cache/test-models/tiny-sd),
at 64x64 and 256x256, 4 steps, with torch's default thread count and with 1 thread (on a
shared 2-core machine, torch's spinning threads can make 2 threads far slower than 1).

A real model on a GPU (not run on the project's machines: no GPU and no model hub there):

    python bench/bench_imagegen.py --model stabilityai/sdxl-turbo --sizes 512 1024 --steps 1 4 --runs 10

Usage:  python bench/bench_imagegen.py [--model FOLDER|HUB_ID] [--sizes 64 256] [--steps 4] [--runs 5]
                                       [--threads 0 1] [--device auto] [--dtype auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="pipeline folder or hub id (default: the tiny test pipeline)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256], help="square sizes in pixels")
    parser.add_argument("--steps", type=int, nargs="+", default=[4])
    parser.add_argument("--runs", type=int, default=5, help="timed images per configuration (after 1 warm-up)")
    parser.add_argument("--threads", type=int, nargs="+", default=[0, 1], help="torch CPU threads; 0 = torch's default")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--guidance-scale", type=float, default=0.0)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    import torch

    from assistant.testing import invoke_tool, make_plugin
    from assistant_plugins.imagegen import ImageGen

    model = args.model
    if not model:
        from assistant.testing.tiny_diffusion import build_tiny_sd

        model = str(build_tiny_sd(ROOT / ".cache" / "test-models" / "tiny-sd"))
    default_threads = torch.get_num_threads()
    limit = (max(args.sizes + [512]) + 7) // 8 * 8  # settings want multiples of 8
    settings = {
        "model": model, "device": args.device, "dtype": args.dtype, "guidance_scale": args.guidance_scale,
        "max_width": limit, "max_height": limit, "max_steps": max(args.steps + [50]),
    }  # fmt: skip
    plugin = make_plugin(ImageGen, settings)
    import asyncio

    asyncio.run(plugin.ensure_setup())
    load_s = time.perf_counter() - t0
    loaded = plugin._pipeline
    label = "tiny random SD (tests)" if not args.model else args.model

    rows = []
    for threads in args.threads if loaded.device == "cpu" else [0]:  # threads only matter on the CPU
        n_threads = threads or default_threads
        # A plugin per setting; they share the loaded pipeline. cpu_threads applies in the generating thread.
        runner = make_plugin(ImageGen, {**settings, "cpu_threads": n_threads})
        asyncio.run(runner.ensure_setup())
        for steps in args.steps:
            for size in args.sizes:
                call = {"prompt": "a lighthouse on a cliff at dusk, oil painting", "width": size, "height": size,
                        "steps": steps, "seed": 0}  # fmt: skip
                invoke_tool(runner, "generate", call)  # warm-up: kernels, allocator
                times = []
                for i in range(args.runs):
                    started = time.perf_counter()
                    invoke_tool(runner, "generate", {**call, "seed": i + 1})
                    if loaded.device.startswith("cuda"):
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - started)
                rows.append((n_threads if loaded.device == "cpu" else "-", steps, size, times))
                print(f"  {size}x{size}, {steps} steps, threads {n_threads}: {statistics.median(times):.3f} s",
                      file=sys.stderr, flush=True)  # fmt: skip

    cpu = platform.processor() or platform.machine()
    print(f"\n### imagegen: seconds per image ({label})\n")
    print(f"Device {loaded.device} ({loaded.dtype}), {os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}, "
          f"load (imports + from_pretrained) {load_s:.1f} s, {args.runs} timed images per row after 1 warm-up; "
          f"machine load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after.\n")  # fmt: skip
    print("| size | steps | torch threads | median s/image | min | max | images/s |")
    print("|---|---|---|---|---|---|---|")
    for threads, steps, size, times in rows:
        med = statistics.median(times)
        print(f"| {size}x{size} | {steps} | {threads} | {med:.3f} | {min(times):.3f} | {max(times):.3f} | {1 / med:.1f} |")
    if not args.model:
        print("\nA real model on a GPU is not measured here (no GPU, no model hub); run e.g.\n"
              "`python bench/bench_imagegen.py --model stabilityai/sdxl-turbo --sizes 512 --steps 1 4` on one.")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
