"""`latentcot diffusion toy|plan`: the JiT toy and Chain-of-Trajectories planning from the shell.

    latentcot diffusion toy --dim 512 --target x --out runs/toy-512-x
    latentcot diffusion plan runs/toy-512-x --nfe 8 --out dna.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from latentcot.errors import LatentCotError

if TYPE_CHECKING:  # torch is imported by the handlers, so `latentcot --help` stays fast
    import torch

    from latentcot.diffusion.planning import DiffusionDNA

# latentcot.diffusion.formulation.TARGETS (a test checks they agree)
TARGETS = ("eps", "v", "x")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("diffusion", help="JiT toy (x/eps/v prediction) and CoTj schedule planning")
    sub = parser.add_subparsers(dest="diffusion_command", metavar="SUBCOMMAND")

    toy = sub.add_parser("toy", help="train + sample + report the JiT spiral toy; saves a checkpoint folder")
    toy.add_argument("--dim", type=int, default=16, help="ambient dimension D of the embedded 2-D spiral")
    toy.add_argument("--target", choices=TARGETS, default="x", help="what the network predicts (loss is in v-space)")
    toy.add_argument("--steps", type=int, default=2000, help="training steps")
    toy.add_argument("--hidden", type=int, default=256, help="MLP width")
    toy.add_argument("--depth", type=int, default=5, help="number of Linear layers")
    toy.add_argument("--samples", type=int, default=1000, help="samples drawn for the report")
    toy.add_argument("--sample-steps", type=int, default=100, help="Euler steps when sampling")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--out", default="runs/diffusion-toy",
                     help="checkpoint folder to write; the training run (metrics, checkpoints) goes to OUT/train")
    toy.add_argument("--save-every", type=int, default=0, help="checkpoint the training run every N steps (and at the end)")
    again = toy.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue OUT/train exactly from its latest checkpoint")
    again.add_argument("--overwrite", action="store_true", help="replace a training run already in OUT/train")
    toy.set_defaults(handler=toy_command)

    plan = sub.add_parser("plan", help="measure a checkpoint's Diffusion DNA and plan an NFE-step schedule")
    plan.add_argument("checkpoint", help="folder written by `latentcot diffusion toy` (or save_denoiser)")
    plan.add_argument("--nfe", type=int, default=None, help="Euler steps to plan (default: adaptive, 99%% of the gain)")
    plan.add_argument("--cost", choices=("cotj", "local"), default="cotj", help="edge cost of the planner")
    plan.add_argument("--grid", type=int, default=101, help="points of the uniform planning grid")
    plan.add_argument("--samples", type=int, default=256, help="noise samples the DNA is averaged over")
    plan.add_argument("--seed", type=int, default=0)
    plan.add_argument("--out", default=None, help="write the DNA curve with the planned steps to this PNG")
    plan.set_defaults(handler=plan_command)


def toy_command(args: argparse.Namespace) -> int:
    from latentcot.diffusion.models import save_denoiser
    from latentcot.diffusion.toy import run_toy

    if args.dim < 2 or args.steps < 1 or args.save_every < 0:
        raise LatentCotError(f"--dim must be >= 2, --steps >= 1 and --save-every >= 0, got {args.dim}, {args.steps} "
                             f"and {args.save_every}")
    result, net, flow, P = run_toy(args.dim, args.target, steps=args.steps, hidden=args.hidden, depth=args.depth,
                                   n_samples=args.samples, sample_steps=args.sample_steps, seed=args.seed,
                                   run_dir=Path(args.out) / "train", resume=args.resume, overwrite=args.overwrite,
                                   save_every=args.save_every)
    import torch.distributed as dist

    if dist.is_initialized():  # under torchrun: the ranks trained one model; rank 0 writes it
        rank = dist.get_rank()
        dist.destroy_process_group()
        if rank:
            return 0
    report = {"dim": args.dim, "target": args.target, "energy_distance": result.energy,
              "off_subspace": result.off_subspace, "final_loss": result.final_loss}
    save_denoiser(args.out, net.cpu(), flow.config(), {"data": {"kind": "spiral", "dim": args.dim, "seed": args.seed},
                                                 "result": report}, tensors={"projection": P})
    print(f"D={args.dim} target={args.target}: energy distance {result.energy:.4f}, "
          f"off-subspace {result.off_subspace:.4f}, final v-loss {result.final_loss:.4f}")
    print(f"checkpoint: {args.out}")
    return 0


def _noise_and_cond(config: dict, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Noise shaped for the checkpoint's model, and for a conditional model one-hot conditions cycling
    over the classes with their ids (for per-condition DNA)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    m = config["model"]
    shape = (n, m["dim"]) if config["architecture"] == "mlp" else (n, m["in_channels"], m["image_size"], m["image_size"])
    x_T = torch.randn(shape, generator=g)
    if not m["cond_dim"]:
        return x_T, None, None
    groups = torch.arange(n) % m["cond_dim"]
    return x_T, torch.nn.functional.one_hot(groups, m["cond_dim"]).float(), groups


def plot_dna(dna: DiffusionDNA, timesteps: torch.Tensor, path: str | Path, title: str = "") -> None:
    """DNA curve (log scale; thin lines per condition) with the planned timesteps marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for c, curve in dna.per_condition.items():
        ax.plot(dna.grid[1:], curve[1:], lw=0.6, alpha=0.5, label=f"cond {c}" if c < 3 else None)
    ax.plot(dna.grid[1:], dna.dna[1:], "k", lw=2, label="average")
    for t in timesteps.tolist():
        ax.axvline(t, color="tab:red", lw=0.8, ls="--")
    ax.set(xlabel="t (1 = noise)", ylabel="DNA: local Euler error / Δt²", yscale="log", title=title)
    ax.invert_xaxis()
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plan_command(args: argparse.Namespace) -> int:
    if args.grid < 3 or (args.nfe is not None and not 1 <= args.nfe < args.grid):
        raise LatentCotError(f"--nfe must be in [1, {args.grid - 1}] and --grid >= 3, got {args.nfe} and {args.grid}")
    import torch

    from latentcot.diffusion.formulation import FlowMatching
    from latentcot.diffusion.models import load_denoiser
    from latentcot.diffusion.planning import diffusion_dna

    model, config, _ = load_denoiser(args.checkpoint)
    flow = FlowMatching(**config["flow"])
    x_T, cond, groups = _noise_and_cond(config, args.samples, args.seed)
    with torch.no_grad():
        dna = diffusion_dna(flow.velocity_fn(model), x_T, torch.linspace(1, 0, args.grid, dtype=torch.float64),
                            cond=cond, groups=groups)
    timesteps = dna.plan(args.nfe, cost=args.cost)
    print(f"planned {len(timesteps) - 1} steps ({args.cost} cost) on a {args.grid}-point grid")
    print("timesteps: " + " ".join(f"{t:.4f}" for t in timesteps.tolist()))
    print("dna: " + " ".join(f"{d:.3g}" for d in dna.dna[1:].tolist()))
    if args.out:
        plot_dna(dna, timesteps, args.out, f"{Path(args.checkpoint).name}: planned {len(timesteps) - 1} steps")
        print(f"plot: {args.out}")
    return 0
