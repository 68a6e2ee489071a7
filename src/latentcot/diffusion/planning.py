"""Chain-of-Trajectories (CoTj): measure a trained model's "Diffusion DNA", then plan where to spend
a budget of k sampling steps as a shortest path.

**Diffusion DNA (our definition).** Integrate the model's probability-flow ODE finely (Heun,
``substeps`` per grid interval; 500 steps for the default 100-interval grid) from noise ``x_T``
and keep the reference states ``x_i`` and velocities ``v_i = v(x_i, t_i)`` at every grid time.
The *local error* of one Euler jump from grid time t_i to t_j (t_j < t_i) is

    e_ij = x_i + (t_j - t_i)·v_i - x_j          (what an Euler sampler adds on that jump)

and ``local_error[i, j] = E‖e_ij‖² / dim`` (mean over samples and coordinates). The DNA at t_j
is the error density of the grid-step arriving there, ``dna[j] = local_error[j-1, j] / Δt_j²``,
which for small steps is ``E‖dv/dt‖² / 4`` — how curved the trajectories are at t_j, the
quantity that decides whether a large step there is cheap. We chose it because it is measured
directly on what a sampler does (the model's own velocity field along its own trajectories),
needs one reference solve, and is content adaptive: computed per condition (e.g. class) as well
as on average.

**Planner.** A DAG over the grid (edges only from larger to smaller t); a path from t = 1 to
t = 0 with k edges is a k-step schedule. Two edge costs:

* ``"cotj"`` — the released CoTj cost ``DNA[j]·((t_j - t_i)/t_j)²`` (t_j clipped at the smallest
  non-zero grid time so the final jump to 0 stays finite);
* ``"local"`` — our variant, ``sqrt(local_error[i, j])``: the measured RMS local error of that very
  jump. Summed along a path it bounds the global error of a stable integrator up to the
  error-propagation factor (triangle inequality), and it needs no assumption about how the
  error grows with the step length, which the CoTj cost fixes at quadratic.

:func:`plan_path` finds the cheapest path with exactly k edges by dynamic programming over
(steps, node), vectorised in torch; :func:`adaptive_steps` picks the smallest k that captures 99%
of the achievable cost reduction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor

from latentcot.diffusion.samplers import VelocityFn, heun


@dataclass
class DiffusionDNA:
    """A measured difficulty profile on a decreasing ``grid`` (G,) from 1 to 0.

    Attributes:
        grid: (G,) float64 times.
        dna: (G,) average difficulty (``dna[0]`` copies ``dna[1]``; nothing jumps *to* t = 1).
        local_error: (G, G) mean squared local error of an Euler jump i -> j; +inf where j <= i.
        per_condition: condition id -> (G,) DNA of the samples with that condition.
        per_condition_error: condition id -> (G, G) local error of those samples.
    """

    grid: Tensor
    dna: Tensor
    local_error: Tensor
    per_condition: dict[int, Tensor] = field(default_factory=dict)
    per_condition_error: dict[int, Tensor] = field(default_factory=dict)

    def plan(self, k: int | None, cost: Literal["cotj", "local"] = "cotj", condition: int | None = None) -> Tensor:
        """The planned k-step schedule (adaptive k when None) for the average or one condition."""
        dna = self.dna if condition is None else self.per_condition[condition]
        err = self.local_error if condition is None else self.per_condition_error[condition]
        matrix = cotj_cost(dna, self.grid) if cost == "cotj" else err.sqrt()
        return plan_schedule(dna, self.grid, k, cost=matrix)


@torch.no_grad()
def reference_states(v_fn: VelocityFn, x_T: Tensor, grid: Tensor, cond: Tensor | None = None,
                     substeps: int = 5) -> tuple[Tensor, Tensor]:
    """States and velocities of a fine Heun solve at every grid time: two (G, batch, ...) tensors."""
    xs, vs, x = [x_T], [], x_T
    for t_cur, t_next in zip(grid[:-1].tolist(), grid[1:].tolist()):
        vs.append(v_fn(x, t_cur, cond))
        fine = torch.linspace(t_cur, t_next, substeps + 1, dtype=torch.float64)
        x = heun(v_fn, x, fine, cond=cond).x
        xs.append(x)
    vs.append(v_fn(x, float(grid[-1]), cond))
    return torch.stack(xs), torch.stack(vs)


def local_errors(xs: Tensor, vs: Tensor, grid: Tensor) -> Tensor:
    """Per-sample squared local Euler error of every jump: (G, G, batch), +inf where j <= i."""
    g, n = xs.shape[:2]
    xs, vs, grid = xs.reshape(g, n, -1).double(), vs.reshape(g, n, -1).double(), grid.to(xs.device)
    out = torch.full((g, g, n), float("inf"), dtype=torch.float64, device=xs.device)
    for i in range(g - 1):
        h = (grid[i + 1:] - grid[i])[:, None, None]  # (G-i-1, 1, 1), negative
        e = xs[i][None] + h * vs[i][None] - xs[i + 1:]  # e_ij for all j > i
        out[i, i + 1:] = e.pow(2).mean(-1)
    return out.cpu()


def _dna_from_error(err: Tensor, grid: Tensor) -> Tensor:
    idx = torch.arange(1, len(grid))
    dna = err[idx - 1, idx] / (grid[idx] - grid[idx - 1]) ** 2
    return torch.cat([dna[:1], dna])


def diffusion_dna(v_fn: VelocityFn, x_T: Tensor, grid: Tensor | None = None, cond: Tensor | None = None,
                  groups: Tensor | None = None, substeps: int = 5) -> DiffusionDNA:
    """Measure the Diffusion DNA of a model (see the module docstring for the definition).

    Args:
        v_fn: ``(x_t, t, cond) -> v`` of the trained model.
        x_T: (batch, ...) noise to start the reference solves from.
        grid: decreasing times from 1 to 0; default 101 uniform points (100 intervals).
        cond: (batch, ...) condition handed to ``v_fn``.
        groups: (batch,) integer condition id of each sample, for per-condition DNA.
        substeps: Heun steps per grid interval in the reference solve.
    Returns:
        :class:`DiffusionDNA`.
    """
    grid = torch.linspace(1.0, 0.0, 101, dtype=torch.float64) if grid is None else grid.double()
    xs, vs = reference_states(v_fn, x_T, grid, cond, substeps)
    per_sample = local_errors(xs, vs, grid)  # (G, G, batch)
    err = per_sample.mean(-1)
    out = DiffusionDNA(grid, _dna_from_error(err, grid), err)
    if groups is not None:
        for c in groups.unique().tolist():
            e = per_sample[:, :, (groups == c).cpu()].mean(-1)
            out.per_condition[c], out.per_condition_error[c] = _dna_from_error(e, grid), e
    return out


def cotj_cost(dna: Tensor, grid: Tensor) -> Tensor:
    """The released CoTj edge cost ``DNA[j]·((t_j - t_i)/t_j)²`` as a (G, G) matrix, +inf where j <= i."""
    t_min = grid[grid > 0].min()
    ti, tj = grid[:, None], grid[None, :].clamp_min(t_min)
    cost = dna[None, :] * ((grid[None, :] - ti) / tj) ** 2
    return torch.where(torch.arange(len(grid))[None, :] > torch.arange(len(grid))[:, None], cost, float("inf"))


def plan_path(cost: Tensor, k: int) -> tuple[list[int], float]:
    """Cheapest path from node 0 to node G-1 with exactly k edges, by dynamic programming.

    ``best[s, j]`` is the cheapest s-edge path from 0 to j; ``best[s] = min_i best[s-1, i] + cost[i, j]``.
    Returns:
        (node indices including both ends, total cost).
    """
    g = cost.shape[0]
    if not 1 <= k <= g - 1:
        raise ValueError(f"k must be in [1, {g - 1}] for a grid of {g} points, got {k}")
    best = torch.full((g,), float("inf"), dtype=torch.float64)
    best[0] = 0.0
    back = torch.zeros((k, g), dtype=torch.long)
    for s in range(k):
        best, back[s] = (best[:, None] + cost.double()).min(dim=0)  # (G,) over destinations
    path = [g - 1]
    for s in range(k - 1, -1, -1):
        path.append(int(back[s, path[-1]]))
    return path[::-1], float(best[g - 1])


def path_costs(cost: Tensor, k_max: int) -> Tensor:
    """Cheapest total cost for every k = 1..k_max (one DP pass): (k_max,)."""
    g = cost.shape[0]
    best = torch.full((g,), float("inf"), dtype=torch.float64)
    best[0], totals = 0.0, []
    for _ in range(k_max):
        best = (best[:, None] + cost.double()).min(dim=0).values
        totals.append(best[g - 1])
    return torch.stack(totals)


def adaptive_steps(cost: Tensor, k_max: int | None = None, fraction: float = 0.99) -> int:
    """The smallest k whose cheapest path captures ``fraction`` of the achievable gain,
    gain(k) = cost(1) - cost(k), achievable = cost(1) - min_{k <= k_max} cost(k)."""
    totals = path_costs(cost, k_max or cost.shape[0] - 1)
    gain = totals[0] - totals
    return int(torch.nonzero(gain >= fraction * gain.max())[0]) + 1


def plan_schedule(dna: Tensor, grid: Tensor, k: int | None, cost: Tensor | None = None) -> Tensor:
    """A k-step schedule (decreasing times from 1 to 0) planned on the grid.

    Args:
        dna: (G,) Diffusion DNA on ``grid``.
        grid: (G,) decreasing times from 1 to 0.
        k: number of steps; None picks it with :func:`adaptive_steps`.
        cost: (G, G) edge costs overriding the CoTj cost built from ``dna`` (e.g. the "local" one).
    Returns:
        (k + 1,) float64 timesteps, usable by any sampler.
    """
    matrix = cotj_cost(dna, grid) if cost is None else cost
    k = adaptive_steps(matrix) if k is None else k
    path, _ = plan_path(matrix, k)
    return grid.double()[path]
