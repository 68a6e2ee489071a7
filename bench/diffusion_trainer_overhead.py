"""The JiT toy's training step through the one trainer against its former own loop, side by side.

    python bench/diffusion_trainer_overhead.py                          # D = 16 and 512, 500 steps, 3 rounds
    python bench/diffusion_trainer_overhead.py --steps 50 --rounds 1   # a quick check

Issue 15 asked that diffusion training gain checkpoints, resume and logs "with <= 5% overhead per
step against today's loops". The former loop (``diffusion.toy.train_denoiser`` before it moved
onto :class:`latentcot.train.trainer.Trainer`, commit a366b10: Adam, ``CosineAnnealingLR``, data
and noise from the global RNG) is kept below only as the timing reference. Both train the toy's
MLP (256 wide, 5 layers, batch 256, lr 1e-3) from the same initial weights for ``--steps`` steps,
alternating ``--rounds`` times; each side keeps its best round. The trainer runs as ``latentcot
diffusion toy`` does (metrics and TensorBoard every 100 steps, a checkpoint at the end). The two
draw different random batches, so their losses agree only in distribution (the last 100 steps'
mean is shown). Writes bench/results/diffusion_trainer_overhead.json and
docs/results/diffusion_trainer_overhead.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_speed import machine_name  # noqa: E402

from latentcot.diffusion.formulation import FlowMatching  # noqa: E402
from latentcot.diffusion.models import MLPDenoiser  # noqa: E402
from latentcot.diffusion.toy import projection, spiral  # noqa: E402
from latentcot.diffusion.train import train_denoiser  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def former_loop(net: torch.nn.Module, flow: FlowMatching, P: torch.Tensor, steps: int, batch: int = 256,
                lr: float = 1e-3) -> list[float]:
    """The former ``train_denoiser`` (commit a366b10) on the spiral, without its log callback."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    net.train()
    for _ in range(steps):
        loss = flow.loss(net, spiral(batch) @ P.T, None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dims", default="16,512")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench/results/diffusion_trainer_overhead.json"))
    ap.add_argument("--doc", default=str(ROOT / "docs/results/diffusion_trainer_overhead.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    for dim in map(int, args.dims.split(",")):
        torch.manual_seed(0)
        P, flow = projection(dim, 0), FlowMatching(target="x", loss_space="v")
        start = MLPDenoiser(dim).state_dict()
        times: dict[str, list[float]] = {"former loop": [], "trainer": []}
        final: dict[str, float] = {}
        for _ in range(args.rounds):
            for side in times:
                net = MLPDenoiser(dim)
                net.load_state_dict(start)
                with tempfile.TemporaryDirectory() as tmp:
                    t0 = time.perf_counter()
                    if side == "former loop":
                        losses = former_loop(net, flow, P, args.steps)
                        final[side] = sum(losses[-100:]) / len(losses[-100:])
                    else:

                        def sample(n: int, g: torch.Generator, P: torch.Tensor = P) -> tuple[torch.Tensor, None]:
                            return spiral(n, g) @ P.T, None

                        result = train_denoiser(net, flow, sample, args.steps, run_dir=Path(tmp) / "run")
                        final[side] = float(result["loss"])
                    times[side].append(time.perf_counter() - t0)
        best = {side: min(ts) for side, ts in times.items()}
        rows.append({"dim": dim, "seconds": times, "ms_per_step": {s: 1000 * t / args.steps for s, t in best.items()},
                     "trainer_over_former": best["trainer"] / best["former loop"], "final_loss": final})
        print(json.dumps(rows[-1]), flush=True)
    machine = machine_name(torch.device("cpu"), args.threads)
    result = {"steps": args.steps, "rounds": args.rounds, "threads": args.threads, "machine": machine, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# JiT toy training step: the one trainer against the former own loop",
        "",
        f"Command: `python bench/diffusion_trainer_overhead.py --dims {args.dims} --steps {args.steps} "
        f"--rounds {args.rounds} --threads {args.threads}` (MLP 256 wide, 5 layers, batch 256; best of "
        f"{args.rounds} alternating rounds; the trainer with metrics, TensorBoard and its final checkpoint).",
        f"Machine: {machine}.",
        "",
        "| D | former loop, ms per step | trainer, ms per step | trainer / former | mean loss, last 100 steps (former / trainer) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        ms, fl = r["ms_per_step"], r["final_loss"]
        lines.append(f"| {r['dim']} | {ms['former loop']:.2f} | {ms['trainer']:.2f} | {r['trainer_over_former']:.3f} "
                     f"| {fl['former loop']:.4f} / {fl['trainer']:.4f} |")
    lines.append("")
    Path(args.doc).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
