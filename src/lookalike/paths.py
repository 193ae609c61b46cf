"""Where Lookalike keeps its files, and how it writes them without ever leaving half a file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """``$LOOKALIKE_CACHE``, else ``$XDG_CACHE_HOME/lookalike``, else ``~/.cache/lookalike``."""
    if explicit := os.environ.get("LOOKALIKE_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lookalike"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    The bytes go to a temporary file in the same directory, are flushed to disk,
    and then renamed over the target; a crash at any point leaves the old file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(folder: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def catalog_key(path: str | os.PathLike[str]) -> str:
    """The form under which a file is catalogued: absolute, with ``~`` expanded.

    Symbolic links are deliberately not resolved, so results show the path the
    user gave.
    """
    return os.path.abspath(os.path.expanduser(os.fspath(path)))
