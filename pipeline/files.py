"""The one atomic writer: a file or a folder is written under a temporary name beside its
destination and renamed into place only when complete, so a reader never sees half of it
and a failed write leaves nothing behind. Files get the user's normal mode (0666 less the
umask), not mkstemp's private 0600.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(
    path: str | Path,
    mode: str = "w",
    encoding: str | None = "utf-8",
    newline: str | None = None,
    check: Callable[[Path], None] | None = None,
) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path``.

    ``check``, if given, is called with the finished temporary file before the rename; an
    exception from it leaves ``path`` as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding, newline=None if binary else newline) as fh:
            yield fh
        if check is not None:
            check(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes, check: Callable[[Path], None] | None = None) -> Path:
    """Write text or bytes to ``path`` atomically (``check``: see ``atomic_file``)."""
    with atomic_file(path, "wb" if isinstance(data, bytes) else "w", check=check) as fh:
        fh.write(data)
    return Path(path)


def replace_dir(src: Path, dst: Path) -> None:
    """Move a finished folder into place; an older one at ``dst`` is removed only afterwards."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        dst.rename(old)
    try:
        src.rename(dst)
    except BaseException:
        if old is not None:
            old.rename(dst)  # the previous folder back in place
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; on success it replaces ``path`` (swap at the end)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class OutputPathError(ValueError):
    """An output path that is taken (and not to be overwritten) or cannot be written."""


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Fail now, before any work, if ``path`` cannot be written: its nearest existing folder must
    be a writable folder (missing folders below it are created when writing)."""
    path = Path(path)
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"cannot write the {what} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write the {what} {path}: no write permission in {parent}")
    return path


def refuse_existing(path: str | Path, overwrite: bool, what: str = "output file", folder: bool = False) -> Path:
    """Refuse a ``path`` that exists unless ``overwrite`` (the caller then swaps the new one in at the
    end); either way, check now that it can be written and is of the right kind."""
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise OutputPathError(
                f"{path} exists ({what}); pass --overwrite (make: OVERWRITE=1) to replace it "
                "once the new one is complete"
            )
        if path.is_dir() != folder:
            found, expected = ("a folder", "a file") if path.is_dir() else ("a file", "a folder")
            raise OutputPathError(f"{path} is {found}, expected {expected} ({what})")
    return check_writable(path, what)
