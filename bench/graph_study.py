"""Graph search on ProsQA in graph form: Coconut (frontier curriculum) against CoT and no-CoT.

Train the three runs with the recipes, then collect them::

    latentcot train configs/lm/tiny/graph_coconut.yaml     # and graph_cot.yaml, graph_nocot.yaml
    python bench/graph_study.py collect --runs runs/graph --out bench/results/graph_cpu.json \\
        --doc docs/results/graph_cpu.md

``collect`` reads each run folder (``coconut``, ``cot``, ``nocot``): its accuracy on the real ProsQA
validation file in graph form (the run's own ``eval.json``), the held-out accuracy it logged during
training, and re-evaluates the final checkpoint on generated questions (another seed, none seen in
training); for Coconut it adds the superposition look (``latentcot.latent.diagnostics.superposition``)
on the real file. ``speed`` measures a Coconut training step at the answer stage (4 thoughts) against
a plain forward+backward of the same backbone over the same number of positions, side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import torch

from latentcot.data.generators import generate
from latentcot.eval.evaluate import evaluate
from latentcot.latent.diagnostics import SUPERPOSITION_GROUPS, superposition
from latentcot.train.checkpoint import latest_checkpoint, read_info
from latentcot.train.recipe import load_examples, load_trained

METHODS = ("nocot", "cot", "coconut", "coconut_soft")  # run folders collected, in this order
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _name(run: dict[str, Any]) -> str:
    """The row's label: the run folder's name (``coconut_soft`` is a Coconut run too)."""
    return str(run.get("name", run["method"]))


def _metrics(run: Path) -> list[dict[str, Any]]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _fresh(cfg: Any, seen: set[str], n: int, **override: Any) -> list[Any]:
    """``n`` generated questions of the run's kind (``override`` replaces generator options), none seen in training."""
    options = {"max_hops": cfg.data.max_hops, **cfg.data.generator, **override}
    return [ex for ex in generate("prosqa_graph", 2 * n, cfg.seed + 7, **options) if ex.question not in seen][:n]


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"8-12,13-16"`` -> [(8, 12), (13, 16)]: graph-size bins (nodes before the two answer leaves)."""
    bins = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        bins.append((int(lo), int(hi or lo)))
    return bins


def collect_run(run: Path, generated: int, diag: int, sizes: Sequence[tuple[int, int]] = (),
                distractor: str = "") -> dict[str, Any]:
    method, cfg = load_trained(run)
    method.to(DEVICE)  # type: ignore[attr-defined]
    final = latest_checkpoint(run)
    assert final is not None, f"{run}: no checkpoint"
    info = read_info(final)
    rows = [r for r in _metrics(run) if r["step"] <= info["step"]]  # a stopped run: up to its last checkpoint
    train_rows = [r for r in rows if "loss" in r]
    curve = [(r["step"], r["eval/accuracy"]) for r in rows if "eval/accuracy" in r]
    train, real_examples, _ = load_examples(cfg.data, cfg.seed)
    if (run / "eval.json").is_file():
        real = json.loads((run / "eval.json").read_text())
    else:  # stopped before its final evaluation (e.g. at a time budget): evaluate its latest checkpoint here
        held = _evaluate(method, cfg, real_examples)
        real = {"accuracy": held.accuracy, "n": held.n, "forward_passes_per_question": held.forward_passes_per_question}
    seen = {ex.question for ex in train}
    kind = {"distractor": distractor} if distractor else {}  # the generated questions' distractor, if not the run's
    gen = _evaluate(method, cfg, _fresh(cfg, seen, generated, **kind))
    by_size = []
    for lo, hi in sizes:
        sized = _evaluate(method, cfg, _fresh(cfg, seen, generated, min_nodes=lo, max_nodes=hi, **kind))
        by_size.append({"nodes": [lo, hi], "accuracy": sized.accuracy, "n": sized.n})
    out: dict[str, Any] = {
        "run": str(run), "name": run.name, "method": method.name, "preset": cfg.model.name_or_path,
        "steps": info["step"], "train_seconds": info.get("seconds"),
        "final_loss": train_rows[-1]["loss"] if train_rows else None,
        "batch_size": cfg.train.batch_size, "lr": cfg.train.lr,
        "real_accuracy": real["accuracy"], "real_n": real["n"],
        "held_out": (f"{cfg.data.eval_file} in graph form, <= {cfg.data.max_hops} hops" if cfg.data.eval_file
                     else f"generated, {cfg.data.generator or 'ProsQA-size graphs'}, none in training"),
        "generated_accuracy": gen.accuracy, "generated_n": gen.n, "generated_distractor": distractor or None,
        "forward_passes_per_question": real["forward_passes_per_question"],
        "curve": curve,
    }
    if by_size:
        out["by_size"] = by_size
    if method.name == "coconut":
        bare = method.config.bare  # type: ignore[attr-defined]
        out["layout"] = ("reference (thoughts right after the root, no <bot>/<eot>)" if bare
                         else "Coconut's <bot> thoughts <eot>")
        sp = superposition(method, real_examples[:diag], batch_size=cfg.eval.batch_size)
        out["superposition"] = sp["thoughts"]
    return out


def _evaluate(method: Any, cfg: Any, examples: list[Any]) -> Any:
    """Greedy accuracy of ``method`` on graph questions, with the run's evaluation settings."""
    return evaluate(method, examples, "prosqa_graph", cfg.eval.batch_size, cfg.eval.max_new_tokens)


def speed(run: Path, repeats: int) -> dict[str, Any]:
    """Positions per second of a Coconut answer-stage step vs a plain step of the same backbone."""
    method, cfg = load_trained(run)
    module = cast(torch.nn.Module, method)  # the Protocol lists no __call__ nor zero_grad
    module.to(DEVICE).train()
    train, _, _ = load_examples(cfg.data, cfg.seed)
    batch = method.collate(train[: cfg.train.batch_size], stage=method.num_stages() - 1)
    batch = {k: v.to(DEVICE) for k, v in batch.items()}
    positions = int(batch["attention_mask"].sum())
    plain = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "labels": batch["labels"]}
    times: dict[str, list[float]] = {"latent": [], "plain": []}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for kind in ("latent", "plain"):
            if DEVICE.type == "cuda":
                torch.cuda.synchronize()
            began = time.perf_counter()
            loss = module(batch).loss if kind == "latent" else method.backbone(**plain).loss
            loss.backward()
            if DEVICE.type == "cuda":
                torch.cuda.synchronize()
            times[kind].append(time.perf_counter() - began)
            module.zero_grad(set_to_none=True)
    best = {k: min(v) for k, v in times.items()}
    return {"positions": positions, "latent_s": best["latent"], "plain_s": best["plain"],
            "latent_positions_per_s": positions / best["latent"], "plain_positions_per_s": positions / best["plain"],
            "ratio": best["plain"] / best["latent"], "threads": torch.get_num_threads()}


def _minutes(run: dict[str, Any]) -> str:
    seconds = run.get("train_seconds")
    return f" ({seconds / 60:.0f} min)" if seconds else ""


def table(result: dict[str, Any], command: str) -> str:
    lines = [
        f"## Graph search: ProsQA in graph form ({result['label']})",
        "",
        f"Command: `{command}`, after training the recipes named by the runs' `config.yaml` "
        f"({', '.join(r['run'] for r in result['runs'])}).",
        f"Machine: {result['machine']}.",
        f"Held-out = the recipe's own evaluation set ({result['runs'][0]['held_out']}); generated = "
        "fresh generated questions of the recipe's kind (another seed, none in training"
        + (f"; distractor: {result['runs'][0]['generated_distractor']}" if result["runs"][0].get("generated_distractor") else "")
        + "). Picking one of the two candidates at random scores 50%.",
        "",
        *[f"Coconut's layout: {r['layout']}." for r in result["runs"] if "layout" in r],
        "",
        "| method | model | steps | batch | held-out accuracy | generated accuracy | forward passes/question | final loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {_name(r)} | {r['preset']} | {r['steps']}{_minutes(r)} | {r['batch_size']} | {100 * r['real_accuracy']:.1f}% "
            f"(n={r['real_n']}) | {100 * r['generated_accuracy']:.1f}% (n={r['generated_n']}) | "
            f"{r['forward_passes_per_question']:.1f} | {r['final_loss']:.3f} |"
        )
    curves = [r for r in result["runs"] if r["curve"]]
    if curves:
        lines += ["", "Held-out accuracy logged during training:", "",
                  "| method | " + " | ".join(f"step {s}" for s, _ in curves[0]["curve"]) + " |",
                  "|---" * (1 + len(curves[0]["curve"])) + "|"]
        for r in curves:
            lines.append(f"| {_name(r)} | " + " | ".join(f"{100 * a:.1f}%" for _, a in r["curve"]) + " |")
    sized = [r for r in result["runs"] if "by_size" in r]
    if sized:
        bins = [b["nodes"] for b in sized[0]["by_size"]]
        lines += ["", f"Accuracy by graph size: fresh generated questions of the recipe's kind (another seed, none in "
                  f"training) with the graph grown to each range of nodes before the two answer leaves "
                  f"(n={sized[0]['by_size'][0]['n']} per cell; the real validation graphs have 15-26).", "",
                  "| method | " + " | ".join(f"{lo}-{hi} nodes" for lo, hi in bins) + " |",
                  "|---" * (1 + len(bins)) + "|"]
        for r in sized:
            lines.append(f"| {_name(r)} | " + " | ".join(f"{100 * b['accuracy']:.1f}%" for b in r["by_size"]) + " |")
        named = {_name(r): r for r in sized}
        for latent in ("coconut", "coconut_soft"):
            if latent in named and "cot" in named:
                gaps = [100 * (a["accuracy"] - b["accuracy"]) for a, b in zip(named[latent]["by_size"], named["cot"]["by_size"])]
                lines.append(f"| {latent} − cot (points) | " + " | ".join(f"{g:+.1f}" for g in gaps) + " |")
    for r in result["runs"]:
        if "superposition" in r:
            lines += ["", f"Superposition look ({_name(r)}, held-out questions): mean inner product of thought i with "
                      "the node embeddings of each group (optimal ⊆ frontier ⊆ reachable; mirror: the unreachable "
                      "nodes exactly i steps below another person).", "",
                      "| thought | questions | " + " | ".join(SUPERPOSITION_GROUPS)
                      + " | frontier − unreachable | frontier / unreachable | frontier − mirror |",
                      "|---" * (5 + len(SUPERPOSITION_GROUPS)) + "|"]
            for row in r["superposition"]:
                m = row["mean"]
                # a ratio says something only over a positive base; the paper's unreachable means are ~0
                ratio = f"{m['frontier'] / m['unreachable']:.2f}" if m["unreachable"] > 0 else "– (base ≤ 0)"
                cells = " | ".join(f"{m.get(g, math.nan):+.2f}" for g in SUPERPOSITION_GROUPS)
                lines.append(f"| {row['thought']} | {row['questions']} | {cells} | "
                             f"{m['frontier'] - m['unreachable']:+.2f} | {ratio} | "
                             f"{m['frontier'] - m.get('mirror', math.nan):+.2f} |")
    if "speed" in result:
        s = result["speed"]
        lines += ["", f"Training speed (Coconut answer stage, 4 thoughts, {s['positions']} positions, "
                  f"{s['threads']} threads, best of interleaved repeats): latent loop "
                  f"{s['latent_positions_per_s']:.0f} positions/s, plain forward+backward of the same "
                  f"backbone {s['plain_positions_per_s']:.0f} positions/s: the latent step runs at "
                  f"{s['ratio']:.2f}x the plain step's rate."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect", help="collect the runs under --runs into JSON and a Markdown table")
    c.add_argument("--runs", default="runs/graph")
    c.add_argument("--out", default="bench/results/graph_cpu.json")
    c.add_argument("--doc", default="docs/results/graph_cpu.md")
    c.add_argument("--label", default="CPU, 2 cores")
    c.add_argument("--generated", type=int, default=500, help="fresh generated questions evaluated per run")
    c.add_argument("--diag", type=int, default=257, help="real questions for the superposition look")
    c.add_argument("--sizes", default="", help="graph-size bins for an accuracy-by-size table, e.g. 8-12,13-16,17-20,21-26")
    c.add_argument("--distractor", default="", help="distractor of the generated questions (matched, real, mixed); default: the run's")
    c.add_argument("--speed-repeats", type=int, default=5, help="0 skips the speed measurement")
    args = parser.parse_args()
    runs = Path(args.runs)
    found = [runs / m for m in METHODS if (runs / m / "eval.json").is_file() or (runs / m / "checkpoints").is_dir()]
    result: dict[str, Any] = {
        "label": args.label,
        "machine": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "runs": [collect_run(run, args.generated, args.diag, parse_sizes(args.sizes), args.distractor) for run in found],
    }
    if args.speed_repeats and runs / "coconut" in found:
        result["speed"] = speed(runs / "coconut", args.speed_repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    command = f"python bench/graph_study.py collect --runs {args.runs} --out {args.out} --doc {args.doc}"
    command += f" --sizes {args.sizes}" if args.sizes else ""
    command += f" --distractor {args.distractor}" if args.distractor else ""
    Path(args.doc).write_text(table(result, command))
    print(table(result, command))


if __name__ == "__main__":
    main()
