"""Prompt templates: layered lookup (user > plugins > project), strict variables, clear errors."""

import json

import pytest

from assistant.dialogue.prompts import PromptLibrary, default_library, project_prompts_dir, user_prompts_dir
from assistant.errors import UsageError


def tpl(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


@pytest.fixture
def layers(tmp_path):
    user, plugin, project = tmp_path / "user", tmp_path / "plugin", tmp_path / "project"
    tpl(project, "system.md.j2", "project system for {{ who }}\n")
    tpl(project, "tool_retry.md.j2", "project retry\n")
    tpl(project, "only_project.md.j2", "P")
    tpl(plugin, "tool_retry.md.j2", "plugin retry\n")
    tpl(plugin, "transcribe.md.j2", "plugin transcribe")
    tpl(user, "system.md.j2", "user system for {{ who }}\n")
    return PromptLibrary([user, plugin, project]), user, plugin, project


def test_user_dir_overrides_project_prompt(layers):
    lib, user, _, _ = layers
    assert lib.render("system", who="Ann") == "user system for Ann"
    assert lib.source_of("system") == user / "system.md.j2"


def test_plugin_dir_used_when_not_overridden(layers):
    lib, _, plugin, project = layers
    assert lib.render("tool_retry") == "plugin retry"
    assert lib.source_of("transcribe") == plugin / "transcribe.md.j2"
    assert lib.render("only_project") == "P"
    assert lib.source_of("only_project") == project / "only_project.md.j2"


def test_names_lists_every_layer_once(layers):
    lib, _, _, _ = layers
    assert lib.names() == ["only_project", "system", "tool_retry", "transcribe"]


def test_missing_template_names_it_and_the_folders(layers):
    lib, user, plugin, project = layers
    with pytest.raises(UsageError) as info:
        lib.render("nope")
    msg = str(info.value)
    assert "nope" in msg and str(user) in msg and str(plugin) in msg and str(project) in msg
    with pytest.raises(UsageError):
        lib.source_of("../project/system")  # names cannot climb out of the prompt folders


def test_missing_folders_are_fine(tmp_path):
    lib = PromptLibrary([tmp_path / "does-not-exist", tmp_path])
    tpl(tmp_path, "hello.md.j2", "hi")
    assert lib.render("hello") == "hi" and lib.names() == ["hello"]


def test_missing_variable_is_a_usage_error_naming_variable_and_template(tmp_path):
    path = tpl(tmp_path, "greet.md.j2", "Hello\n{{ name }} on {{ day }}\n")
    lib = PromptLibrary([tmp_path])
    with pytest.raises(UsageError) as info:
        lib.render("greet", name="Ann")
    msg = str(info.value)
    assert "'day' is undefined" in msg and "greet" in msg and str(path) in msg and "line 2" in msg
    assert "name" in info.value.hint  # the variables that were given


def test_missing_attribute_is_a_usage_error(tmp_path):
    tpl(tmp_path, "t.md.j2", "{% for t in tools %}{{ t.nmae }}{% endfor %}")
    with pytest.raises(UsageError, match="nmae"):
        PromptLibrary([tmp_path]).render("t", tools=[{"name": "x"}])


def test_syntax_error_names_file_and_line(tmp_path):
    path = tpl(tmp_path, "bad.md.j2", "line one\n{% if x %}\nunclosed\n")
    with pytest.raises(UsageError) as info:
        PromptLibrary([tmp_path]).render("bad", x=1)
    msg = str(info.value)
    assert str(path) in msg and "line 3" in msg


def test_syntax_error_in_an_include_names_that_file(tmp_path):
    tpl(tmp_path, "outer.md.j2", "{% include 'inner.md.j2' %}")
    inner = tpl(tmp_path, "inner.md.j2", "ok\n{{ broken( }}")
    with pytest.raises(UsageError) as info:
        PromptLibrary([tmp_path]).render("outer")
    assert str(inner) in str(info.value) and "line 2" in str(info.value)


def test_missing_include_is_a_usage_error(tmp_path):
    tpl(tmp_path, "outer.md.j2", "{% include 'gone.md.j2' %}")
    with pytest.raises(UsageError, match="gone.md.j2"):
        PromptLibrary([tmp_path]).render("outer")


def test_jinja_options(tmp_path):
    tpl(tmp_path, "opts.md.j2", "<b>{{ v }}</b>\n{% if flag %}\n    yes\n{% endif %}\nend\n")
    out = PromptLibrary([tmp_path]).render("opts", v="a & b", flag=True)
    assert out == "<b>a & b</b>\n    yes\nend"  # no autoescape, blocks leave no blank lines, no trailing newline


def test_edits_are_picked_up(tmp_path):
    path = tpl(tmp_path, "t.md.j2", "one")
    lib = PromptLibrary([tmp_path])
    assert lib.render("t") == "one"
    path.write_text("two!")  # different size, so it is seen as changed even within one mtime tick
    import os

    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 5))
    assert lib.render("t") == "two!"


# --- the project's own templates -------------------------------------------------------------


def test_project_prompts_dir_is_the_top_level_prompts_folder():
    folder = project_prompts_dir()
    assert folder.name == "prompts" and (folder.parent / "assistant" / "__init__.py").is_file()
    assert {"system", "tool_retry"} <= set(PromptLibrary([folder]).names())


def test_real_system_prompt_without_tools():
    lib = PromptLibrary([project_prompts_dir()])
    out = lib.render("system", date="2025-06-01", tools=[], attachments_note="", text_tool_calls=False)
    assert "2025-06-01" in out and "tool" not in out.lower()
    assert len(out) < 300  # small models read it too
    assert out == out.strip() and "{" not in out


def test_real_system_prompt_with_tools_and_note():
    lib = PromptLibrary([project_prompts_dir()])
    tools = [
        {"name": "weather_forecast", "description": "Forecast for a city.\n\nArgs:\n    city: The city."},
        {"name": "add_note", "description": ""},
    ]
    out = lib.render(
        "system", date="2025-06-01", tools=tools, attachments_note="The user attached a PDF.", text_tool_calls=False
    )
    assert "- weather_forecast: Forecast for a city." in out and "Args" not in out  # first line only
    assert "- add_note" in out and "<tool_call>" not in out
    assert out.endswith("The user attached a PDF.")
    assert "\n\n\n" not in out


def test_real_system_prompt_for_text_tool_calls_shows_schemas_and_markup():
    lib = PromptLibrary([project_prompts_dir()])
    tools = [{"name": "weather_forecast", "description": "Forecast.", "parameters": '{"type": "object"}'}]
    out = lib.render("system", date="2025-06-01", tools=tools, attachments_note="", text_tool_calls=True)
    assert '- weather_forecast: Forecast. Arguments: {"type": "object"}' in out
    assert '<tool_call>{"name": "TOOL", "arguments": {...}}</tool_call>' in out


def test_real_tool_retry_prompt():
    schema = json.dumps({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    out = PromptLibrary([project_prompts_dir()]).render(
        "tool_retry", tool="weather_forecast", error="city: Field required", schema=schema
    )
    assert "weather_forecast" in out and "city: Field required" in out and schema in out


def test_real_templates_need_their_variables():
    lib = PromptLibrary([project_prompts_dir()])
    with pytest.raises(UsageError, match="attachments_note"):
        lib.render("system", date="2025-06-01", tools=[])


# --- default_library ---------------------------------------------------------------------------


def test_default_library_layers(tmp_path):
    user, plugin = tmp_path / "mine", tmp_path / "plugin"
    tpl(user, "system.md.j2", "mine {{ date }}")
    tpl(plugin, "extra.md.j2", "extra")
    lib = default_library(user, [plugin])
    assert lib.search_dirs == [user, plugin, project_prompts_dir()]
    assert lib.render("system", date="d") == "mine d"
    assert lib.render("extra") == "extra"
    assert lib.source_of("tool_retry") == project_prompts_dir() / "tool_retry.md.j2"


def test_default_library_without_user_dir_uses_the_config_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_prompts_dir() == tmp_path / "assistant" / "prompts"
    lib = default_library(None)
    assert lib.search_dirs == [tmp_path / "assistant" / "prompts", project_prompts_dir()]
    assert lib.source_of("system") == project_prompts_dir() / "system.md.j2"  # that folder need not exist
