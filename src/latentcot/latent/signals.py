"""Latent-trajectory signals (Vilas et al. 2025, "Tracing the Traces: Latent Temporal Signals for
Efficient and Accurate Reasoning", arXiv:2510.10494).

A trajectory is the sequence of hidden states a model passes through while it reasons,
``h_0 … h_T`` of shape (batch, T + 1, hidden): here the last-layer state at ``<bot>`` and after each
continuous thought, or the states the answer tokens are written from. Three training-free numbers
describe how it moves:

* **net change** — how far the end is from the start, ``‖h_T − h_0‖``;
* **cumulative change** — the length of the path, ``Σ_t ‖h_t − h_{t−1}‖``;
* **aligned change** — how much each step advances toward the final state, the mean over steps of
  ``cos(h_t − h_{t−1}, h_T − h_{t−1})`` (1 when every step heads straight for where the
  trajectory ends).

The two distances are divided by the mean state norm of the trajectory, so they compare across
models and layers whose hidden states differ in scale. Trajectories of different lengths in one
batch are right-padded and carry ``lengths`` (states per row, at least 1).
"""

from __future__ import annotations

import torch

SIGNALS = ("net_change", "cumulative_change", "aligned_change")


def _valid(states: torch.Tensor, lengths: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(lengths (batch,), a (batch, steps) mask of real states)."""
    batch, steps, _ = states.shape
    if lengths is None:
        lengths = torch.full((batch,), steps, dtype=torch.long, device=states.device)
    mask = torch.arange(steps, device=states.device)[None] < lengths[:, None]
    return lengths, mask


def _final(states: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(batch, hidden): each row's last real state."""
    index = (lengths - 1).clamp(min=0)[:, None, None].expand(-1, 1, states.shape[-1])
    return states.gather(1, index)[:, 0]


def _scale(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(batch,): the mean norm of each row's real states."""
    norms = states.norm(dim=-1) * mask
    return (norms.sum(1) / mask.sum(1).clamp(min=1)).clamp_min(1e-12)


def net_change(states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """``‖h_T − h_0‖ / mean_t ‖h_t‖`` per row (batch,)."""
    states = states.float()
    lengths, mask = _valid(states, lengths)
    return (_final(states, lengths) - states[:, 0]).norm(dim=-1) / _scale(states, mask)


def cumulative_change(states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """``Σ_t ‖h_t − h_{t−1}‖ / mean_t ‖h_t‖`` per row (batch,)."""
    states = states.float()
    lengths, mask = _valid(states, lengths)
    steps = (states[:, 1:] - states[:, :-1]).norm(dim=-1) * mask[:, 1:]  # (batch, T)
    return steps.sum(1) / _scale(states, mask)


def aligned_change(states: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over steps of ``cos(h_t − h_{t−1}, h_T − h_{t−1})`` per row (batch,); 0 for a single state.

    The last step always points at the final state (cosine 1), so it is left out when a row has
    more than one step: the signal measures whether the *intermediate* steps head for the end.
    """
    states = states.float()
    lengths, mask = _valid(states, lengths)
    step = states[:, 1:] - states[:, :-1]  # (batch, T, hidden)
    to_end = _final(states, lengths)[:, None] - states[:, :-1]  # (batch, T, hidden)
    cos = torch.nn.functional.cosine_similarity(step, to_end, dim=-1, eps=1e-12)  # (batch, T)
    t = torch.arange(1, states.shape[1], device=states.device)[None]
    last = lengths[:, None] - 1
    counted = (t < last) | ((t == last) & (last == 1))  # intermediate steps; the only step when T = 1
    return (cos * counted).sum(1) / counted.sum(1).clamp(min=1)


def trajectory_signals(states: torch.Tensor, lengths: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The three signals of every row: ``{name: (batch,)}`` for each name in :data:`SIGNALS`.

    Args:
        states: (batch, steps, hidden) hidden states in order, right-padded.
        lengths: (batch,) real states per row; all ``steps`` when None.
    """
    return {
        "net_change": net_change(states, lengths),
        "cumulative_change": cumulative_change(states, lengths),
        "aligned_change": aligned_change(states, lengths),
    }
