"""Benchmark: how long the `assistant` command takes to start, and what it imports.

Every run of `assistant` parses its command line first, so this is the floor under every command;
`assistant --help` must stay under 100 ms. Each command runs as a fresh process of the installed
console script (next to this Python), interleaved round by round. A separate run of each counts
the plugin command modules (the `assistant.commands` entry-point group) in sys.modules at its
exit: 0 for `--help`, which lists plugin commands from their entry_points.txt and docstrings
without importing them; 1 for `kb --help`, which builds kb's real parser.

Usage:  python bench/bench_cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.cli import discover_commands  # noqa: E402

COMMANDS = [["--help"], ["config", "path"], ["kb", "--help"]]


def _env(home: str) -> dict[str, str]:
    # A fresh config/state folder, so no user config.toml is read and timed.
    return {**os.environ, "XDG_CONFIG_HOME": f"{home}/config", "XDG_STATE_HOME": f"{home}/state"}


def _time(script: Path, argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(script), *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"assistant {' '.join(argv)} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return took


# `assistant ARGV...` as the console script runs it, then the modules it imported, to a file (not
# -X importtime: a library that swaps sys.stderr, as kb's dependencies do, hides later imports).
_MODULES_AFTER = """import json, sys
from assistant.cli import main
try:
    code = main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
with open(sys.argv[1], "w") as fh:
    json.dump(sorted(sys.modules), fh)
sys.exit(code)
"""


def imported_modules(argv: list[str], env: dict[str, str], out: Path) -> set[str]:
    """What `assistant ARGV...` imported (tests/unit/test_plugin_commands.py uses this too)."""
    done = subprocess.run([sys.executable, "-c", _MODULES_AFTER, str(out), *argv], env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"assistant {' '.join(argv)} failed: {done.stderr[-500:]}")
    return set(json.loads(out.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs of each command (default 20)")
    args = parser.parse_args()
    script = Path(sys.executable).with_name("assistant")
    if not script.exists():
        raise SystemExit(f"no console script at {script}: run scripts/setup.sh, then this with .venv/bin/python")
    with tempfile.TemporaryDirectory() as home:
        env = _env(home)
        for argv in COMMANDS:  # warm the page cache and __pycache__ first
            _time(script, argv, env)
        times: dict[str, list[float]] = {" ".join(argv): [] for argv in COMMANDS}
        for _ in range(args.runs):
            for argv in COMMANDS:
                times[" ".join(argv)].append(_time(script, argv, env))
        plugin_modules = {cmd.module for cmd in discover_commands()}
        print(f"{args.runs} runs of each command, interleaved:\n")
        print("| command | median ms | p95 ms | plugin command modules imported |")
        print("|---|---|---|---|")
        for argv in COMMANDS:
            ms = sorted(t * 1000 for t in times[" ".join(argv)])
            p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
            print(f"| `assistant {' '.join(argv)}` | {statistics.median(ms):.0f} | {p95:.0f} | "
                  f"{len(plugin_modules & imported_modules(argv, env, Path(home) / 'modules.json'))} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
