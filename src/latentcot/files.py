"""Reading user files safely: a regular file or a one-line error, never a hang or a traceback.

Used by the data readers (:mod:`latentcot.data.formats`) and the config loader
(:mod:`latentcot.config`).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from latentcot.errors import LatentCotError


def read_regular_file(path: str | Path, what: str = "data file") -> bytes:
    """The bytes of a regular file.

    A FIFO, device or socket is never opened for reading (opening a FIFO blocks until a writer
    appears): the path is checked with ``os.stat`` first and the open file again with ``fstat``.

    Args:
        path: the file.
        what: how the error names what was expected (``data file``, ``config file``).

    Raises:
        LatentCotError: naming the path: not found, a directory, not a regular file, a symlink
            loop, a name too long, no permission.
    """
    path = Path(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise LatentCotError(f"{path}: is a directory, not a {what}")
        if not stat.S_ISREG(info.st_mode):
            raise LatentCotError(f"{path}: not a regular file (a FIFO, device or socket); give a {what}")
        # O_NONBLOCK: should the path become a FIFO between the check and the open, open still returns
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise LatentCotError(f"{path}: not a regular file (a FIFO, device or socket); give a {what}")
            return f.read()
    except FileNotFoundError:
        raise LatentCotError(f"{path}: {what} not found") from None
    except OSError as err:  # a symlink loop, a name too long, no permission, ...
        raise LatentCotError(f"{path}: cannot read ({err.strerror or err})") from None


def check_writable_dir(path: str | Path, key: str) -> None:
    """Raise unless ``path`` is a folder that exists and is writable, or can be created.

    Args:
        path: the folder.
        key: the config key it came from, named in the error.
    """
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise LatentCotError(f"{key} '{path}': exists and is not a folder")
        parent = path
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise LatentCotError(f"{key} '{path}': '{parent}' is a file, so the folder cannot be created")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LatentCotError(f"{key} '{path}': '{parent}' is not writable")
    except OSError as err:
        raise LatentCotError(f"{key} '{path}': {err.strerror or err}") from None
