"""JiT toy (Li & He 2025, §3): a 2-D spiral embedded in D dims; eps / v / x prediction, v-loss.

    python bench/diffusion_jit_toy.py [--steps 2000]

Writes bench/results/diffusion_jit_toy.json, docs/results/diffusion_jit_toy.md (generated table)
and docs/figures/jit_toy.png. About 5 minutes on one CPU thread.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Literal

import torch

from latentcot.diffusion.toy import run_toy, spiral

ROOT = Path(__file__).resolve().parents[1]
DIMS = (2, 8, 16, 512)
TARGETS: tuple[Literal["eps", "v", "x"], ...] = ("eps", "v", "x")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = f"{platform.machine()} CPU, {args.threads} thread(s), torch {torch.__version__}"
    rows, samples = [], {}
    for dim in DIMS:
        for target in TARGETS:
            start = time.time()
            res, *_ = run_toy(dim, target, steps=args.steps)
            rows.append({"dim": dim, "target": target, "energy_distance": res.energy, "off_subspace": res.off_subspace,
                         "final_v_loss": res.final_loss, "seconds": time.time() - start})
            samples[(dim, target)] = res.samples_2d
            print(rows[-1], flush=True)
    config = {"steps": args.steps, "hidden": 256, "depth": 5, "batch": 256, "lr": 1e-3, "loss": "v", "sampler": "euler-100",
              "samples": 1000, "seed": 0}
    (ROOT / "bench/results/diffusion_jit_toy.json").write_text(json.dumps({"machine": machine, "config": config, "rows": rows}, indent=2) + "\n")
    write_table(rows, machine, config)
    write_figure(samples)
    return 0


def write_table(rows: list[dict], machine: str, config: dict) -> None:
    cell = {(r["dim"], r["target"]): r for r in rows}
    lines = ["## JiT toy: x-prediction in high dimension", "",
             f"`python bench/diffusion_jit_toy.py --steps {config['steps']}` on {machine}. A 2-D spiral embedded in D dims by a fixed",
             "random column-orthogonal P; 5-layer ReLU MLP, 256 hidden, v-loss for every target; 1000 Euler-100 samples projected",
             "back with Pᵀ. Energy distance to fresh data in 2-D (lower is better) / mean distance off the data plane in D dims.", "",
             "| D | " + " | ".join(f"{t}: energy" for t in TARGETS) + " | " + " | ".join(f"{t}: off-plane" for t in TARGETS) + " |",
             "|---" * (1 + 2 * len(TARGETS)) + "|"]
    for dim in DIMS:
        energy = " | ".join(f"{cell[dim, t]['energy_distance']:.4f}" for t in TARGETS)
        off = " | ".join(f"{cell[dim, t]['off_subspace']:.3f}" for t in TARGETS)
        lines.append(f"| {dim} | {energy} | {off} |")
    lines += ["", "![samples](../figures/jit_toy.png)", ""]
    (ROOT / "docs/results/diffusion_jit_toy.md").write_text("\n".join(lines))


def write_figure(samples: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = spiral(1000, torch.Generator().manual_seed(2))
    fig, axes = plt.subplots(len(DIMS), len(TARGETS), figsize=(7.5, 10))
    for i, dim in enumerate(DIMS):
        for j, target in enumerate(TARGETS):
            ax = axes[i, j]
            ax.scatter(data[:, 0], data[:, 1], s=1, c="lightgray")
            ax.scatter(samples[dim, target][:, 0], samples[dim, target][:, 1], s=1, c="tab:blue")
            ax.set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5), xticks=[], yticks=[], title=f"D={dim}, {target}-pred")
    fig.tight_layout()
    fig.savefig(ROOT / "docs/figures/jit_toy.png", dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
