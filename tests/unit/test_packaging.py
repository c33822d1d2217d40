import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("assistant", "assistant"), ("plugins", "assistant_plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            found.add(".".join((name, *rel)))
    assert found == listed


def test_builtin_plugins_are_registered_through_the_entry_point_group():
    import importlib.metadata

    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="assistant.plugins")}
    assert eps.get("utilities") == "assistant_plugins.utilities:Utilities"
    assert eps.get("notes") == "assistant_plugins.notes:Notes"
