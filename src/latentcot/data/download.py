"""Fetch the public validation files into a data directory (the layout of ``../shared/data``).

The originals live in public GitHub repositories (MIT licensed); the commits are the ones
recorded in the data directory's SOURCES.md, so a download reproduces those bytes.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from latentcot.errors import LatentCotError

_COCONUT = "https://raw.githubusercontent.com/facebookresearch/coconut/27273cb8cca4bb763c041a63b036d0c3b7cbbb48"
_FORK = "https://raw.githubusercontent.com/michaelrizvi/coconut/8a939d7cf261dd18a6050222737131b2a44f6f5a"
_ICOT = "https://raw.githubusercontent.com/da03/Internalize_CoT_Step_by_Step/c2e3891d8d577beeaff03fa3b076d1e4db96cfe8"

# local path under the data directory -> URL of the original
SOURCES = {
    "prosqa/prosqa_valid.json": f"{_COCONUT}/data/prosqa_valid.json",
    "prontoqa/prontoqa_valid.json": f"{_FORK}/data/prontoqa_valid.json",
    "gsm8k_aug/gsm_valid.json": f"{_FORK}/data/gsm_valid.json",
    "gsm8k_aug/valid.txt": f"{_ICOT}/data/gsm8k/valid.txt",
    **{f"multiplication/stepwise/{n}_by_{n}_mult/valid.txt": f"{_ICOT}/data/{n}_by_{n}_mult/valid.txt"
       for n in (4, 5, 7, 9, 11)},
}


def download(dest: str | Path, files: list[str] | None = None, timeout: float = 30.0) -> list[Path]:
    """Download the validation files into ``dest`` (existing files are kept).

    Args:
        dest: the data directory to fill.
        files: keys of :data:`SOURCES` to fetch; all when None.
        timeout: seconds to wait for each server response.

    Returns:
        The paths written or already present.

    Raises:
        LatentCotError: an unknown file, or a network failure (naming the URL; e.g. offline).
    """
    dest = Path(dest)
    out = []
    for rel in files or list(SOURCES):
        if rel not in SOURCES:
            raise LatentCotError(f"unknown data file '{rel}' (known: {', '.join(SOURCES)})")
        path = dest / rel
        if not path.is_file():
            url = SOURCES[rel]
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    data = response.read()
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                reason = getattr(err, "reason", err)
                raise LatentCotError(f"cannot download {url} ({reason}); are you offline? "
                                     f"Copy the files into {dest} by hand instead") from None
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)  # atomic: a broken download never leaves a half file behind
        out.append(path)
    return out
