"""An HTML report over run folders: the summary page of the viewer site as one file.

Everything comes from what a run folder already holds (``metrics.jsonl``, ``eval.json``,
``config.yaml``): a training curve per logged metric (runs of one task overlaid), the evaluation
table (sortable), the keys whose values differ between the runs' configs, and each whole config
folded away. The chart library (uPlot, vendored), the script and the data are inside the page, so
it opens offline and can be mailed as is. ``latentcot view`` writes the same page with a question
browser next to its data (:mod:`latentcot.eval.viewer`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentcot.errors import LatentCotError


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The training rows of ``metrics.jsonl`` (one JSON object per logged step)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise LatentCotError(f"{run_dir}: no metrics.jsonl (is this a latentcot run folder?)")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise LatentCotError(f"{path} line {number}: invalid JSON ({err.msg})") from None
    return rows


def build_report(run_dirs: Sequence[str | Path], out: str | Path, title: str = "latentcot report") -> Path:
    """Write one self-contained HTML page comparing ``run_dirs``.

    Args:
        run_dirs: run folders written by ``latentcot train`` (or ``latentcot demo``'s per-method folders).
        out: the HTML file to write.
        title: the page title.

    Returns:
        The path written.
    """
    from latentcot.eval.viewer import page, site_summary

    summary = site_summary(run_dirs, title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page(summary, browser=False, inline=True), encoding="utf-8")
    return out
