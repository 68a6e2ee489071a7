"""Timestep schedules: each returns a strictly decreasing float64 tensor of ``steps + 1`` times from
1 (pure noise) to 0, to hand to any sampler. The Chain-of-Trajectories planner
(:func:`latentcot.diffusion.planning.plan_schedule`) returns the same kind of tensor, so it is
just another schedule.

Other parameterisations are mapped into this time: EDM's noise level sigma satisfies
``x_t / (1 - t) = x + sigma·eps``, i.e. ``sigma = t / (1 - t)`` and ``t = sigma / (1 + sigma)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def uniform(steps: int) -> Tensor:
    """Equally spaced times 1, 1 - 1/k, ..., 0."""
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)


def sigma_to_t(sigma: Tensor) -> Tensor:
    """EDM noise level -> flow time: ``t = sigma / (1 + sigma)``."""
    return sigma / (1 + sigma)


def t_to_sigma(t: Tensor) -> Tensor:
    """Flow time -> EDM noise level: ``sigma = t / (1 - t)``."""
    return t / (1 - t)


def karras(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> Tensor:
    """EDM / Karras et al. 2022 (eq. 5): sigma_i = (sigma_max^(1/rho) + i/(k-1)·(sigma_min^(1/rho) -
    sigma_max^(1/rho)))^rho for i < k, mapped to t. The first time is set to exactly 1 (sigma_max
    stands in for "pure noise", t = 0.988 at sigma 80) and the last step jumps to t = 0, as EDM's
    final step to sigma = 0 does."""
    if steps == 1:
        return torch.tensor([1.0, 0.0], dtype=torch.float64)
    i = torch.arange(steps, dtype=torch.float64) / (steps - 1)
    sigma = (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    t = sigma_to_t(sigma)
    t[0] = 1.0
    return torch.cat([t, t.new_zeros(1)])


def cosine(steps: int) -> Tensor:
    """The cosine schedule (Nichol & Dhariwal 2021): alpha = cos(pi·s/2), sigma = sin(pi·s/2) with s
    uniform from 1 to 0, mapped to flow time by t / (1 - t) = sigma / alpha."""
    s = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64) * (math.pi / 2)
    t = torch.sin(s) / (torch.sin(s) + torch.cos(s))
    t[0], t[-1] = 1.0, 0.0  # exact endpoints despite rounding
    return t


def shifted(steps: int, shift: float = 3.0) -> Tensor:
    """SD3's resolution shift of a uniform schedule, t' = shift·t / (1 + (shift - 1)·t): more steps
    near the noise end for shift > 1."""
    t = uniform(steps)
    return shift * t / (1 + (shift - 1) * t)


# name -> steps -> decreasing timesteps
SCHEDULES: dict[str, Callable[[int], Tensor]] = {
    "uniform": uniform,
    "karras": karras,
    "cosine": cosine,
    "shifted": shifted,
}
