from pathlib import Path

import pytest

from assistant.errors import SettingsError
from assistant.settings import Settings, describe, load_settings, parse_assignments, render_default_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_project_config_toml_documents_exactly_the_defaults(tmp_path):
    loaded = load_settings(ROOT / "config.toml", environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert loaded == Settings()
    # Regenerate with: assistant config defaults > config.toml
    assert (ROOT / "config.toml").read_text() == render_default_config()
    for key, _value, doc in describe(Settings()):
        assert doc, f"{key} has no documentation"


def test_plugin_tables_are_collected_per_plugin(tmp_path):
    p = write(tmp_path, '[plugins]\ndisabled = ["x"]\n[plugins.notes]\nfolder = "/n"\n[plugins.orders]\ndb = "o.db"\n')
    s = load_settings(p, overrides={"plugins": {"notes": {"max": 3}}}, environ={})
    assert s.plugins.disabled == ("x",)
    assert s.plugins.options == {"notes": {"folder": "/n", "max": 3}, "orders": {"db": "o.db"}}
    with pytest.raises(SettingsError, match="plugins.options"):
        load_settings(write(tmp_path, '[plugins]\noptions = 1\n'), environ={})


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    p = write(tmp_path, '[model]\nnmae = "x"\n')
    with pytest.raises(SettingsError) as exc:
        load_settings(p, environ={})
    msg = str(exc.value)
    assert "model.nmae" in msg and str(p) in msg and "model.name" in msg


def test_unknown_section(tmp_path):
    with pytest.raises(SettingsError, match=r"(?s)\[modle\].*did you mean \[model\]"):
        load_settings(write(tmp_path, "[modle]\nname='x'\n"), environ={})


def test_wrong_type_and_range_and_choice(tmp_path):
    with pytest.raises(SettingsError, match="expected float"):
        load_settings(write(tmp_path, '[model]\ntemperature = "hot"\n'), environ={})
    with pytest.raises(SettingsError, match="at least 1"):
        load_settings(write(tmp_path, "[model]\nmax_tokens = 0\n"), environ={})
    with pytest.raises(SettingsError, match="one of auto, yes, no"):
        load_settings(write(tmp_path, '[model]\nvision = "maybe"\n'), environ={})


def test_invalid_toml_is_reported_with_path(tmp_path):
    p = write(tmp_path, "[model\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(p, environ={})


def test_layering_user_file_env_flags(tmp_path):
    cfg = tmp_path / "xdg" / "assistant" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('[model]\nname = "from-user"\ntemperature = 0.1\nmax_tokens = 5\n')
    explicit = write(tmp_path, "[model]\ntemperature = 0.2\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "ASSISTANT_MODEL__MAX_TOKENS": "7",
           "ASSISTANT_ENGINE__EXTRA_ARGS": "--foo 'a b'"}
    s = load_settings(explicit, overrides=parse_assignments(["model.seed=3"]), environ=env)
    assert s.model.name == "from-user"          # user file
    assert s.model.temperature == 0.2           # explicit file beats user file
    assert s.model.max_tokens == 7              # env beats files
    assert s.model.seed == 3                    # flags beat env
    assert s.engine.extra_args == ("--foo", "a b")
    assert len(s.sources) == 5


def test_env_typo_is_rejected():
    with pytest.raises(SettingsError, match="model.temprature"):
        load_settings(environ={"ASSISTANT_MODEL__TEMPRATURE": "0"})


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(Exception):
        s.model.name = "x"  # type: ignore[misc]


def test_set_flag_syntax():
    assert parse_assignments(["model.temperature=0", "model.name=a/b"]) == {
        "model": {"temperature": 0, "name": "a/b"}
    }
    with pytest.raises(SettingsError, match="section.key=value"):
        parse_assignments(["temperature=0"])


def test_batch_section_documented_checked_and_from_the_environment():
    import dataclasses

    from assistant.batch.inputs import MODES
    from assistant.settings import BatchSettings

    score = next(f for f in dataclasses.fields(BatchSettings) if f.name == "score")
    assert score.metadata["choices"] == MODES  # the same modes `match` accepts
    s = load_settings(environ={"ASSISTANT_BATCH__CONCURRENCY": "32", "ASSISTANT_BATCH__SAVE_SESSIONS": "yes"})
    assert (s.batch.concurrency, s.batch.save_sessions, s.batch.score) == (32, True, "normalized")
    with pytest.raises(SettingsError, match="one of exact, normalized"):
        load_settings(environ={"ASSISTANT_BATCH__SCORE": "fuzzy"})
    with pytest.raises(SettingsError, match="(?s)batch.concurency.*batch.concurrency"):
        load_settings(overrides={"batch": {"concurency": 2}}, environ={})
