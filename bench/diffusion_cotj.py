"""Chain-of-Trajectories: planned vs fixed schedules at a fixed NFE (Euler, one NFE per step).

    python bench/diffusion_cotj.py [--toy-steps 2000 --digits-steps 3000]

For the JiT toy (D = 8, x-prediction MLP) and class-conditional sklearn digits (8x8, small DiT):
MSE of the final samples against a 500-step Heun reference from the same noise, and the energy
distance of the samples to the data, for uniform / karras / cosine / shifted schedules and the
planned ones (CoTj cost, our local-error cost, and the local cost planned per class). The DNA is
measured on separate noise (256 draws) from the evaluation noise. Writes
bench/results/diffusion_cotj.json and docs/results/diffusion_cotj.md.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from sklearn.datasets import load_digits

from latentcot.diffusion.formulation import FlowMatching
from latentcot.diffusion.models import DIT_MODELS, MLPDenoiser
from latentcot.diffusion.planning import diffusion_dna
from latentcot.diffusion.samplers import euler, reference_solution
from latentcot.diffusion.schedules import SCHEDULES
from latentcot.diffusion.toy import energy_distance, projection, spiral
from latentcot.diffusion.train import train_denoiser

ROOT = Path(__file__).resolve().parents[1]
NFES = (4, 6, 8, 10, 16)
FIXED = ("uniform", "karras", "cosine", "shifted")


@torch.no_grad()
def evaluate(name, v_fn, x_T, cond, groups, dna_noise, dna_cond, dna_groups, data, to_eval):
    """All schedules at all NFEs on one trained model; returns rows."""
    start = time.time()
    ref = reference_solution(v_fn, x_T, 500, cond=cond)
    dna = diffusion_dna(v_fn, dna_noise, cond=dna_cond, groups=dna_groups)
    print(f"{name}: reference + DNA in {time.time() - start:.0f}s", flush=True)
    rows = []
    for nfe in NFES:
        plans = {s: SCHEDULES[s](nfe) for s in FIXED}
        plans["planned-cotj"] = dna.plan(nfe, cost="cotj")
        plans["planned-local"] = dna.plan(nfe, cost="local")
        for sched, ts in plans.items():
            x = euler(v_fn, x_T, ts, cond=cond).x
            rows.append(row(name, nfe, sched, x, ref, data, to_eval, ts))
        if groups is not None:  # content adaptive: one plan per class, each class sampled with its own
            x = torch.empty_like(x_T)
            for c in groups.unique().tolist():
                m = groups == c
                x[m] = euler(v_fn, x_T[m], dna.plan(nfe, cost="local", condition=c), cond=cond[m]).x
            rows.append(row(name, nfe, "planned-local-per-class", x, ref, data, to_eval, None))
        print(f"{name} NFE {nfe}: " + ", ".join(f"{r['schedule']} {r['mse']:.2e}" for r in rows if r["nfe"] == nfe), flush=True)
    return rows, {"grid": dna.grid.tolist(), "dna": dna.dna.tolist(),
                  "per_condition": {str(c): v.tolist() for c, v in dna.per_condition.items()}}


def row(name, nfe, sched, x, ref, data, to_eval, ts):
    return {"task": name, "nfe": nfe, "schedule": sched, "mse": float((x - ref).pow(2).mean()),
            "energy": energy_distance(to_eval(x).cpu(), data.cpu()), "timesteps": None if ts is None else [round(t, 4) for t in ts.tolist()]}


def toy_task(steps, dev):
    torch.manual_seed(0)
    P = projection(8, 0).to(dev)
    net, flow = MLPDenoiser(8).to(dev), FlowMatching(target="x")
    train_denoiser(net, flow, lambda n, g: (spiral(n, g).to(dev) @ P.T, None), steps)
    net.eval()
    x_T = torch.randn(1000, 8, generator=torch.Generator().manual_seed(11)).to(dev)
    dna_noise = torch.randn(256, 8, generator=torch.Generator().manual_seed(12)).to(dev)
    data = spiral(1000, torch.Generator().manual_seed(13)).to(dev)
    return evaluate("toy D=8 (x-pred MLP)", flow.velocity_fn(net), x_T, None, None, dna_noise, None, None, data, lambda x: x @ P)


def digits_task(steps, dev):
    torch.manual_seed(0)
    digits = load_digits()
    images = (torch.tensor(digits.images, dtype=torch.float32)[:, None] / 8.0 - 1.0).to(dev)  # (1797, 1, 8, 8) in [-1, 1]
    labels = torch.tensor(digits.target).to(dev)
    onehot = torch.nn.functional.one_hot(labels, 10).float()
    net = DIT_MODELS["dit-small"](image_size=8, patch_size=2, in_channels=1, cond_dim=10).to(dev)
    flow = FlowMatching(target="x")

    def batch(n, generator):
        idx = torch.randint(0, len(images), (n,), generator=generator).to(dev)
        return images[idx], onehot[idx]

    train_denoiser(net, flow, batch, steps, batch=128, lr=5e-4, size=len(images))
    net.eval()
    groups = torch.arange(500) % 10
    dna_groups = torch.arange(260) % 10
    x_T = torch.randn(500, 1, 8, 8, generator=torch.Generator().manual_seed(11)).to(dev)
    dna_noise = torch.randn(260, 1, 8, 8, generator=torch.Generator().manual_seed(12)).to(dev)
    eye = torch.eye(10, device=dev)
    with torch.no_grad():
        return evaluate("digits 8x8 (x-pred DiT-small, class-cond)", flow.velocity_fn(net), x_T, eye[groups], groups.to(dev),
                        dna_noise, eye[dna_groups], dna_groups.to(dev), images.flatten(1), lambda x: x.flatten(1))


def write_table(rows, machine, config):
    lines = ["## Chain-of-Trajectories: planned vs fixed schedules", "",
             f"`python bench/diffusion_cotj.py --toy-steps {config['toy_steps']} --digits-steps {config['digits_steps']}` on {machine}.",
             "Euler sampler (NFE = steps). MSE: final samples vs a 500-step Heun reference from the same noise; energy: energy",
             "distance of samples to the data. The DNA (101-point grid) is measured on noise disjoint from the evaluation noise.",
             "`ratio` = planned-local MSE / best fixed-schedule MSE at the same NFE (goal ≤ 0.5).", ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        sub = [r for r in rows if r["task"] == task]
        scheds = list(dict.fromkeys(r["schedule"] for r in sub))
        lines += [f"### {task}", "", "| NFE | " + " | ".join(scheds) + " | ratio |", "|---" * (len(scheds) + 2) + "|"]
        for nfe in NFES:
            cell = {r["schedule"]: r for r in sub if r["nfe"] == nfe}
            best_fixed = min(cell[s]["mse"] for s in FIXED)
            vals = " | ".join(f"{cell[s]['mse']:.2e} ({cell[s]['energy']:.3f})" for s in scheds)
            lines.append(f"| {nfe} | {vals} | {cell['planned-local']['mse'] / best_fixed:.2f} |")
        lines += ["", "Cells: MSE (energy distance).", ""]
    (ROOT / "docs/results/diffusion_cotj.md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--toy-steps", type=int, default=2000)
    parser.add_argument("--digits-steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    machine = f"{platform.machine()} CPU, {args.threads} thread(s), torch {torch.__version__}"
    if args.device.startswith("cuda"):
        machine = f"{torch.cuda.get_device_name()} (torch {torch.__version__})"
    toy_rows, toy_dna = toy_task(args.toy_steps, args.device)
    digit_rows, digit_dna = digits_task(args.digits_steps, args.device)
    config = {"toy_steps": args.toy_steps, "digits_steps": args.digits_steps, "nfe": NFES, "reference": "heun-500"}
    out = {"machine": machine, "config": config, "rows": toy_rows + digit_rows, "dna": {"toy": toy_dna, "digits": digit_dna}}
    (ROOT / "bench/results/diffusion_cotj.json").write_text(json.dumps(out, indent=1) + "\n")
    write_table(toy_rows + digit_rows, machine, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
