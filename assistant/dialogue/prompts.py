"""Prompt templates (Jinja2) looked up in layers: the user's folder, then plugins', then the project's.

The first folder that has a template wins, so a user can replace any prompt by dropping a
file of the same name into their prompts folder. Templates are `NAME.md.j2` (or `NAME.j2`)
and are rendered with StrictUndefined: a misspelt variable is an error naming it, not a
silently empty string in front of the model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import UsageError

TEMPLATE_SUFFIXES = (".md.j2", ".j2")


class PromptLibrary:
    def __init__(self, search_dirs: list[Path]) -> None:
        """`search_dirs`: earlier folders win, e.g. [user prompts, plugin prompts..., project prompts]."""
        self.search_dirs = [Path(d).expanduser() for d in search_dirs]
        self._env: Any = None

    def _environment(self) -> Any:
        if self._env is None:
            import jinja2

            self._env = jinja2.Environment(
                loader=jinja2.FileSystemLoader([str(d) for d in self.search_dirs]),
                undefined=jinja2.StrictUndefined,
                autoescape=False,  # prompts are plain text, not HTML
                trim_blocks=True,
                lstrip_blocks=True,
                keep_trailing_newline=False,
            )
        return self._env

    def _find(self, name: str) -> tuple[Path, str] | None:
        """(file, name relative to its folder) of the first match for `name`."""
        if name.startswith("/") or ".." in Path(name).parts:
            return None
        candidates = [name] if name.endswith(".j2") else [name + s for s in TEMPLATE_SUFFIXES]
        for folder in self.search_dirs:
            for rel in candidates:
                if (folder / rel).is_file():
                    return folder / rel, rel
        return None

    def source_of(self, name: str) -> Path:
        found = self._find(name)
        if found is None:
            searched = ", ".join(str(d) for d in self.search_dirs) or "(no folders)"
            raise UsageError(
                f"prompt template '{name}' not found (looked for {name}.md.j2 in: {searched})",
                hint="check the name (e.g. dialogue.system_prompt in the config), or add the template to "
                "your prompts folder",
            )
        return found[0]

    def names(self) -> list[str]:
        found: set[str] = set()
        for folder in self.search_dirs:
            if not folder.is_dir():
                continue
            for path in folder.rglob("*.j2"):
                rel = path.relative_to(folder).as_posix()
                for suffix in TEMPLATE_SUFFIXES:
                    if rel.endswith(suffix):
                        found.add(rel[: -len(suffix)])
                        break
        return sorted(found)

    def render(self, name: str, /, **variables: Any) -> str:
        """`name` is positional-only so that a template may use a variable called `name`."""
        import jinja2

        path = self.source_of(name)
        rel = self._find(name)[1]  # type: ignore[index]
        try:
            template = self._environment().get_template(rel)
            # A template ending in a block tag ({% endif %}) leaves a newline keep_trailing_newline
            # cannot remove; trailing whitespace never matters to the model.
            return template.render(**variables).rstrip()
        except jinja2.TemplateSyntaxError as exc:
            where = exc.filename or str(path)
            raise UsageError(
                f"prompt template {where}, line {exc.lineno}: {exc.message}",
                hint="fix the template's Jinja syntax",
            ) from None
        except jinja2.UndefinedError as exc:
            line = _template_line(exc, path)
            at = f", line {line}" if line else ""
            raise UsageError(
                f"prompt template '{name}' ({path}{at}) uses a variable that was not given: {exc.message}",
                hint=f"variables given: {', '.join(sorted(variables)) or 'none'}; edit the template to use only these",
            ) from None
        except jinja2.TemplateNotFound as exc:  # an {% include %} / {% extends %} target
            raise UsageError(
                f"prompt template '{name}' ({path}) includes '{exc.name}', which is in none of: "
                + ", ".join(str(d) for d in self.search_dirs),
                hint="add the missing template or fix the include",
            ) from None
        except jinja2.TemplateError as exc:
            raise UsageError(f"prompt template '{name}' ({path}) failed: {exc}") from None


def _template_line(exc: BaseException, path: Path) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template's file and line."""
    line, tb, target = None, exc.__traceback__, os.path.realpath(path)
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename == str(path) or os.path.realpath(filename) == target:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def project_prompts_dir() -> Path:
    import assistant

    return Path(assistant.__file__).resolve().parents[1] / "prompts"


def user_prompts_dir(environ: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/assistant/prompts, next to the user config (dialogue.prompts_dir's default)."""
    from ..settings import user_config_path

    return user_config_path(environ).parent / "prompts"


def default_library(user_dir: Path | None, plugin_dirs: Iterable[Path] = ()) -> PromptLibrary:
    """User folder (None: the default one, which need not exist), plugins' folders, the project's."""
    user = Path(user_dir).expanduser() if user_dir else user_prompts_dir()
    return PromptLibrary([user, *plugin_dirs, project_prompts_dir()])
