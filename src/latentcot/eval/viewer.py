"""A static site over run folders: training curves, the evaluation table and a question browser.

``latentcot view RUN... --out DIR`` writes ``DIR/index.html`` and what it shows, precomputed:

* ``data/summary.js``: per run the logged metrics (every numeric column of ``metrics.jsonl``),
  the evaluation summary (``eval.json``), ``config.yaml`` and a diff of the configs;
* ``data/<run>/questions.js``: the held-out questions of ``eval.json`` (gold, predicted, correct);
* ``data/<run>/chunk-NNN.js``: per question, each thought's nearest tokens through the LM head,
  its norm, its cosine similarity to the other thoughts, the step a SIM-CoT decoder writes for it
  and, for ``prosqa_graph`` runs, its superposition row (inner product with the optimal,
  frontier, reachable and unreachable nodes; :func:`latentcot.latent.diagnostics.superposition`).

Each data file is one JSON value wrapped in a call (``latentcot.loaded(key, JSON)``): a page
opened from disk (``file://``) may load scripts but not ``fetch`` files, so this is how the site
works offline without a server. Charts are drawn by uPlot (vendored, MIT; see
``static/README.md``) and small hand-made SVG; nothing is fetched from the network.
:func:`latentcot.eval.report.build_report` writes the same summary as one self-contained page.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from latentcot.errors import LatentCotError

STATIC = ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE", "viewer.js", "viewer.css")
CHUNK = 50  # questions per detail file: one click loads one small file
EVAL_COLUMNS = {  # eval.json key -> (short header, what it means)
    "run": ("run", "run folder"),
    "method": ("method", "method"),
    "task": ("task", "task"),
    "n": ("n", "questions evaluated"),
    "accuracy": ("acc", "accuracy on the held-out questions"),
    "tokens_per_question": ("tok/q", "tokens written per question"),
    "latents_per_question": ("thoughts/q", "continuous thoughts per question"),
    "forward_passes_per_question": ("passes/q", "backbone forward passes per question (each latent pass counts one)"),
    "questions_per_second": ("q/s", "questions per second at the batch size"),
    "latency_per_batch_s": ("s/batch", "seconds per batch"),
    "batch_size": ("batch", "questions per batch"),
    "solved": ("solved", "EndoCoT: fraction of held-out puzzles solved"),
    "n_eval": ("puzzles", "EndoCoT: held-out puzzles"),
}


def _static(name: str) -> str:
    return resources.files("latentcot.eval").joinpath("static", name).read_text(encoding="utf-8")


def _run_names(run_dirs: Sequence[Path]) -> list[str]:
    """Folder names, made unique with their parent's name where two share one."""
    names = [d.name for d in run_dirs]
    return [f"{d.parent.name}/{d.name}" if names.count(d.name) > 1 else d.name for d in run_dirs]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def metric_columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[float | None]]:
    """``metrics.jsonl`` rows as columns over ``step``: every numeric key but ``step``/``epoch``
    (None where a row did not log it; non-finite values become None)."""
    rows = [r for r in rows if isinstance(r.get("step"), (int, float))]
    keys: list[str] = []
    for r in rows:
        keys += [k for k, v in r.items() if k not in keys and k not in ("step", "epoch")
                 and isinstance(v, (int, float)) and not isinstance(v, bool)]
    columns: dict[str, list[float | None]] = {"step": [float(r["step"]) for r in rows]}
    for key in keys:
        values = [r.get(key) for r in rows]
        columns[key] = [float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]
    return columns


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: json.dumps(value) if not isinstance(value, str) else value}


def config_diff(configs: dict[str, str]) -> list[dict[str, Any]]:
    """The dotted keys whose values differ between the runs' ``config.yaml`` texts.

    Returns:
        One ``{"key": dotted key, "values": {run: value or None}}`` per differing key, sorted.
    """
    flat = {name: _flatten(yaml.safe_load(text) or {}) for name, text in configs.items()}
    keys = sorted({k for f in flat.values() for k in f})
    rows = []
    for key in keys:
        values = {name: f.get(key) for name, f in flat.items()}
        if len(set(values.values())) > 1:
            rows.append({"key": key, "values": values})
    return rows


def thought_points(run_dir: Path) -> list[dict[str, Any]]:
    """Accuracy against thoughts per question: one point per ``eval*.json`` of a run folder
    (``eval.json``, and e.g. ``latentcot eval RUN --data DATA --n-latents 2 --out RUN/eval-k2.json``)
    that says how many thoughts it used (no-CoT and CoT results count as 0 thoughts), sorted by
    thoughts."""
    points = []
    for file in sorted(run_dir.glob("eval*.json")):
        try:
            result = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise LatentCotError(f"{file}: invalid JSON ({err})") from None
        if not isinstance(result, dict) or not isinstance(result.get("accuracy"), (int, float)):
            continue
        latents = result.get("latents_per_question")
        if latents is None and str(result.get("method", "")) in ("nocot", "cot"):
            latents = 0
        if isinstance(latents, (int, float)):
            points.append({"file": file.name, "latents": latents, "accuracy": result["accuracy"],
                           "passes": result.get("forward_passes_per_question")})
    return sorted(points, key=lambda p: p["latents"])


def run_summary(run_dir: Path, name: str) -> dict[str, Any]:
    """What the summary page shows of one run folder (metrics, evaluation, config)."""
    from latentcot.eval.report import read_metrics

    summary: dict[str, Any] = {"name": name, "slug": _slug(name), "path": str(run_dir),
                               "metrics": metric_columns(read_metrics(run_dir)), "eval": None, "config": ""}
    if (run_dir / "eval.json").is_file():
        try:
            result = json.loads((run_dir / "eval.json").read_text())
        except json.JSONDecodeError as err:
            raise LatentCotError(f"{run_dir / 'eval.json'}: invalid JSON ({err.msg})") from None
        # numbers and names only: predictions, and an EndoCoT eval.json's config and final losses, stay out
        summary["eval"] = {"run": name, **{k: v for k, v in result.items() if isinstance(v, (str, int, float)) or v is None}}
    summary["thought_points"] = thought_points(run_dir)
    if (run_dir / "config.yaml").is_file():
        summary["config"] = (run_dir / "config.yaml").read_text()
    config = yaml.safe_load(summary["config"]) if summary["config"] else {}
    data = (config or {}).get("data") or {}
    summary["task"] = (summary["eval"] or {}).get("task") or data.get("task", "")
    summary["method"] = (summary["eval"] or {}).get("method") or ((config or {}).get("method") or {}).get("name", "")
    if is_endocot_run(run_dir):  # its eval.json names neither; the table shows them
        summary["method"] = "endocot"
        if summary["eval"] is not None:
            summary["eval"] = {"run": name, "method": "endocot", "task": summary["task"], **summary["eval"]}
    return summary


def site_summary(run_dirs: Sequence[str | Path], title: str) -> dict[str, Any]:
    """Everything the summary page draws, for :func:`build_site` and ``latentcot report``."""
    paths = [Path(d) for d in run_dirs]
    if not paths:
        raise LatentCotError("view: give at least one run folder")
    runs = [run_summary(p, n) for p, n in zip(paths, _run_names(paths))]
    configs = {r["name"]: r["config"] for r in runs if r["config"]}
    return {
        "title": title,
        "runs": runs,
        "columns": [[k, *v] for k, v in EVAL_COLUMNS.items()],
        "diff": config_diff(configs) if len(configs) > 1 else [],
    }


def _reason_options(method: Any, cfg: Any) -> dict[str, Any]:
    latent = method.name not in ("nocot", "cot")
    return {"n_latents": cfg.eval.n_latents} if cfg.eval.n_latents >= 0 and latent else {}


def question_details(run_dir: str | Path, questions: Sequence[str], top_k: int = 5,
                     batch_size: int = 64) -> list[dict[str, Any]]:
    """Per question, what the browser shows of each thought (see the module docstring).

    Args:
        run_dir: a run folder or checkpoint folder (:func:`latentcot.train.recipe.load_trained`).
        questions: the questions, as the model reads them.
        top_k: nearest vocabulary tokens per thought.
        batch_size: questions per ``reason`` call.

    Returns:
        One ``{"thoughts": [{"norm", "rel", "near": [[token, p]...], "sim": [...], "step"}...],
        "superposition": [{group: value or None} per thought] or None}`` per question.
    """
    import torch

    from latentcot.latent.diagnostics import (
        collect_latents,
        cosine_matrix,
        mean_embedding_norm,
        nearest_tokens,
    )
    from latentcot.methods.simcot import with_step_decoder
    from latentcot.train.recipe import load_trained

    method, cfg = load_trained(run_dir)
    options = _reason_options(method, cfg)
    probe = method.reason([questions[0]], max_new_tokens=1, **options) if questions else None
    if probe is None or probe.latents is None or not probe.latents.shape[1]:
        return [{"thoughts": [], "superposition": None} for _ in questions]
    latents = collect_latents(method, questions, batch_size, **options)  # (n, k, hidden)
    n, k, hidden = latents.shape
    device = next(method.parameters()).device
    near: list[list[tuple[str, float]]] = []
    for start in range(0, n * k, 4096):
        near += nearest_tokens(method.backbone, method.tokenizer, latents.reshape(-1, hidden)[start:start + 4096].to(device), top_k)
    norms = latents.norm(dim=-1)  # (n, k)
    scale = mean_embedding_norm(method.backbone)
    decoder = with_step_decoder(method)
    steps: list[list[str]] | None = None
    if decoder is not None:
        steps = []
        for start in range(0, n, batch_size):
            steps += decoder.latent_steps(latents[start:start + batch_size].to(device))
    superposed: list[Any] = [None] * n
    if cfg.data.task == "prosqa_graph":
        from latentcot.data.graph import example_from_question
        from latentcot.latent.diagnostics import superposition

        superposed = superposition(method, [example_from_question(q) for q in questions], batch_size, **options)["per_question"]
    out = []
    with torch.no_grad():
        for i in range(n):
            sims = cosine_matrix(latents[i]).tolist()
            thoughts = [{"norm": round(float(norms[i, j]), 3), "rel": round(float(norms[i, j]) / scale, 3),
                         "near": [[t, round(p, 3)] for t, p in near[i * k + j]],
                         "sim": [round(s, 3) for s in sims[j]],
                         "step": None if steps is None else steps[i][j]} for j in range(k)]
            rows = superposed[i]
            if rows is not None:
                rows = [{g: None if v is None else round(v, 3) for g, v in row.items()} for row in rows]
            out.append({"thoughts": thoughts, "superposition": rows})
    return out


def _png(image: Any) -> str:
    """A (3, H, W) float image in [0, 1] as a PNG data URI at its own size (the page scales it up)."""
    import base64
    import io

    import matplotlib.image
    import numpy as np

    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, np.clip(np.asarray(image, dtype=np.float32), 0, 1).transpose(1, 2, 0), format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def is_endocot_run(run_dir: Path) -> bool:
    """A folder written by ``latentcot visual train`` (``config.yaml`` + ``model.safetensors`` at its
    top, where a language-model run folder has neither weights nor, as a checkpoint, ``latentcot.json``)."""
    return (run_dir / "model.safetensors").is_file() and (run_dir / "config.yaml").is_file() \
        and not (run_dir / "latentcot.json").is_file()


def puzzle_details(run_dir: str | Path, n: int | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An EndoCoT run's first ``n`` held-out puzzles (None: all ``data.eval_size``) for the browser.

    Returns:
        (the question list: ``{"q", "gold", "pred", "text", "ok"}`` per puzzle, as for language
        runs; the details: per puzzle ``{"thoughts": [], "superposition": None, "puzzle": {...}}``
        with the puzzle, drawn and true images as PNG data URIs, ``"maps"`` (per thought a
        side x side list of rounded values, :meth:`EndoCoT.thought_maps`), ``"map_kind"`` and
        ``"readouts"`` (per thought the image a grid readout draws, or None)).
    """
    from latentcot.visual.train import eval_puzzles, load_run, look

    model, cfg = load_run(run_dir)
    puzzles = eval_puzzles(cfg, min(n, cfg.data.eval_size) if n is not None else None)
    seen = look(model, cfg.data.task, puzzles, cfg.sample_steps, cfg.seed)
    kind = ("per cell: the norm of what the cell's thought adds to its patch token in the DiT"
            if model.cfg.thought == "grid" else "per cell: cosine similarity of the thought with the cell's input embedding")
    size = f"{cfg.data.size}x{cfg.data.size}"
    listed: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for i, s in enumerate(seen):
        listed.append({"q": f"{cfg.data.task} {size} #{i}: {s['gold']}", "gold": s["gold"], "pred": s["answer"],
                       "text": "", "ok": bool(s["solved"])})
        maps = None if s["maps"] is None else [[[round(float(v), 3) for v in row] for row in m] for m in s["maps"]]
        details.append({"thoughts": [], "superposition": None, "puzzle": {
            "images": {"puzzle": _png(s["puzzle"]), "drawn": _png(s["drawn"]), "truth": _png(s["truth"])},
            "maps": maps, "map_kind": kind if maps is not None else "",
            "readouts": None if s["readouts"] is None else [_png(r) for r in s["readouts"]]}})
    return listed, details


def _wrap(key: str, value: Any) -> str:
    # "</" never ends up in the JS (a page may inline it in a <script> element)
    text = json.dumps(value, separators=(",", ":")).replace("</", "<\\/")
    return f"latentcot.loaded({json.dumps(key)}, {text});\n"


def _questions(run: dict[str, Any], limit: int | None) -> list[dict[str, Any]]:
    path = Path(run["path"]) / "eval.json"
    if not path.is_file():
        return []
    predictions = json.loads(path.read_text()).get("predictions") or []
    return [{"q": p["question"], "gold": p.get("gold", ""), "pred": p.get("predicted", ""), "text": p.get("text", ""),
             "ok": bool(p.get("correct"))} for p in predictions[:limit]]


def page(summary: dict[str, Any], browser: bool, inline: bool = False) -> str:
    """The HTML of the summary page (with the question browser when ``browser``).

    Args:
        summary: :func:`site_summary`.
        browser: show the question browser (its data files are next to the page).
        inline: put the chart library, script, style and summary inside the page (one file).
    """
    title = html.escape(summary["title"])
    if inline:
        head = (f"<style>{_static('uPlot.min.css')}\n{_static('viewer.css')}</style>"
                f"<script>{_static('uPlot.iife.min.js')}</script><script>{_static('viewer.js')}</script>"
                f"<script>{_wrap('summary', summary)}</script>")
    else:
        head = ("<link rel='stylesheet' href='lib/uPlot.min.css'><link rel='stylesheet' href='lib/viewer.css'>"
                "<script src='lib/uPlot.iife.min.js'></script><script src='lib/viewer.js'></script>"
                "<script src='data/summary.js'></script>")
    browse = "<section id='browser'><h2>Questions</h2><div id='browser-body'></div></section>" if browser else ""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title>"
        # uncaught errors and console.error calls, for the self-test (index.html#selftest)
        "<script>window.latentcotErrors=[];addEventListener('error',function(e){latentcotErrors.push(String(e.message||e))});"
        "(function(f){console.error=function(){latentcotErrors.push([].join.call(arguments,' '));f.apply(console,arguments)}})(console.error);</script>"
        f"{head}</head><body><header><h1>{title}</h1><nav id='nav'></nav></header>"
        "<section id='curves'><h2>Training curves</h2><div id='curves-body'></div></section>"
        "<section id='evaluation'><h2>Evaluation</h2><div id='eval-body'></div></section>"
        f"{browse}"
        "<section id='configs'><h2>Configs</h2><div id='configs-body'></div></section>"
        f"<script>latentcot.start({json.dumps({'browser': browser})});</script></body></html>"
    )


def build_site(run_dirs: Sequence[str | Path], out: str | Path, title: str = "latentcot view",
               questions: int | None = None, top_k: int = 5, batch_size: int = 64, log: Any = print) -> Path:
    """Write the viewer site for ``run_dirs`` into the folder ``out``.

    Args:
        run_dirs: run folders written by ``latentcot train`` (or ``latentcot demo``'s per-method folders).
        out: the site folder (created; its ``index.html``, ``lib/`` and ``data/`` are replaced).
        title: the page title.
        questions: browse the first N held-out questions of each run's ``eval.json`` (None = all).
        top_k: nearest vocabulary tokens per thought.
        batch_size: questions per ``reason`` call while precomputing.
        log: called with one line per run as its questions are precomputed.

    Returns:
        The path of ``index.html``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LatentCotError(f"view --out {out}: is a file; give a folder for the site")
    summary = site_summary(run_dirs, title)
    for sub in ("lib", "data"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "lib").mkdir(parents=True)
    (out / "data").mkdir()
    for name in STATIC:
        (out / "lib" / name).write_text(_static(name), encoding="utf-8")
    for run in summary["runs"]:
        path = Path(run["path"])
        if is_endocot_run(path):
            listed, details = puzzle_details(path, questions)
            n_thoughts = max((len(d["puzzle"]["maps"] or []) for d in details), default=0)
        else:
            listed = _questions(run, questions)
            has_checkpoint = (path / "checkpoints").is_dir() or (path / "latentcot.json").is_file()
            if not listed or not has_checkpoint:
                run["questions"] = 0
                run["browser_note"] = "no eval.json predictions" if not listed else "no checkpoint to look inside"
                continue
            details = question_details(run["path"], [q["q"] for q in listed], top_k, batch_size)
            n_thoughts = max((len(d["thoughts"]) for d in details), default=0)
        run["questions"] = len(listed)
        folder = out / "data" / run["slug"]
        folder.mkdir()
        run["thoughts"] = n_thoughts
        (folder / "questions.js").write_text(_wrap(f"{run['slug']}/questions", {
            "chunk": CHUNK, "thoughts": n_thoughts, "questions": listed}))
        for c in range(0, len(details), CHUNK):
            (folder / f"chunk-{c // CHUNK:04d}.js").write_text(_wrap(f"{run['slug']}/chunk-{c // CHUNK:04d}", details[c:c + CHUNK]))
        log(f"{run['name']}: {len(listed)} questions, {n_thoughts} thoughts each")
    (out / "data" / "summary.js").write_text(_wrap("summary", summary))
    index = out / "index.html"
    index.write_text(page(summary, browser=True))
    return index
