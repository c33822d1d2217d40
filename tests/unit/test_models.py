import json

import pytest

from assistant.errors import ModelNotFound, SettingsError
from assistant.model.models import describe_folder, resolve_model
from assistant.settings import load_settings, parse_assignments


def settings(*pairs):
    return load_settings(overrides=parse_assignments(list(pairs)), environ={})


def model_folder(tmp_path, config, sidecar=None):
    (tmp_path / "config.json").write_text(json.dumps(config))
    if sidecar is not None:
        (tmp_path / "assistant_model.json").write_text(json.dumps(sidecar))
    return tmp_path


def test_folder_vision_from_config(tmp_path):
    folder = model_folder(tmp_path, {"vision_config": {}, "text_config": {"max_position_embeddings": 2048}})
    spec = describe_folder(folder)
    assert spec.vision is True and spec.max_model_len == 2048 and spec.tool_call_parser is None


def test_folder_sidecar_wins(tmp_path):
    folder = model_folder(tmp_path, {"max_position_embeddings": 8192}, {"vision": False, "tool_call_parser": "hermes", "max_model_len": 512})
    spec = describe_folder(folder)
    assert (spec.vision, spec.tool_call_parser, spec.max_model_len) == (False, "hermes", 512)


def test_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(ModelNotFound, match="config.json"):
        describe_folder(tmp_path)


def test_settings_override_capabilities(tmp_path):
    folder = model_folder(tmp_path, {"vision_config": {}})
    spec = resolve_model(
        settings(f"model.name='{folder}'", "model.vision=no", "model.tool_call_parser=llama3_json", "model.served_name=x"), "cpu"
    )
    assert (spec.vision, spec.tool_call_parser, spec.served_name, spec.kind) == (False, "llama3_json", "x", "folder")


def test_preset_is_a_vlm_with_tools(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    spec = resolve_model(settings("model.name=qwen2.5-vl-3b"), "cuda")
    assert spec.source == "Qwen/Qwen2.5-VL-3B-Instruct" and spec.vision and spec.tool_call_parser == "hermes"


def test_auto_picks_gpu_preset_on_cuda(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert resolve_model(settings(), "cuda").source == "Qwen/Qwen2.5-VL-3B-Instruct"


def test_uncached_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFound, match="bundled model"):
        resolve_model(settings("model.name=nobody/no-such-model"), "cpu")


def test_missing_folder_and_unknown_bundled():
    with pytest.raises(ModelNotFound, match="does not exist"):
        resolve_model(settings("model.name='./no/such/folder'"), "cpu")
    with pytest.raises(SettingsError):
        resolve_model(settings("model.name='bundled:other'"), "cpu")
