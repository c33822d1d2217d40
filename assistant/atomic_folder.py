"""Durable folders and files: build a folder so a crash or a concurrent builder never leaves
half of it, and make renames survive power loss."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def build_folder(out_dir: Path, *, is_complete: Callable[[Path], bool], build: Callable[[Path], None],
                 say: Callable[[str], None]) -> Path:  # fmt: skip
    """Return `out_dir`, building it with `build(tmp)` unless `is_complete(out_dir)` already.

    The build happens in a sibling temp folder (same filesystem) that is renamed into place, so
    a crash leaves only a ".tmp" folder; a stale or incomplete `out_dir` is moved aside first."""
    out_dir = Path(out_dir).absolute()
    if is_complete(out_dir):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        build(tmp)
        if out_dir.exists():
            if is_complete(out_dir):  # a concurrent builder finished first
                return out_dir
            trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if not is_complete(out_dir):  # lost a race to a different build
                raise
        say(f"built {out_dir}")
        return out_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file inside `path` survive a power loss, not only a process crash.
    Best effort: some file systems refuse to open or sync a directory."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def durable_temp(folder: Path, fill: "bytes | Callable[[Any], None]", *, prefix: str = ".tmp-",
                 make_folder: bool = True) -> Path:  # fmt: skip
    """A new file in `folder` holding `fill` (bytes, or a function writing to the binary file
    object), flushed and fsynced; the caller renames it into place (or deletes it)."""
    folder = Path(folder)
    if make_folder:
        folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh) if callable(fill) else fh.write(fill)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def write_file_atomic(path: Path, data: "bytes | Callable[[Any], None]", *, make_parents: bool = False,
                      mode: int | None = None) -> None:  # fmt: skip
    """Replace `path` with `data` (bytes, or a function writing to the file object) so a crash
    leaves either the old file or the new one, never half of one: a temp file beside it,
    fsynced, renamed over it, and the rename made durable. The one durable write of the project."""
    path = Path(path)
    tmp = durable_temp(path.parent, data, prefix=f".{path.name}.", make_folder=make_parents)
    try:
        if mode is not None:  # e.g. 0o644 for a picture the user shares (temp files start 0o600)
            os.chmod(tmp, mode)
        elif path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)  # keep a private file private
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
