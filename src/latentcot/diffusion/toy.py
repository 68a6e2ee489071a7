"""JiT's toy experiment: a 2-D spiral embedded in D dimensions, where only x-prediction survives.

"Back to Basics: Let Denoising Generative Models Denoise" (Li & He 2025), §3 toy: data live on a
2-D manifold inside R^D (here: a spiral mapped by a fixed random column-orthogonal P ∈ R^{D×2}),
a 5-layer ReLU MLP with 256 hidden units is trained with the v-loss for each prediction target,
samples are projected back with Pᵀ. The network has to output something of dimension D; x lives
on the 2-D plane (easy to represent), while eps and v are full-dimensional noise the network
cannot fit when D is large relative to its width, so ε/v-prediction degrade as D grows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from latentcot.diffusion.formulation import FlowMatching, Target
from latentcot.diffusion.models import MLPDenoiser
from latentcot.diffusion.samplers import euler
from latentcot.diffusion.schedules import uniform
from latentcot.diffusion.train import train_denoiser


def spiral(n: int, generator: torch.Generator | None = None, noise: float = 0.02) -> Tensor:
    """(n, 2) points on a two-turn spiral, scaled to roughly unit standard deviation."""
    u = torch.rand(n, generator=generator).sqrt()  # sqrt: uniform density along the arc length
    theta = 4 * math.pi * u
    pts = torch.stack([u * torch.cos(theta), u * torch.sin(theta)], dim=1) / 0.55
    return pts + noise * torch.randn(n, 2, generator=generator)


def projection(dim: int, seed: int = 0) -> Tensor:
    """A fixed random column-orthogonal matrix P (dim, 2): PᵀP = I."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, 2, generator=g))
    return q


def energy_distance(a: Tensor, b: Tensor) -> float:
    """Energy distance 2E‖A−B‖ − E‖A−A'‖ − E‖B−B'‖ (Székely & Rizzo): 0 iff the laws agree."""
    return float(2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean() - torch.cdist(b, b).mean())


def off_subspace_distance(x: Tensor, P: Tensor) -> float:
    """Mean Euclidean distance of D-dim points from the data plane span(P)."""
    return float((x - (x @ P) @ P.T).norm(dim=1).mean())


@dataclass
class ToyResult:
    """One (D, target) cell of the JiT toy table."""

    dim: int
    target: str
    energy: float  # energy distance of projected samples to fresh data, 2-D
    off_subspace: float  # mean distance of samples from the data plane, D-dim
    final_loss: float  # mean v-loss of the last 100 training steps (the last logged window)
    samples_2d: Tensor  # (n, 2) projected samples


def run_toy(dim: int, target: Target, steps: int = 2000, hidden: int = 256, depth: int = 5, n_samples: int = 1000,
            sample_steps: int = 100, seed: int = 0, lr: float = 1e-3, run_dir: str | Path | None = None,
            resume: bool = False, overwrite: bool = False,
            save_every: int = 0) -> tuple[ToyResult, MLPDenoiser, FlowMatching, Tensor]:
    """Train one MLP denoiser on the spiral embedded in ``dim`` dimensions and evaluate its samples.

    Training goes through the trainer (:func:`latentcot.diffusion.train.train_denoiser`):
    ``run_dir`` keeps its metrics and checkpoints (every ``save_every`` steps and at the end) and
    ``resume`` continues it exactly; None trains in a temporary folder.

    Returns:
        (result, trained net, flow, projection P).
    """
    torch.manual_seed(seed)
    P = projection(dim, seed)
    flow = FlowMatching(target=target, loss_space="v")
    net = MLPDenoiser(dim, hidden=hidden, depth=depth)
    config = {"data": {"kind": "spiral", "dim": dim, "seed": seed}, "model": net.config, "flow": flow.config(),
              "train": {"steps": steps, "batch": 256, "lr": lr, "seed": seed}}
    trained = train_denoiser(net, flow, lambda n, g: (spiral(n, g) @ P.T, None), steps, lr=lr, seed=seed,
                             run_dir=run_dir, resume=resume, overwrite=overwrite, save_every=save_every,
                             run_config=config)
    net.eval()
    with torch.no_grad():  # the trainer put the net on its device (a GPU when there is one)
        x_T = torch.randn(n_samples, dim, generator=torch.Generator().manual_seed(seed + 1))
        device = next(net.parameters()).device
        x = euler(flow.velocity_fn(net), x_T.to(device), uniform(sample_steps)).x.cpu()
    data = spiral(n_samples, torch.Generator().manual_seed(seed + 2))
    result = ToyResult(dim, target, energy_distance(x @ P, data), off_subspace_distance(x, P),
                       float(trained["loss"]), x @ P)
    return result, net, flow, P
