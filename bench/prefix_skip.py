"""Training steps with and without the prompt pass's last-layer skip, side by side.

    python bench/prefix_skip.py                         # the default recipes below
    python bench/prefix_skip.py --batches 3 --rounds 1  # a quick check

When a latent method's labels all come after its thoughts (Coconut, SIM-CoT on Coconut), nothing
reads the last layer's output at the prompt's columns but the last: ``latent_forward`` then runs
the prompt pass with ``prefix_states=False`` (the layer writes keys and values there and computes
the rest for the last column only; :mod:`latentcot.latent.last_position`). This times a whole
training step (collate, forward, backward, AdamW) of each recipe at a stated curriculum stage,
over the same ``--batches`` batches, the skip off and on, alternating ``--rounds`` times (best
round kept), and checks the loss of the first batch agrees. Recipes are run configs (YAML) whose
data, model and method build the batches as ``latentcot train`` would. Writes
bench/results/prefix_skip.json and docs/results/prefix_skip.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_speed import machine_name  # noqa: E402

import latentcot.methods.sequences as sequences  # noqa: E402
import latentcot.methods.simcot as simcot  # noqa: E402
from latentcot import demo  # noqa: E402
from latentcot.config import load_config  # noqa: E402
from latentcot.train import recipe  # noqa: E402
from latentcot.train.run_config import RunConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_SIMCOT = [*demo.COMMON, *demo.METHODS["simcot"][:1], "data.train_size=3000", "train.batch_size=32", "seed=0"]
RECIPES = [  # (what, config ('' = defaults), overrides, stage: None = the last)
    ("the demo's SIM-CoT, running sums of 5, from scratch (all-latent stage)", "", DEMO_SIMCOT, None),
    ("Coconut frontier, small matched graphs (last stage)", "configs/lm/tiny/graph_matched_coconut.yaml", [], None),
    ("Coconut frontier, ProsQA-size graphs (last stage)", "configs/lm/tiny/graph_coconut.yaml", [], None),
]


def switch(on: bool) -> None:
    """Turn the skip on (the library's rule) or off (every prompt column computed)."""
    sequences.prefix_unlabelled = ORIGINAL if on else NEVER
    simcot.prefix_unlabelled = ORIGINAL if on else NEVER


ORIGINAL = sequences.prefix_unlabelled


def NEVER(latent_mask: torch.Tensor, labels: torch.Tensor) -> bool:  # noqa: N802 - a stand-in for the rule
    return False


def run(method, optimizer, batches, stage: int) -> tuple[float, float]:
    began = time.perf_counter()
    first = None
    for examples in batches:
        loss = method(method.collate(examples, stage)).loss
        first = float(loss) if first is None else first
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - began, first or 0.0


def measure(what: str, path: str, overrides: list[str], stage: int | None, a: argparse.Namespace) -> dict:
    cfg = load_config(RunConfig, ROOT / path if path else None, overrides)
    torch.manual_seed(cfg.seed)
    train, held_out, _ = recipe.load_examples(cfg.data, cfg.seed)
    method = recipe.build(cfg, train, held_out).train()
    module = cast(nn.Module, method)  # every method is an nn.Module (methods/base.py)
    stage = method.num_stages() - 1 if stage is None else stage
    batch_size = cfg.train.batch_size
    batches = [train[i : i + batch_size] for i in range(0, a.batches * batch_size, batch_size)]
    state = {k: v.clone() for k, v in module.state_dict().items()}
    optimizer = torch.optim.AdamW(method.parameters(), lr=cfg.train.lr)
    run(method, optimizer, batches[:1], stage)  # warm-up
    best = {False: float("inf"), True: float("inf")}
    losses = {}
    for _ in range(a.rounds):
        for on in (False, True):
            switch(on)
            module.load_state_dict(state)  # the same weights and draws, so the first losses compare
            torch.manual_seed(cfg.seed)
            optimizer = torch.optim.AdamW(method.parameters(), lr=cfg.train.lr)
            seconds, losses[on] = run(method, optimizer, batches, stage)
            best[on] = min(best[on], seconds / len(batches))
    switch(True)
    ids = method.collate(batches[0], stage)["input_ids"]
    return {"what": what, "config": path, "overrides": overrides, "stage": stage, "batch_size": batch_size,
            "columns": int(ids.shape[1]), "off_ms": 1e3 * best[False], "on_ms": 1e3 * best[True],
            "speedup": best[False] / best[True], "first_loss_off": losses[False], "first_loss_on": losses[True]}


def where(row: dict) -> str:
    return f" (`{row['config']}`)" if row["config"] else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated recipe numbers (0-based) to run")
    p.add_argument("--note", default="", help="a sentence added to the doc (e.g. what else ran on the cores)")
    p.add_argument("--out", default=str(ROOT / "bench/results/prefix_skip.json"))
    p.add_argument("--doc", default=str(ROOT / "docs/results/prefix_skip.md"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    chosen = [RECIPES[int(i)] for i in a.only.split(",")] if a.only else RECIPES
    rows = []
    for what, path, overrides, stage in chosen:
        rows.append(measure(what, path, overrides, stage, a))
        print(json.dumps(rows[-1]), flush=True)
    result: dict[str, Any] = {"command": "python bench/prefix_skip.py " + " ".join(sys.argv[1:]),
              "machine": machine_name(torch.device("cpu"), a.threads), "args": vars(a), "rows": rows}
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    lines = ["| recipe | stage | batch × columns | skip off (ms/step) | skip on (ms/step) | speed-up | first loss off / on |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['what']}{where(r)} | {r['stage']} | {r['batch_size']} × {r['columns']} | {r['off_ms']:.1f} | "
              f"{r['on_ms']:.1f} | {r['speedup']:.2f}× | {r['first_loss_off']:.6f} / {r['first_loss_on']:.6f} |"
              for r in rows]
    text = "\n".join([
        "## Training without the prompt's last-layer outputs", "",
        f"Command: `{result['command'].strip()}`. Machine: {result['machine']}.", "",
        f"Whole training steps (collate, forward, backward, AdamW) over the same {a.batches} batches of each recipe, "
        f"from the same initial weights, with the prompt pass computing every column's last layer (off) or only "
        f"the last column's (on: `prefix_states=False`, the default where no label sits in the prompt), "
        f"alternating, best of {a.rounds} rounds.", "",
        *lines, "", *([a.note, ""] if a.note else [])])
    Path(a.doc).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
