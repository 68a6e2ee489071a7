"""EndoCoT study: solved rate (parse + check of generated images) vs maze size and vs T.

Variants (all the same PuzzleDiT, same steps and data; see docs/results/endocot.md):
  endocot          reasoner, T latent thoughts, terminal grounding, stage 1 then stage 2; adaLN
  no_reasoner      the same DiT conditioned on the puzzle image only (static conditioning)
  t0               reasoner with T = 0 (the <bot> output conditions the DiT; no latent steps)
  no_grounding     endocot with grounding_weight = 0
  endocot_tokens   endocot with the thoughts as context tokens in the DiT's attention
  t0_tokens        t0 with context tokens
  readout          endocot_tokens plus a cross-entropy readout of the whole answer from the final thought
  step_readout     endocot_tokens plus a readout of each thought's own step (SIM-CoT's step supervision)
  step_readout_ng  step_readout without grounding
  step_readout_bi  step_readout_ng with a bidirectional reasoner over the cells
  endocot_bi       endocot with a bidirectional reasoner over the cells
  reasoner_probe   the reasoner and its step readout alone (no DiT loss): what can the reasoner learn?
  grid             grid thoughts (a vector per cell, a looped bidirectional reasoner) added to the DiT's
                   patch tokens; terminal grounding to the reasoner's reading of the solution image
  grid_ng          grid without grounding
  grid_readout     grid_ng plus a per-cell pixel readout of each thought's partial solution
  grid_probe       the grid reasoner and its readout alone (no DiT loss)
  grid_nb          grid_ng with neighbours attention (each cell sees itself and its 4 neighbours)
  grid_nb_probe    grid_probe with neighbours attention

    # every run of a plan in parallel (one process per run), then the table:
    python bench/endocot_study.py sweep --plan cpu --runs runs/endocot-study-cpu --jobs 2
    python bench/endocot_study.py collect --runs runs/endocot-study-cpu --out bench/results/endocot_cpu.json
    # one run:
    python bench/endocot_study.py run --variant endocot --size 4 --T 4 --runs runs/x --plan cpu
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

import torch

STEP_READOUT = {"model.conditioning": "tokens", "model.readout_weight": 1.0}  # step_readout and its kin
GRID: dict[str, object] = {"model.thought": "grid", "model.conditioning": "cells",
                           "model.reasoner_attention": "bidirectional"}
NO_GROUNDING = {"model.grounding_weight": 0.0}
NEIGHBOURS = {"model.reasoner_attention": "neighbours"}
# each variant names its conditioning, so a name means the same whatever the config's default
VARIANTS: dict[str, dict[str, object]] = {
    "endocot": {"model.conditioning": "adaln"},
    "no_reasoner": {"model.reasoner": False},
    "t0": {"model.latent_steps": 0, "model.conditioning": "adaln"},
    "no_grounding": {**NO_GROUNDING, "model.conditioning": "adaln"},
    "endocot_tokens": {"model.conditioning": "tokens"},
    "t0_tokens": {"model.latent_steps": 0, "model.conditioning": "tokens"},
    "readout": {**STEP_READOUT, "model.readout": "answer"},
    "step_readout": STEP_READOUT,
    "step_readout_ng": {**STEP_READOUT, **NO_GROUNDING},
    "step_readout_bi": {**STEP_READOUT, **NO_GROUNDING, "model.reasoner_attention": "bidirectional"},
    "reasoner_probe": {**STEP_READOUT, **NO_GROUNDING, "model.flow_weight": 0.0},
    "endocot_bi": {"model.conditioning": "adaln", "model.reasoner_attention": "bidirectional"},
    "grid": GRID,
    "grid_ng": {**GRID, **NO_GROUNDING},
    "grid_readout": {**GRID, **NO_GROUNDING, "model.readout_weight": 1.0},
    "grid_probe": {**GRID, **NO_GROUNDING, "model.readout_weight": 1.0, "model.flow_weight": 0.0},
    "grid_nb": {**GRID, **NO_GROUNDING, **NEIGHBOURS},
    "grid_nb_probe": {**GRID, **NO_GROUNDING, **NEIGHBOURS, "model.readout_weight": 1.0, "model.flow_weight": 0.0},
}

# plan gpu8 (and gpu8b): batch 1024 because tiny models are launch-bound on a GPU (a bigger batch
# costs about the same per step)
GPU8_SETTINGS = {"device": "cuda", "data.train_size": 12000, "data.eval_size": 500, "train.batch_size": 1024,
                 "train.stage1_steps": 300, "train.stage2_steps": 900, "train.max_seconds": 330,
                 "train.warmup_steps": 100, "train.lr": 1e-3, "model.reasoner_hidden": 128,
                 "model.reasoner_layers": 2, "model.reasoner_heads": 4, "model.dit_hidden": 128,
                 "model.dit_depth": 4, "model.dit_heads": 4}


class Plan(TypedDict):
    """A plan's shared settings and its runs: (variant, size, T[, tag, {setting: value}]) tuples."""

    settings: dict[str, object]
    runs: list[tuple[Any, ...]]


# plan -> shared settings and the (variant, size, T) runs; the CPU plan fits 2 shared cores
PLANS: dict[str, Plan] = {
    "cpu": {
        "settings": {"device": "cpu", "data.train_size": 3000, "data.eval_size": 200, "train.batch_size": 64,
                     "train.stage1_steps": 400, "train.stage2_steps": 800, "train.max_seconds": 600,
                     "train.warmup_steps": 100, "train.lr": 1e-3},
        "runs": [(v, 4, 4) for v in VARIANTS],
    },
    "cpu_long": {  # step-matched: the reasoner costs time per step, so compare at equal steps
        "settings": {"device": "cpu", "data.train_size": 3000, "data.eval_size": 200, "train.batch_size": 64,
                     "train.stage1_steps": 1000, "train.stage2_steps": 2000, "train.max_seconds": 1800,
                     "train.warmup_steps": 100, "train.lr": 1e-3},
        "runs": [("endocot", 4, 4), ("no_reasoner", 4, 4)],
    },
    "gpu8": {  # step-matched on one GPU: every run gets the same steps (max_seconds only as a safety cap)
        "settings": GPU8_SETTINGS,
        "runs": [("no_reasoner", 8, 4), ("endocot_tokens", 8, 4), ("endocot", 8, 4), ("step_readout_ng", 8, 0),
                 ("step_readout_ng", 8, 4), ("step_readout_ng", 8, 8)],
    },
    "gpu8b": {  # a second call: the fixed static baseline (full solution in stage 1 too), step- and
        # time-matched, a second seed of endocot and its T = 0 ablation; gpu8's settings
        "settings": {**GPU8_SETTINGS, "train.max_seconds": 300},
        "runs": [("no_reasoner", 8, 4), ("no_reasoner", 8, 4, "timed", {"train.stage1_steps": 0,
                  "train.stage2_steps": 100000, "train.max_seconds": 240}),
                 ("endocot", 8, 4, "seed1", {"seed": 1}), ("t0", 8, 0)],
    },
    "gpu8grid": {  # grid thoughts at 8x8 against the static baseline, step-matched
        "settings": GPU8_SETTINGS,
        "runs": [("no_reasoner", 8, 4), ("grid_ng", 8, 4), ("grid_ng", 8, 0), ("grid_ng", 8, 8), ("grid", 8, 4),
                 ("endocot", 8, 4)],
    },
    "gpunb": {  # for the next GPU session: neighbours grid thoughts at 8x8 and 12x12 (reach 2·(T + 1) cells)
        "settings": GPU8_SETTINGS,
        "runs": [("no_reasoner", 8, 8), ("grid_nb", 8, 8), ("grid_nb", 8, 0), ("no_reasoner", 12, 12),
                 ("grid_nb", 12, 12), ("grid_nb", 12, 0)],
    },
    "gpu": {
        "settings": {"device": "cuda", "data.train_size": 10000, "data.eval_size": 500, "train.batch_size": 256,
                     "train.stage1_steps": 2000, "train.stage2_steps": 4000, "train.max_seconds": 160,
                     "train.warmup_steps": 200, "train.lr": 1e-3, "model.reasoner_hidden": 128,
                     "model.reasoner_layers": 2, "model.reasoner_heads": 4, "model.dit_hidden": 128,
                     "model.dit_depth": 4, "model.dit_heads": 4},
        "runs": [(v, s, 4) for s in (4, 6) for v in ("endocot", "no_reasoner")]
        + [(v, 8, 4) for v in VARIANTS] + [("endocot", 8, T) for T in (1, 2, 8)],
    },
}


def run_name(variant: str, size: int, T: int, tag: str = "", sets: list[str] | None = None) -> str:
    """``VARIANT-TASKSIZE-T#[-tag]``; the task is the last ``data.task=`` of ``sets`` (default maze)."""
    task = ([x.split("=", 1)[1] for x in sets or [] if x.startswith("data.task=")] or ["maze"])[-1]
    return f"{variant}-{task}{size}-T{T}" + (f"-{tag}" if tag else "")


def run_one(plan: str, variant: str, size: int, T: int, runs: Path, extra: list[str] | None = None,
            tag: str = "") -> None:
    """Train and evaluate one configuration into ``runs/<name>/`` (eval.json holds the result)."""
    from latentcot.config import load_config
    from latentcot.visual.train import VisualRunConfig, main

    torch.set_num_threads(1)  # the CPU is shared; on the GPU machine each run gets one core
    settings = {**PLANS[plan]["settings"], "data.size": size, "model.latent_steps": T, **VARIANTS[variant],
                "out_dir": str(runs / run_name(variant, size, T, tag, extra))}
    cfg = load_config(VisualRunConfig, None, [f"{k}={v}" for k, v in settings.items()] + list(extra or []))
    # a rerun replaces the run (as before runs could resume); the trainer's progress bar (a line every
    # 30 s in a log file) and metrics.jsonl show progress
    result = main(cfg, log=lambda line: print(line, flush=True), overwrite=True)
    result.update(variant=variant, size=size, T=cfg.model.latent_steps, plan=plan, machine=machine(), tag=tag)
    (Path(cfg.out_dir) / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{run_name(variant, size, T, tag, extra)}: solved {result['solved']:.3f} after {result['steps']} steps")


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (+{platform.node()})"
    return f"cpu {platform.processor() or platform.machine()} ({platform.node()})"


def sweep(plan: str, runs: Path, jobs: int, extra: list[str] | None = None) -> None:
    """Every run of ``plan``, ``jobs`` processes at a time."""
    runs.mkdir(parents=True, exist_ok=True)
    todo = list(PLANS[plan]["runs"])
    active: list[subprocess.Popen] = []
    while todo or active:
        while todo and len(active) < jobs:
            v, s, T, *more = todo.pop(0)  # (variant, size, T[, tag, {setting: value}])
            tag, own = (more[0], more[1]) if more else ("", {})
            sets = [f"{k}={val}" for k, val in own.items()] + list(extra or [])  # --set wins
            log = open(runs / f"{run_name(v, s, T, tag, sets)}.log", "w")
            active.append(subprocess.Popen([sys.executable, __file__, "run", "--plan", plan, "--variant", v,
                                            "--size", str(s), "--T", str(T), "--runs", str(runs), "--tag", tag,
                                            *[a for x in sets for a in ("--set", x)]],
                                           stdout=log, stderr=subprocess.STDOUT))
        time.sleep(2)
        active = [p for p in active if p.poll() is None]


def collect(runs: Path, out: Path) -> None:
    """Merge ``runs/*/eval.json`` into one JSON and print the markdown table."""
    rows = []
    for path in sorted(runs.glob("*/eval.json")):
        r = json.loads(path.read_text())
        rows.append({k: r[k] for k in ("variant", "size", "T", "solved", "n_eval", "steps", "train_seconds",
                                       "plan", "machine")} | {"tag": r.get("tag", ""),
                                                              "task": r["config"]["data"]["task"]}
                    | {k: r[k] for k in ("solved_shuffled_thoughts", "readout_exact", "readout_solved") if k in r}
                    | {"final_" + k: v for k, v in r["final"].items() if k in ("flow", "grounding", "readout")})
    rows.sort(key=lambda r: (r["size"], list(VARIANTS).index(r["variant"]), r["T"], r["tag"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2) + "\n")
    table(rows)


def table(rows: list[dict]) -> None:
    """The markdown table of collected rows."""
    print("| variant | puzzle | T | solved | shuffled thoughts | readout exact | readout solved | n | steps | train s "
          "| machine |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        T = "–" if r["variant"] == "no_reasoner" else r["T"]  # no reasoner, no thoughts
        probe = r["variant"].endswith("_probe")  # trained without the DiT: only the readout means anything
        cells = [f"{r[k]:.3f}" if k in r and not (probe and k == "solved_shuffled_thoughts") else "–"
                 for k in ("solved_shuffled_thoughts", "readout_exact", "readout_solved")]
        name = r["variant"] + (f" ({r['tag']})" if r.get("tag") else "")
        solved = "(no DiT)" if probe else f"{r['solved']:.3f}"
        print(f"| {name} | {r.get('task', 'maze')} {r['size']}x{r['size']} | {T} | {solved} | {' | '.join(cells)} | "
              f"{r['n_eval']} | {r['steps']} | {r['train_seconds']} | {r['machine']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "sweep", "collect", "table"),
                        help="table: print the markdown table of a collected JSON (--out)")
    parser.add_argument("--plan", choices=sorted(PLANS), default="cpu")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="endocot")
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--T", type=int, default=4)
    parser.add_argument("--runs", type=Path, default=Path("runs/endocot-study"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/endocot.json"))
    parser.add_argument("--tag", default="", help="suffix of the run folder's name (a run's own settings)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a plan setting for every run (repeatable), e.g. --set train.stage1_steps=10")
    args = parser.parse_args()
    if args.command == "run":
        run_one(args.plan, args.variant, args.size, args.T, args.runs, args.set, args.tag)
    elif args.command == "sweep":
        sweep(args.plan, args.runs, args.jobs, args.set)
    elif args.command == "table":
        table(json.loads(args.out.read_text())["rows"])
    else:
        collect(args.runs, args.out)


if __name__ == "__main__":
    main()
