"""Where the real data sets live: a configurable data directory, never inside the project."""

from __future__ import annotations

import os
from pathlib import Path

from latentcot.errors import LatentCotError

ENV_VAR = "LATENTCOT_DATA_DIR"


def data_dir(override: str | Path | None = None) -> Path | None:
    """The data directory: ``override``, else ``$LATENTCOT_DATA_DIR``, else ``../shared/data``
    (relative to the current directory or to the repository) when it exists; None otherwise."""
    if override is not None:
        return Path(override)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    repo = Path(__file__).resolve().parents[3]
    for candidate in (Path.cwd() / ".." / "shared" / "data", repo.parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def real_file(relative: str, override: str | Path | None = None) -> Path | None:
    """A real data file under the data directory, or None when it (or the directory) is absent."""
    root = data_dir(override)
    if root is None:
        return None
    path = root / relative
    return path if path.is_file() else None


def require_real_file(relative: str, override: str | Path | None = None) -> Path:
    """Like :func:`real_file` but a clear error naming the path and how to provide it."""
    path = real_file(relative, override)
    if path is None:
        raise LatentCotError(
            f"real data file '{relative}' not found under the data directory "
            f"({data_dir(override) or 'none found'}); set ${ENV_VAR} or pass --data-dir, "
            "or run `latentcot data download`"
        )
    return path
