"""Writing files atomically: a temporary file in the same folder, renamed into place."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from semia.errors import InputError

log = logging.getLogger(__name__)


def atomic_save(path: str | Path, save: Callable[[str], object]) -> None:
    """Call save(tmp_path) on a temporary file beside `path`, then move it into place.

    The finished file gets the usual permissions of a new file (0666 minus the umask; mkstemp
    alone would leave it readable by its owner only). On any error, or Ctrl-C, the temporary file
    is removed and an existing `path` is left as it was; an OSError (disk full, say) names
    `path`, not the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{_shortened(path.stem, _name_max(path.parent) - len(path.suffix.encode()) - 12)}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        save(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:  # disk full, quota, ...: name the output, not the temporary file
        Path(tmp).unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of `folder` allows."""
    try:
        return int(os.pathconf(_nearest_existing(folder), "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def _shortened(stem: str, budget: int) -> str:
    """`stem` cut to at most `budget` bytes of UTF-8 (whole characters): a temporary file's name
    adds a dot and 9 random characters to the output's, which must not push it past the limit."""
    return stem.encode()[: max(budget, 1)].decode(errors="ignore")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically and durably (synced to disk before the rename)."""

    def save(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_save(path, save)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _nearest_existing(path: Path) -> Path:
    """`path` or the closest of its parents that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def check_writable(path: str | Path, folder: bool = False) -> Path:
    """Check, before any work, that a file (or with folder=True, a folder) can be written there.

    Raises:
        InputError: the path is an existing folder (file wanted) or file (folder wanted), a
            parent is a file, or the nearest existing folder is not writable.
    """
    path = Path(path)
    what = "output folder" if folder else "output"
    limit = _name_max(path.parent)
    if len(path.name.encode()) > limit:
        raise InputError(
            f"{what} {path}: the name is {len(path.name.encode())} bytes long; the file system "
            f"allows {limit}: give a shorter name"
        )
    if path.is_dir() and not folder:
        raise InputError(f"{what} {path}: is a folder; give a file name")
    if path.exists() and not path.is_dir() and folder:
        raise InputError(f"{what} {path}: is a file; give a folder")
    existing = _nearest_existing(path if folder else path.parent)
    if not existing.is_dir():
        raise InputError(f"{what} {path}: {existing} is a file, so no folder can be made there")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what} {path}: the folder {existing} is not writable")
    if path.is_file() and not os.access(path, os.W_OK):
        raise InputError(f"{what} {path}: the file exists and is read-only")
    return path


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temporary files that `atomic_save` left in `folder` when a process was killed
    mid-write (named `.<stem>-<random><suffix>`). Call it only while holding the folder's lock.

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    removed = []
    for tmp in folder.glob(".*-*"):
        if tmp.is_file() and tmp.name != LOCK_FILE:
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


LOCK_FILE = ".semia.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "folder") -> Iterator[None]:
    """Hold an exclusive lock on `folder` (a `.semia.lock` file with this process's PID).

    A lock left by a process that no longer runs is taken over with a warning.

    Raises:
        InputError: another running process holds the lock.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text(encoding="utf-8").strip() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid > 0 and pid != os.getpid() and _pid_alive(pid):
                raise InputError(
                    f"{what} {folder} is in use by process {pid} (lock file {lock}); wait for "
                    "it to finish or use another folder"
                ) from None
            log.warning("%s %s: taking over a stale lock of process %d", what, folder, pid)
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        break
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
