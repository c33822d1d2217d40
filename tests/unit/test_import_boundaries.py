"""The one plugin surface, enforced: the core (`assistant/`) imports nothing from the built-in
plugins (`assistant_plugins`, the `plugins/` folder), not even by name through importlib, and a
plugin imports from the core only the plugin API and the documented helpers
(docs/writing-a-plugin.md, "What a plugin may import"). Every module is read, every import
statement counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What a plugin may import from the core: the contract and the helpers the guide documents.
PLUGIN_MAY_IMPORT = (
    "assistant.plugin_api",  # Plugin, tool, ToolContext, ToolOutput, write_file_atomic, ...
    "assistant.settings",
    "assistant.errors",
    "assistant.events",
    "assistant.progress",  # StderrProgress for a plugin's own subcommand
    "assistant.atomic_folder",  # durable files and folders
    "assistant.documents",  # loading, chunking and counting documents
    "assistant.dialogue.attachments",  # the Attachment a consuming plugin receives
    "assistant.dialogue.prompts",  # prompt templates a plugin ships
)


def _modules(folder: Path, top: str):
    """(path, syntax tree, its imports) for every module under `folder`, the package named `top`."""
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" not in path.parts:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            yield path, tree, _imports(tree, path, _package_of(path, folder, top))


def _imports(tree: ast.AST, path: Path, package: str) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the module; relative ones resolved."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + (1 if path.name == "__init__.py" else 0)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return out


def _package_of(path: Path, root: Path, top: str) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [top, *rel.parts]
    return ".".join(parts[:-1] if path.name == "__init__.py" else parts)


def test_the_core_imports_no_plugin():
    bad = []
    for path, tree, imports in _modules(ROOT / "assistant", "assistant"):
        for line, name in imports:
            if name == "assistant_plugins" or name.startswith("assistant_plugins."):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
        for node in ast.walk(tree):  # importlib.import_module("assistant_plugins...") counts too
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("assistant_plugins."):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} names {node.value!r}")
    assert not bad, "the core must reach plugins only through the registry:\n" + "\n".join(bad)


def test_plugins_import_only_the_plugin_api_and_documented_helpers():
    bad = []
    for path, _tree, imports in _modules(ROOT / "plugins", "assistant_plugins"):
        for line, name in imports:
            if name.split(".")[0] != "assistant":
                continue
            if not any(name == ok or name.startswith(ok + ".") for ok in PLUGIN_MAY_IMPORT):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "plugins may import only " + ", ".join(PLUGIN_MAY_IMPORT) + ":\n" + "\n".join(bad)


def test_the_walk_sees_relative_and_nested_imports(tmp_path):
    """The checks above would pass vacuously if the walk missed imports: it must not."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    src = "import os\ndef f():\n    from ..other import thing\n    from . import sibling\n"
    (pkg / "sub" / "mod.py").write_text(src)
    path = pkg / "sub" / "mod.py"
    found = [name for _, name in _imports(ast.parse(src), path, _package_of(path, pkg, "top"))]
    assert found == ["os", "top.other", "top.sub"]
