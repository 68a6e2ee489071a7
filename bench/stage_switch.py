"""What a Coconut/SIM-CoT run meets when its curriculum moves on, and what its first steps there do.

    python bench/stage_switch.py CHECKPOINT --stages 6,7,8 \
        --branch base --branch rewarm400:train.rewarm_steps=400 --branch lr3e-4:train.lr=3e-4 \
        --steps 150 --work runs/stage_switch --out bench/results/stage_switch.json --doc docs/results/stage_switch.md

``CHECKPOINT`` is one checkpoint of a training run (``RUN/checkpoints/step-N``), typically the one
written where a stage ends. Two measurements:

1. **Before any update**: the method's losses (``loss``, ``answer_loss``, ``step_loss``) on
   ``--batches`` batches of the run's own training rows laid out as each stage in ``--stages``
   lays them out — how far the model is from the next stage's layout when it arrives there — and,
   with Coconut's ``thought_targets`` on, each thought group's label cross-entropy.
2. **Branches**: for each ``--branch NAME[:KEY=VALUE,...]`` the checkpoint is copied into its own
   run folder and training resumes exactly (``latentcot train RUN/config.yaml --resume``) with those
   overrides, logging every ``--log-every`` steps, and is stopped after ``--steps`` steps (its first
   logged row is left out: after a resume it also averages steps from before the checkpoint). A branch
   with no overrides continues the run as it was. Overrides are whatever ``latentcot train`` takes
   (``train.lr``, ``train.rewarm_steps``, ``train.optimizer_reset``, ``method.base_options.start_stage``,
   ...); a schedule key such as ``train.epochs`` also moves the learning rate.

Writes the JSON (both tables, each branch's logged rows) and a Markdown page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

import torch
from torch import nn

from latentcot.latent.loop import latent_forward
from latentcot.methods.base import LossOutput, Method
from latentcot.methods.coconut import Coconut
from latentcot.train import checkpoint as ckpt
from latentcot.train.recipe import load_examples, load_trained

ROOT = Path(__file__).resolve().parents[1]


def before_update(checkpoint: Path, stages: list[int], batches: int, batch_size: int, seed: int) -> list[dict]:
    """Mean losses of the checkpoint (train mode, no update) on each stage's layout of the same rows."""
    method, cfg = load_trained(checkpoint)
    train, _, _ = load_examples(cfg.data, cfg.seed)
    method.train()
    module = cast(nn.Module, method)  # every method is an nn.Module (methods/base.py)
    g = torch.Generator().manual_seed(seed)
    picks = [[train[int(i)] for i in torch.randperm(len(train), generator=g)[:batch_size]] for _ in range(batches)]
    rows = []
    for stage in stages:
        logs: dict[str, list[float]] = {}
        torch.manual_seed(seed)  # a method's own draws (uniform_prob) repeat from stage to stage
        targets: list[list[float]] = []
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.train.bf16):
            for batch in picks:
                rows_batch = method.collate(batch, stage)
                out: LossOutput = module(rows_batch)
                for key, value in out.logs.items():
                    logs.setdefault(key, []).append(float(value))
                targets.append(thought_target_losses(method, rows_batch))
        row: dict[str, float | list[float]] = {"stage": stage, **{k: sum(v) / len(v) for k, v in logs.items()}}
        if targets and targets[0]:
            row["thought_targets"] = [sum(t[g] for t in targets) / len(targets) for g in range(len(targets[0]))]
        rows.append(row)
    return rows


def thought_target_losses(method: Method, batch: dict) -> list[float]:
    """Cross-entropy of each thought group's ``thought_targets`` label (the token its last thought is
    trained to name), group by group; [] when the method (or its base) is not Coconut with them on."""
    base = getattr(method, "base", method)
    config = getattr(base, "config", None)
    if config is None or not getattr(config, "thought_targets", False):
        return []
    assert isinstance(base, Coconut)  # thought_targets is a Coconut option
    ids, labels = batch["input_ids"], batch["labels"]
    latent = ids == base.tokens.latent
    fwd = latent_forward(method.backbone, method.backbone.get_input_embeddings()(ids), batch["attention_mask"], latent,
                         base.project)
    head = method.backbone.get_output_embeddings()
    bot = (ids == base.tokens.bot).int().argmax(1)  # one column for the whole batch
    rows = torch.arange(len(ids))
    out = []
    for g in range(int(latent.sum(1).max()) // config.c_thought):
        column = bot + 1 + (g + 1) * config.c_thought  # labelled there, predicted from the column before
        keep = labels[rows, column] != -100
        if keep.any():
            logits = head(fwd.hidden_states[rows[keep], column[keep] - 1]).float()
            out.append(float(torch.nn.functional.cross_entropy(logits, labels[rows[keep], column[keep]])))
    return out


def branch(checkpoint: Path, name: str, overrides: list[str], steps: int, log_every: int, work: Path,
           threads: int) -> list[dict]:
    """Resume a copy of the checkpoint's run with ``overrides`` for ``steps`` steps; its logged rows."""
    run = checkpoint.parent.parent
    info = ckpt.read_info(checkpoint)
    start = int(info["step"])
    folder = work / name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copytree(checkpoint, folder / "checkpoints" / checkpoint.name)
    kept = [line for line in (run / "metrics.jsonl").read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= start]
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in kept))
    command = [sys.executable, "-m", "latentcot.cli", "train", str(run / "config.yaml"), f"out_dir={folder}",
               f"train.log_every={log_every}", f"train.save_every={10**9}", *overrides, "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    with (work / f"{name}.log").open("w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            while proc.poll() is None:
                time.sleep(2)
                if len(rows := _logged(folder, start)) > 1 and rows[-1]["step"] >= start + steps:
                    break
        finally:
            proc.terminate()
            proc.wait()
    # the first row after a resume also averages the steps logged before the checkpoint (the
    # trainer carries its log window on): left out
    rows = [r for r in _logged(folder, start)[1:] if r["step"] <= start + steps]
    if not rows:
        raise SystemExit(f"branch {name}: no step logged; see {work / f'{name}.log'}")
    return rows


def _logged(folder: Path, start: int) -> list[dict]:
    path = folder / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line being written
            continue
        if row.get("step", 0) > start and "loss" in row:
            rows.append(row)
    return rows


def write_doc(result: dict, doc: Path) -> None:
    a = result["args"]
    lines = [f"## What the run meets when its curriculum moves on: `{a['checkpoint']}`", "",
             f"Generated by `bench/stage_switch.py` from `{a['out']}`; do not edit by hand.", "",
             f"Command: `{result['command']}` (commit {result['commit']})", "",
             f"Machine: {result['machine']}.", ""]
    if a.get("note"):
        lines += [a["note"], ""]
    before = result["before_update"]
    keys = [k for k in ("loss", "answer_loss", "step_loss") if before and k in before[0]]
    lines += [] if not before else ["**Before any update** (train mode, the run's own training rows, "
              f"{a['batches']} batches of {a['batch_size']}), mean per batch:", "",
              "| stage | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    tt = before and any("thought_targets" in row for row in before)
    if tt:
        lines[-2] += " thought targets' cross-entropy, group by group |"
        lines[-1] += "---|"
    for row in result["before_update"]:
        groups = " / ".join(f"{v:.3f}" for v in row.get("thought_targets", []))
        lines.append(f"| {row['stage']} | " + " | ".join(f"{row[k]:.3f}" for k in keys) + " |"
                     + (f" {groups or '–'} |" if tt else ""))
    if result["branches"]:
        start = result["start_step"]
        rows = [r for b in result["branches"] for r in b["rows"]]
        marks = sorted({r["step"] - start for r in rows})
        first: dict[tuple[str, int], int] = {}  # the first logged row of each stage a branch reaches
        for b in result["branches"]:
            for r in b["rows"]:
                first.setdefault((b["name"], r["stage"]), r["step"] - start)
        targets = [2 * a["log_every"], 30, 60, 100, 150, 200, *range(300, marks[-1] + 1, 100)]
        wanted = sorted({min(m for m in marks if m >= t) for t in targets if t <= marks[-1]} | set(first.values()))
        named = any("thought_target_loss" in r for r in rows)
        what = "answer / step / thought-target loss" if named else "answer loss / step loss"
        lines += ["", f"**Branches from step {start}**: {what} logged after that many steps "
                  f"(means over {a['log_every']} steps; chance for one digit is ln 10 = 2.303; `sN:` the stage, "
                  "where it is not the stage the branch starts in):", "",
                  "| branch | overrides | " + " | ".join(f"+{m}" for m in wanted) + " |",
                  "|---|---|" + "---|" * len(wanted)]
        for b in result["branches"]:
            at = {r["step"] - start: r for r in b["rows"]}
            stage0 = b["rows"][0]["stage"]

            def cell(r: dict, stage0: int = stage0) -> str:
                keys = ("answer_loss", "step_loss", "thought_target_loss") if named else ("answer_loss", "step_loss")
                text = " / ".join(f"{r[k]:.2f}" if k in r else "–" for k in keys)
                return text if r["stage"] == stage0 else f"s{r['stage']}: {text}"

            cells = [cell(at[m]) if m in at else "–" for m in wanted]
            lines.append(f"| {b['name']} | {' '.join(b['overrides']) or '(the run as it was)'} | " + " | ".join(cells) + " |")
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", nargs="?", default="", help="RUN/checkpoints/step-N of a Coconut or SIM-CoT (on Coconut) run")
    p.add_argument("--stages", default="", help="stages to score before any update, e.g. 6,7,8 ('' = none)")
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="which training rows are scored")
    p.add_argument("--branch", action="append", default=[], metavar="NAME[:KEY=VALUE,...]")
    p.add_argument("--steps", type=int, default=150, help="steps each branch trains")
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default="runs/stage_switch", help="folder for the branches' runs")
    p.add_argument("--note", default="", help="a paragraph for the Markdown page")
    p.add_argument("--out", default="bench/results/stage_switch.json")
    p.add_argument("--doc", default="docs/results/stage_switch.md")
    p.add_argument("--render", default="", help="only rewrite --doc from this JSON")
    a = p.parse_args()
    if a.render:
        write_doc(json.loads(Path(a.render).read_text()), Path(a.doc))
        return
    if not a.checkpoint:
        p.error("a checkpoint is needed (or --render JSON)")
    checkpoint = ckpt.resolve_checkpoint(a.checkpoint)
    stages = [int(s) for s in a.stages.split(",") if s.strip()]
    result: dict = {
        "args": vars(a), "command": "python bench/stage_switch.py " + " ".join(sys.argv[1:]),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=ROOT).stdout.strip(),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}",
        "start_step": int(ckpt.read_info(checkpoint)["step"]),
        "before_update": before_update(checkpoint, stages, a.batches, a.batch_size, a.seed) if stages else [],
        "branches": [],
    }
    for spec in a.branch:
        name, _, rest = spec.partition(":")
        overrides = [o for o in rest.split(",") if o]
        rows = branch(checkpoint, name, overrides, a.steps, a.log_every, Path(a.work), a.threads)
        result["branches"].append({"name": name, "overrides": overrides, "rows": rows})
        print(name, " ".join(f"{r['step']}:{r.get('answer_loss', float('nan')):.2f}" for r in rows[:12]), flush=True)
    for row in result["before_update"]:
        print("stage", row["stage"], {k: round(v, 3) for k, v in row.items() if k != "stage"})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    write_doc(result, Path(a.doc))


if __name__ == "__main__":
    main()
