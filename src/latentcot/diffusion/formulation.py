"""The one flow-matching formulation: interpolation, the three prediction targets, the loss.

Time convention (fixed for the whole project, see DESIGN.md): ``t`` in [0, 1], ``t = 1`` is pure
noise, and

    x_t = (1 - t) · x + t · eps,        v = dx_t/dt = eps - x.

A network may predict ``x`` (clean data), ``eps`` (noise) or ``v`` (velocity); given ``x_t`` and
``t`` any one determines the other two (:func:`convert`). JiT ("Back to Basics: Let Denoising
Generative Models Denoise", Li & He 2025) predicts ``x`` and
takes the loss in ``v``-space, ``v = (x_t - x) / t`` with ``t`` clipped away from 0; this is
``FlowMatching(target="x", loss_space="v")``. Nothing else in the project writes these formulas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

Target = Literal["eps", "v", "x"]
TARGETS: tuple[Target, ...] = ("eps", "v", "x")

# net(x_t, t, cond) -> prediction of the target; t has shape (batch,)
Net = Callable[[Tensor, Tensor, Tensor | None], Tensor]


def _expand(t: Tensor | float, like: Tensor) -> Tensor:
    """``t`` as a tensor that broadcasts against ``like``: scalar or (batch,) -> (batch, 1, ..., 1)."""
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    return t.reshape(t.shape + (1,) * (like.dim() - t.dim())) if t.dim() else t


def interpolate(x: Tensor, eps: Tensor, t: Tensor | float) -> Tensor:
    """The forward process ``x_t = (1 - t)·x + t·eps`` (JiT eq. 1 with t reversed: t = 1 is noise).

    Args:
        x: clean data, (batch, ...).
        eps: standard Gaussian noise, same shape.
        t: scalar or (batch,) times in [0, 1].
    Returns:
        ``x_t``, same shape as ``x``.
    """
    t = _expand(t, x)
    return (1 - t) * x + t * eps


def velocity(x: Tensor, eps: Tensor) -> Tensor:
    """The flow-matching velocity ``v = dx_t/dt = eps - x`` (constant along a straight path)."""
    return eps - x


def convert(pred: Tensor, target: Target, x_t: Tensor, t: Tensor | float, t_eps: float = 0.0) -> dict[str, Tensor]:
    """All three of ``x``, ``eps``, ``v`` from one prediction, given ``x_t`` and ``t``.

    Divisions by ``t`` (x -> v, x -> eps) and by ``1 - t`` (eps -> x, eps -> v) clip the divisor
    at ``t_eps`` as JiT does, so the conversion stays finite at the endpoints; with ``t_eps = 0``
    and t strictly inside (0, 1) the conversions are exact inverses of each other.

    Args:
        pred: the network output, shape of ``x_t``.
        target: what ``pred`` is: "x", "eps" or "v".
        x_t: the noisy input.
        t: scalar or (batch,) times.
        t_eps: lower clip of the divisors ``t`` and ``1 - t``.
    Returns:
        dict with keys "x", "eps", "v".
    """
    t = _expand(t, x_t)
    if target == "x":
        x = pred
        v = (x_t - x) / t.clamp_min(t_eps)  # JiT: v from x, division by t clipped
        eps = x + v  # = (x_t - (1 - t) x) / t
    elif target == "eps":
        eps = pred
        v = (eps - x_t) / (1 - t).clamp_min(t_eps)
        x = eps - v  # = (x_t - t eps) / (1 - t)
    elif target == "v":
        v = pred
        x = x_t - t * v
        eps = x_t + (1 - t) * v
    else:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    return {"x": x, "eps": eps, "v": v}


class FlowMatching:
    """Flow-matching training and denoising for a network that predicts ``target``.

    Args:
        target: what the network predicts: "eps", "v" or "x" (JiT's choice).
        loss_space: "v" compares the implied velocity with ``eps - x`` whatever the target (JiT's
            v-loss); "target" compares the prediction with its own ground truth.
        t_sampling: "uniform" on [0, 1], or "logit_normal": ``t = sigmoid(N(mu, sigma))``.
            In this convention (t = 1 is noise) JiT's ``P_mean = -0.8`` reads ``mu = +0.8``.
        mu, sigma: logit-normal parameters.
        t_eps: clip of the divisors ``t`` / ``1 - t`` in conversions (JiT uses 0.05).
    """

    def __init__(
        self,
        target: Target = "x",
        loss_space: Literal["v", "target"] = "v",
        t_sampling: Literal["uniform", "logit_normal"] = "uniform",
        mu: float = 0.0,
        sigma: float = 1.0,
        t_eps: float = 0.05,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        if loss_space not in ("v", "target"):
            raise ValueError(f"loss_space must be 'v' or 'target', got {loss_space!r}")
        if t_sampling not in ("uniform", "logit_normal"):
            raise ValueError(f"t_sampling must be 'uniform' or 'logit_normal', got {t_sampling!r}")
        self.target, self.loss_space, self.t_sampling = target, loss_space, t_sampling
        self.mu, self.sigma, self.t_eps = mu, sigma, t_eps

    def sample_t(self, batch: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> Tensor:
        """Training times, (batch,)."""
        if self.t_sampling == "uniform":
            return torch.rand(batch, device=device, generator=generator)
        z = torch.randn(batch, device=device, generator=generator)
        return torch.sigmoid(self.mu + self.sigma * z)  # logit-normal (SD3 / JiT)

    def loss(self, net: Net, x: Tensor, cond: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Mean-squared flow-matching loss of ``net`` on a batch of clean data ``x``.

        Returns:
            scalar loss.
        """
        t = self.sample_t(x.shape[0], x.device, generator)
        eps = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
        x_t = interpolate(x, eps, t)
        pred = net(x_t, t, cond)
        if self.loss_space == "v":
            v_pred = convert(pred, self.target, x_t, t, self.t_eps)["v"]
            return (v_pred - velocity(x, eps)).pow(2).mean()  # JiT eq. 6: v-loss with x-prediction
        truth = {"x": x, "eps": eps, "v": velocity(x, eps)}[self.target]
        return (pred - truth).pow(2).mean()

    def denoise(self, net: Net, x_t: Tensor, t: Tensor | float, cond: Tensor | None = None) -> dict[str, Tensor]:
        """Run ``net`` at ``(x_t, t)`` and return its prediction as all of "x", "eps" and "v".

        Args:
            t: scalar or (batch,); a scalar is broadcast to the batch.
        """
        t = torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device)
        t = t.expand(x_t.shape[0]) if t.dim() == 0 else t
        return convert(net(x_t, t, cond), self.target, x_t, t, self.t_eps)

    def velocity_fn(self, net: Net) -> Callable[[Tensor, float, Tensor | None], Tensor]:
        """``(x_t, t, cond) -> v``: the function a sampler integrates (samplers know no model)."""

        def v(x_t: Tensor, t: Tensor | float, cond: Tensor | None = None) -> Tensor:
            return self.denoise(net, x_t, t, cond)["v"]

        return v

    def config(self) -> dict:
        """JSON-able settings, to write beside a checkpoint and rebuild with ``FlowMatching(**cfg)``."""
        return {"target": self.target, "loss_space": self.loss_space, "t_sampling": self.t_sampling,
                "mu": self.mu, "sigma": self.sigma, "t_eps": self.t_eps}
