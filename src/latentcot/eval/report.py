"""An HTML report over run folders: training curves, evaluation tables and resolved configs.

Everything comes from what a run folder already holds (``metrics.jsonl``, ``eval.json``,
``config.yaml``); figures are drawn with matplotlib and embedded, so the page is one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display here or on CI
import matplotlib.pyplot as plt  # noqa: E402

from latentcot.errors import LatentCotError  # noqa: E402


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


def _figure_html(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"/>'


def loss_figure(runs: dict[str, list[dict[str, Any]]]) -> str:
    """Training loss against optimizer step, one line per run."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, rows in runs.items():
        points = [(r["step"], r["loss"]) for r in rows if "loss" in r and "step" in r]
        if points:
            ax.plot(*zip(*points), label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _figure_html(fig)


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(c, '')))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def build_report(run_dirs: Sequence[str | Path], out: str | Path, title: str = "latentcot report") -> Path:
    """Write one self-contained HTML page comparing ``run_dirs``.

    Args:
        run_dirs: run folders written by ``latentcot train`` (or ``latentcot demo``'s per-method folders).
        out: the HTML file to write.
        title: the page title.

    Returns:
        The path written.
    """
    runs = {Path(d).name: Path(d) for d in run_dirs}
    metrics = {name: read_metrics(path) for name, path in runs.items()}
    evals = []
    for name, path in runs.items():
        if (path / "eval.json").is_file():
            summary = json.loads((path / "eval.json").read_text())
            summary.pop("predictions", None)
            evals.append({"run": name, **summary})
    columns = ["run", "method", "task", "n", "accuracy", "tokens_per_question", "forward_passes_per_question",
               "questions_per_second", "batch_size"]
    sections = [f"<h1>{html.escape(title)}</h1>", "<h2>Training loss</h2>", loss_figure(metrics)]
    if evals:
        sections += ["<h2>Evaluation</h2>", _table(evals, columns)]
    for name, path in runs.items():
        config = path / "config.yaml"
        if config.is_file():
            sections += [f"<h3>{html.escape(name)}: config.yaml</h3>", f"<pre>{html.escape(config.read_text())}</pre>"]
    style = ("body{font-family:sans-serif;max-width:960px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}pre{background:#f6f6f6;padding:8px}")
    page = f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>" \
           f"<style>{style}</style></head><body>{''.join(sections)}</body></html>"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return out
