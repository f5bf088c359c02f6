"""Where the CLI writes a file: never through a symlink, never over a file unless asked,
never half-written (a temp file in the same directory, renamed into place when complete)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class OutputError(Exception):
    """A destination the CLI will not write; one line for the user (exit code 2)."""


def _check(target: Path, *, force: bool) -> Path:
    directory = target.parent
    if target.is_symlink():
        raise OutputError(f"{target} is a symbolic link: changebot does not write through links")
    if target.is_dir():
        raise OutputError(f"{target} is a directory: name a file to write")
    if not directory.is_dir():
        raise OutputError(f"{directory} does not exist (or is not a directory): create it first")
    if target.exists() and not force:
        raise OutputError(f"{target} exists: pass --force to replace it")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in {directory}: permission denied")
    return directory


@contextlib.contextmanager
def output_file(path: str, *, force: bool, binary: bool = False) -> Iterator[IO[Any]]:
    """Yield a temp file next to `path`; on success it becomes `path` (replacing a file
    only with `force`; a link or file created meanwhile is never followed nor overwritten
    without it). On failure nothing is left behind."""
    target = Path(path)
    directory = _check(target, force=force)
    try:
        handle, temp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".part")
    except PermissionError:
        raise OutputError(f"cannot write in {directory}: permission denied") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)  # what a plain open() would have made, not mkstemp's 0600
    try:
        with (
            os.fdopen(handle, "wb") if binary else os.fdopen(handle, "w", encoding="utf-8", newline="")
        ) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(temp, target)  # replaces a link itself, never its target
        else:
            try:
                os.link(temp, target)  # fails if anything appeared at `path` meanwhile
            except FileExistsError:
                raise OutputError(f"{target} exists: pass --force to replace it") from None
            except OSError:  # no hard links on this file system: check, then rename
                if os.path.lexists(target):
                    raise OutputError(f"{target} exists: pass --force to replace it") from None
                os.replace(temp, target)
            else:
                os.unlink(temp)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
