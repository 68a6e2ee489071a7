"""ODE samplers over any decreasing list of timesteps; they know nothing about the model.

A sampler integrates ``dx_t/dt = v(x_t, t)`` from ``t = timesteps[0]`` (normally 1, pure noise)
down to ``timesteps[-1]`` (normally 0) given a velocity function ``v_fn(x_t, t, cond) -> v``
(e.g. :meth:`FlowMatching.velocity_fn`). Classifier-free guidance (Ho & Salimans 2022) mixes a
conditional and a null-conditional velocity, ``v = v_u + w·(v_c - v_u)``, optionally only for
t inside an interval (Kynkäänniemi et al. 2024, "Applying guidance in a limited interval").
Every call to ``v_fn`` is one network function evaluation (NFE); guidance costs two.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

VelocityFn = Callable[[Tensor, float, Tensor | None], Tensor]


@dataclass
class Sample:
    """A sampler's result: final ``x`` (at ``timesteps[-1]``), the NFE spent, and optionally the
    states at every timestep (steps + 1 entries)."""

    x: Tensor
    nfe: int
    trajectory: list[Tensor] = field(default_factory=list)


class _Counted:
    """The velocity (guided or not) as one callable that counts network evaluations."""

    def __init__(self, v_fn: VelocityFn, cond: Tensor | None, uncond: Tensor | None, guidance: float,
                 interval: tuple[float, float]) -> None:
        self.v_fn, self.cond, self.uncond, self.guidance, self.interval = v_fn, cond, uncond, guidance, interval
        self.nfe = 0

    def __call__(self, x_t: Tensor, t: float) -> Tensor:
        v_c = self.v_fn(x_t, t, self.cond)
        self.nfe += 1
        lo, hi = self.interval
        if self.guidance == 1.0 or not lo <= t <= hi:
            return v_c
        v_u = self.v_fn(x_t, t, self.uncond)
        self.nfe += 1
        return v_u + self.guidance * (v_c - v_u)  # CFG on the velocity


def _check(timesteps: Sequence[float] | Tensor) -> list[float]:
    ts = [float(t) for t in timesteps]
    if len(ts) < 2 or any(b >= a for a, b in zip(ts[:-1], ts[1:])):
        raise ValueError(f"timesteps must be a strictly decreasing list of at least 2 values, got {ts}")
    return ts


def euler(v_fn: VelocityFn, x_T: Tensor, timesteps: Sequence[float] | Tensor, cond: Tensor | None = None,
          uncond: Tensor | None = None, guidance: float = 1.0, guidance_interval: tuple[float, float] = (0.0, 1.0),
          keep_trajectory: bool = False) -> Sample:
    """Euler's method, ``x_{t_{i+1}} = x_{t_i} + (t_{i+1} - t_i)·v(x_{t_i}, t_i)``: one NFE per step.

    Args:
        v_fn: ``(x_t, t, cond) -> v``.
        x_T: the start state at ``timesteps[0]`` (noise when it is 1), (batch, ...).
        timesteps: strictly decreasing times, e.g. from :mod:`latentcot.diffusion.schedules`.
        cond, uncond: condition and null condition handed to ``v_fn``.
        guidance: CFG weight w (1: no guidance, no extra NFE).
        guidance_interval: guide only for t in [lo, hi].
        keep_trajectory: also return the state at every timestep.
    Returns:
        :class:`Sample` with the final state and the NFE.
    """
    ts = _check(timesteps)
    v = _Counted(v_fn, cond, uncond, guidance, guidance_interval)
    x, traj = x_T, [x_T] if keep_trajectory else []
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        x = x + (t_next - t_cur) * v(x, t_cur)
        if keep_trajectory:
            traj.append(x)
    return Sample(x, v.nfe, traj)


def heun(v_fn: VelocityFn, x_T: Tensor, timesteps: Sequence[float] | Tensor, cond: Tensor | None = None,
         uncond: Tensor | None = None, guidance: float = 1.0, guidance_interval: tuple[float, float] = (0.0, 1.0),
         keep_trajectory: bool = False) -> Sample:
    """Heun's second-order method (EDM Algorithm 1): an Euler predictor, then the trapezoid rule
    with the velocity at the predicted point. The last step, when it ends at t = 0, stays Euler
    (as in EDM), so k steps to 0 cost 2k - 1 NFE. Arguments as :func:`euler`."""
    ts = _check(timesteps)
    v = _Counted(v_fn, cond, uncond, guidance, guidance_interval)
    x, traj = x_T, [x_T] if keep_trajectory else []
    for t_cur, t_next in zip(ts[:-1], ts[1:]):
        h = t_next - t_cur
        d_cur = v(x, t_cur)
        x_next = x + h * d_cur
        if t_next > 0:
            x_next = x + h * 0.5 * (d_cur + v(x_next, t_next))  # trapezoid correction
        x = x_next
        if keep_trajectory:
            traj.append(x)
    return Sample(x, v.nfe, traj)


SAMPLERS: dict[str, Callable[..., Sample]] = {"euler": euler, "heun": heun}


@torch.no_grad()
def reference_solution(v_fn: VelocityFn, x_T: Tensor, steps: int = 500, cond: Tensor | None = None,
                       t_start: float = 1.0) -> Tensor:
    """A fine reference ODE solution from ``t_start`` to 0: Heun with ``steps`` uniform steps."""
    ts = torch.linspace(t_start, 0.0, steps + 1, dtype=torch.float64)
    return heun(v_fn, x_T, ts, cond=cond).x
