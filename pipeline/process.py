"""This process, as the commands see it: stop signals, who we are, and our scratch folders.

- ``SIGTERM`` (what ``timeout``, a CI cancel and ``docker stop`` send), ``SIGHUP`` and Ctrl-C's
  ``SIGINT`` raise ``Terminated``, a ``KeyboardInterrupt``: the code that cleans up after one
  (an MLflow run ended with its reason, staging folders and partial files removed, optuna's
  trial marked failed) does it for all. Never inside a ``__del__``, where Python would drop
  it: there the stop is recorded, and the next ``check_stop()`` (every training step, every
  prediction) raises it.
- ``identity()`` is recorded on MLflow runs (host, pid, process start time), so a later
  command can tell a run whose process was killed with ``SIGKILL`` from one still going.
- Scratch folders (Trainer checkpoints) live under a project-owned path, ``.stance-tmp/``
  (``$STANCE_TMPDIR``), named after their process; ``clean_scratch()`` removes those whose
  process is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

SCRATCH_ENV = "STANCE_TMPDIR"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP), raised where the program was."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


_stop_requested: int | None = None


def _raise_terminated(signum, frame) -> None:
    global _stop_requested
    _stop_requested = signum
    while frame is not None:
        if frame.f_code.co_name == "__del__":  # raised there, it would be printed and dropped:
            return  # the next check_stop() raises it instead
        frame = frame.f_back
    raise Terminated(signum)


def check_stop() -> None:
    """Raise ``Terminated`` if a stop signal came: long loops call it, so a stop whose exception
    landed where it was swallowed (in a ``__del__``, say) still stops the program."""
    if _stop_requested is not None:
        raise Terminated(_stop_requested)


def handle_stop_signals() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into ``Terminated`` in the main thread (call once, at start).

    SIGINT too: Python's own handler raises KeyboardInterrupt wherever the program is, and
    inside a ``__del__`` it is printed and dropped, and the program runs on.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_terminated)


def signal_name(exc: BaseException) -> str:
    """SIGTERM / SIGHUP for ``Terminated``, SIGINT for a plain KeyboardInterrupt (Ctrl-C)."""
    return signal.Signals(getattr(exc, "signum", signal.SIGINT)).name


def exit_code(exc: BaseException) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


# ------------------------------------------------------------------ identity


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), which tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


def identity() -> dict[str, str]:
    pid = os.getpid()
    out = {"host": socket.gethostname(), "pid": str(pid)}
    ticks = _start_ticks(pid)
    if ticks is not None:
        out["pid_start"] = ticks
    return out


def is_alive(host: str | None, pid: str | None, pid_start: str | None = None) -> bool:
    """False only when the process is known gone: same host, and no such pid (or a reused one).

    A process on another host cannot be checked from here: it counts as alive.
    """
    if host != socket.gethostname() or not (pid or "").isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    ticks = _start_ticks(int(pid))
    return pid_start is None or ticks is None or ticks == pid_start


# ------------------------------------------------------------------ scratch folders


def scratch_root() -> Path:
    return Path(os.environ.get(SCRATCH_ENV) or Path.cwd() / ".stance-tmp")


def _owner_tag() -> str:
    ident = identity()
    return f"{ident['host']}_{ident['pid']}_{ident.get('pid_start', 'x')}"


def scratch_dir(kind: str, root: Path | None = None) -> Path:
    """A new folder ``<root>/<kind>-<host>_<pid>_<start>-<random>`` for this process's temporary files.

    ``root`` defaults to ``scratch_root()``; a folder that must be renamed into place later
    (a model being staged) takes a root on the destination's file system.
    """
    root = root or scratch_root()
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{_owner_tag()}-", dir=root))


def _owner(name: str) -> tuple[str, str, str | None] | None:
    parts = name.split("-")
    if len(parts) < 3:
        return None
    fields = "-".join(parts[1:-1]).rsplit("_", 2)
    if len(fields) != 3:
        return None
    host, pid, start = fields
    return host, pid, None if start == "x" else start


def clean_scratch(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders of processes that are gone (killed before they could); return them."""
    root = root or scratch_root()
    removed = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        owner = _owner(folder.name)
        if folder.is_dir() and owner is not None and not is_alive(*owner):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def remove_scratch(folder: Path) -> None:
    """Remove a scratch folder of ours, and its root if nothing else is left in it."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # fails, as it should, while another process's folder is there
        folder.parent.rmdir()


# glibc's default for a large allocation is mmap, returned to the system when freed; but after
# the first such free it raises its mmap threshold to that size (up to 32 MiB), so later
# tensors of that size come from the heap. Batches of varying padded length then fragment
# the heap, which keeps what it took: a torch predict's RSS rose steadily with the input
# (643 to 1,036 MiB over 3,000 sentences; peak +42% from 1,000 to 10,000 sentences). A fixed
# threshold turns the adjustment off: tensors over 1 MiB are mmapped and given back when
# freed, and RSS stays level (609 to 623 MiB, same speed). docs/results/2026-11-24-runtimes.md
MMAP_THRESHOLD = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)
_heap_bounded = False


def bound_heap() -> bool:
    """Fix glibc's mmap threshold for this process (once; a no-op off glibc, or when the user
    set ``MALLOC_MMAP_THRESHOLD_`` themselves). True if set here."""
    global _heap_bounded
    if _heap_bounded or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    _heap_bounded = True
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to do
        return False
