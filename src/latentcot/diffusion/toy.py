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
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from latentcot.diffusion.formulation import FlowMatching, Target
from latentcot.diffusion.models import MLPDenoiser
from latentcot.diffusion.samplers import euler
from latentcot.diffusion.schedules import uniform


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


def train_denoiser(net: torch.nn.Module, flow: FlowMatching, sample_batch: Callable[[int], tuple[Tensor, Tensor | None]],
                   steps: int, batch: int = 256, lr: float = 1e-3, log: Callable[[int, float], None] | None = None) -> list[float]:
    """Adam on ``flow.loss`` with a cosine-decayed learning rate; returns the loss of every step.

    Args:
        sample_batch: ``batch -> (x, cond)`` fresh training data.
    """
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    net.train()
    for step in range(steps):
        x, cond = sample_batch(batch)
        loss = flow.loss(net, x, cond)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log is not None and (step % 500 == 0 or step == steps - 1):
            log(step, losses[-1])
    return losses


@dataclass
class ToyResult:
    """One (D, target) cell of the JiT toy table."""

    dim: int
    target: str
    energy: float  # energy distance of projected samples to fresh data, 2-D
    off_subspace: float  # mean distance of samples from the data plane, D-dim
    final_loss: float  # mean v-loss of the last 100 training steps
    samples_2d: Tensor  # (n, 2) projected samples


def run_toy(dim: int, target: Target, steps: int = 2000, hidden: int = 256, depth: int = 5, n_samples: int = 1000,
            sample_steps: int = 100, seed: int = 0, lr: float = 1e-3) -> tuple[ToyResult, MLPDenoiser, FlowMatching, Tensor]:
    """Train one MLP denoiser on the spiral embedded in ``dim`` dimensions and evaluate its samples.

    Returns:
        (result, trained net, flow, projection P).
    """
    torch.manual_seed(seed)
    P = projection(dim, seed)
    flow = FlowMatching(target=target, loss_space="v")
    net = MLPDenoiser(dim, hidden=hidden, depth=depth)
    losses = train_denoiser(net, flow, lambda b: (spiral(b) @ P.T, None), steps, lr=lr)
    net.eval()
    with torch.no_grad():
        x_T = torch.randn(n_samples, dim, generator=torch.Generator().manual_seed(seed + 1))
        x = euler(flow.velocity_fn(net), x_T, uniform(sample_steps)).x
    data = spiral(n_samples, torch.Generator().manual_seed(seed + 2))
    result = ToyResult(dim, target, energy_distance(x @ P, data), off_subspace_distance(x, P),
                       sum(losses[-100:]) / len(losses[-100:]), x @ P)
    return result, net, flow, P
