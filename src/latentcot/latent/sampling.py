"""N latent trajectories per question in one batch (Yang et al. 2025, "Parallel Test-Time Scaling
for Latent Reasoning Models", arXiv:2510.07745; reference code YRYangang/LatentTTS).

A latent reasoner is deterministic, so its N samples differ only through noise put into the
thoughts it feeds back. The reference's two samplers:

* ``noise`` — additive Gaussian noise: every fed-back thought gets ``σ·ε``, ``ε ~ N(0, I)``;
* ``dropout`` — Monte-Carlo dropout: the backbone's dropout layers are switched on (rate ``p``)
  for the thought passes, so each sample computes its thoughts through a different sub-network
  (Llama-family blocks have no dropout layers: there the inputs of the MLP down projections are
  dropped, as the reference does for its Llama backbone; see :func:`mc_dropout`).

and, for a method that feeds back soft thoughts (Coconut's ``thought_input: soft``), not in the
reference:

* ``gumbel`` — each thought is a Gumbel-softmax draw of the LM head's distribution at temperature
  ``τ`` instead of the distribution itself (:meth:`latentcot.latent.loop.SoftTokens.sample`; the
  randomness Wu et al. 2025, arXiv:2508.03440, found soft thinking needs): every sample's mixture
  leans on its own draw of the tokens.

The loop: one pass over every question's prefix (``question <bot>``, left-padded), then the KV
cache, mask and last state are repeated N times (``repeat_interleave``: a question's samples are
adjacent rows), so the shared prefix is computed once per question, not once per sample; then
``k`` one-position passes, one per thought, for all ``questions × N`` rows together; ``<eot>``;
and batched greedy decoding of the answer. Optionally, after ``prune_after`` thoughts the rows are
scored and only the best ``keep`` of each question finish (early pruning, as Vilas et al. 2025 do
with latent-trajectory signals). Without a sampler and with N = 1 this computes exactly what the
method's greedy ``reason`` does (tested).

Randomness comes from the torch generator seeded with ``seed`` inside a forked RNG state (dropout
draws from the global generator), so the same seed and batch give the same samples and the
caller's RNG is left untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel

from latentcot.errors import LatentCotError
from latentcot.latent.generate import generate_from_cache
from latentcot.latent.loop import Project, SoftTokens, extend, latent_forward

Score = Callable[[torch.Tensor], torch.Tensor]  # (rows, states so far, hidden) -> (rows,), higher is better


@dataclass
class ThoughtSampler:
    """How the N samples of a question are made different.

    Attributes:
        kind: ``none`` (greedy: every sample is the same), ``noise`` (additive Gaussian noise on each
            fed-back thought), ``dropout`` (MC dropout in the thought passes) or ``gumbel`` (each soft
            thought a Gumbel-softmax draw; soft-thought methods only).
        noise: σ of the Gaussian noise (the reference's ``noise_std``, default 0.1).
        dropout: rate ``p`` of the backbone's dropout layers during the thought passes.
        seed: seeds the samples (same seed and batch -> same samples).
        temperature: τ of the Gumbel-softmax draw (``gumbel``).
        gumbel_scale: the Gumbel noise's factor ``s`` in ``softmax((logits + s·g) / τ)`` (``gumbel``; 1 is
            the textbook draw; 0 at temperature 1 the greedy soft thought).
    """

    kind: Literal["none", "noise", "dropout", "gumbel"] = "none"
    noise: float = 0.1
    dropout: float = 0.1
    seed: int = 0
    temperature: float = 1.0
    gumbel_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in ("none", "noise", "dropout", "gumbel"):
            raise LatentCotError(f"sampler: 'none', 'noise', 'dropout' or 'gumbel', not {self.kind!r}")
        if self.noise < 0 or not 0.0 <= self.dropout < 1.0 or not self.temperature > 0 or self.gumbel_scale < 0:
            raise LatentCotError(
                f"sampler: noise must be >= 0, dropout in [0, 1), temperature > 0 and gumbel_scale >= 0 "
                f"(got {self.noise}, {self.dropout}, {self.temperature}, {self.gumbel_scale})"
            )


@dataclass
class Pruning:
    """Early pruning: after ``after`` thoughts keep the ``keep`` best-scored samples of each question."""

    after: int
    keep: int
    score: Score


@dataclass
class LatentSamples:
    """What :func:`sample_trajectories` returns; rows are ``question * n_samples + sample``.

    Attributes:
        states: (rows, k + 1, hidden) last-layer state at ``<bot>`` then after each thought (the
            thought trajectory); zero past ``thought_counts``.
        thoughts: (rows, k, hidden) the embeddings fed back (noise included); zero past the count.
        thought_counts: (rows,) thoughts each row ran (``prune.after`` for pruned rows).
        finished: (rows,) bool, rows that wrote an answer (all but the pruned ones).
        tokens: per row, the answer token ids ([] for pruned rows).
        answer_states: (rows, T, hidden) states the answer tokens were chosen from; zero past
            ``answer_lengths`` and for pruned rows.
        answer_lengths: (rows,) tokens written (0 for pruned rows).
        backbone_calls: backbone forward calls made for the whole batch.
        sample_passes: forward passes summed over samples: 1 per question for the shared prefix,
            then one per row for each one-position pass it took part in (thoughts, ``<eot>``,
            decoding steps; a finished row still rides along until the batch stops).
    """

    states: torch.Tensor
    thoughts: torch.Tensor
    thought_counts: torch.Tensor
    finished: torch.Tensor
    tokens: list[list[int]]
    answer_states: torch.Tensor
    answer_lengths: torch.Tensor
    backbone_calls: int
    sample_passes: int


@contextmanager
def mc_dropout(module: nn.Module, p: float) -> Iterator[None]:
    """Monte-Carlo dropout at rate ``p`` inside the block, the model restored after.

    Where ``module`` has ``nn.Dropout`` layers (GPT-2 and most encoder-style blocks) every one of
    them is switched to train mode at rate ``p``. Llama-family blocks (Llama, Qwen2, Mistral, ...)
    have none: their only dropout is a float inside attention, and there is no residual dropout.
    For them, as the LatentTTS reference does for its Llama backbone, the input of every MLP down
    projection (``nn.Linear`` named ``down_proj``) is dropped at rate ``p``. A model with neither
    is refused, so the sampler never silently returns N copies of the greedy trajectory.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.Dropout)]
    if layers:
        saved = [(m.p, m.training) for m in layers]
        for m in layers:
            m.p = p
            m.train()
        try:
            yield
        finally:
            for m, (rate, mode) in zip(layers, saved):
                m.p = rate
                m.train(mode)
        return
    projections = [m for name, m in module.named_modules() if name.endswith("down_proj") and isinstance(m, nn.Linear)]
    if not projections:
        raise LatentCotError(
            f"sampler dropout: {type(module).__name__} has no nn.Dropout layers and no MLP down_proj to drop "
            "inputs of; use the noise sampler"
        )

    def drop(_: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (nn.functional.dropout(args[0], p, training=True), *args[1:])

    hooks = [m.register_forward_pre_hook(drop) for m in projections]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


@contextmanager
def _thought_pass(backbone: PreTrainedModel, sampler: ThoughtSampler) -> Iterator[None]:
    if sampler.kind == "dropout" and sampler.dropout > 0:
        with mc_dropout(backbone, sampler.dropout):
            yield
    else:
        yield


@torch.no_grad()
def sample_trajectories(
    backbone: PreTrainedModel,
    prefix_embeds: torch.Tensor,
    prefix_mask: torch.Tensor,
    num_latents: int,
    n_samples: int,
    end_embed: torch.Tensor,
    eos_token_id: int,
    max_new_tokens: int,
    project: Project | None = None,
    sampler: ThoughtSampler | None = None,
    prune: Pruning | None = None,
) -> LatentSamples:
    """Think ``num_latents`` thoughts ``n_samples`` times per question, then write each answer.

    Args:
        backbone: a Hugging Face causal LM.
        prefix_embeds: (questions, prefix, hidden) left-padded, each row ending at ``<bot>`` (or at
            the question, in the graph layout).
        prefix_mask: (questions, prefix) attention mask.
        num_latents: thoughts per sample (k).
        n_samples: samples per question (N).
        end_embed: (hidden,) or (positions, hidden): what is fed after the last thought (``<eot>``;
            the graph layout's ``###``), in one pass.
        eos_token_id: decoding stops a row at this token.
        max_new_tokens: answer budget per row.
        project: maps a last hidden state to the next input embedding (the method's); None = identity.
        sampler: a :class:`ThoughtSampler` (None: greedy).
        prune: a :class:`Pruning` (None: every sample finishes).

    Returns:
        A :class:`LatentSamples`.
    """
    sampler = sampler or ThoughtSampler()
    if sampler.kind == "gumbel" and not isinstance(project, SoftTokens):
        raise LatentCotError(
            "sampler gumbel: this method's thoughts are not the head's distribution over tokens (soft thoughts: "
            "Coconut method.thought_input: soft with method.latent_scale: none), so there is nothing to draw "
            "from; use noise or dropout"
        )
    questions, _, hidden = prefix_embeds.shape
    rows = questions * n_samples
    if prune is not None and not (0 <= prune.after <= num_latents and 1 <= prune.keep <= n_samples):
        raise LatentCotError(f"prune: after must be in [0, {num_latents}] and keep in [1, {n_samples}]")
    devices = [prefix_embeds.device] if prefix_embeds.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(sampler.seed)
        none = torch.zeros_like(prefix_mask, dtype=torch.bool)
        out = latent_forward(
            backbone, prefix_embeds, prefix_mask, none, last_only=True
        )  # the shared prefix, once per question
        cache, mask = out.cache, out.attention_mask.repeat_interleave(n_samples, 0)
        cache.batch_repeat_interleave(n_samples)
        previous = out.hidden_states[:, -1].repeat_interleave(n_samples, 0)  # (rows, hidden)
        states = prefix_embeds.new_zeros(rows, num_latents + 1, hidden)
        thoughts = prefix_embeds.new_zeros(rows, num_latents, hidden)
        states[:, 0] = previous
        alive = torch.arange(rows, device=prefix_embeds.device)  # original row of each batch row
        calls, passes = 1, questions
        for step in range(num_latents):
            if prune is not None and step == prune.after and prune.keep < n_samples:
                alive, keep = _prune(prune, states[alive, : step + 1], alive, n_samples)
                cache.batch_select_indices(keep)
                mask, previous = mask[keep], previous[keep]
            if sampler.kind == "gumbel":
                assert isinstance(project, SoftTokens)
                thought = project.sample(previous, sampler.temperature, sampler.gumbel_scale)
            else:
                thought = project(previous) if project is not None else previous
            if sampler.kind == "noise" and sampler.noise > 0:
                thought = thought + sampler.noise * torch.randn_like(thought)
            with _thought_pass(backbone, sampler):
                h, mask = extend(backbone, cache, mask, thought[:, None])
            previous = h[:, -1]
            thoughts[alive, step] = thought
            states[alive, step + 1] = previous
            calls, passes = calls + 1, passes + len(alive)
        if prune is not None and prune.after == num_latents and prune.keep < n_samples:
            alive, keep = _prune(prune, states[alive], alive, n_samples)
            cache.batch_select_indices(keep)
            mask = mask[keep]
        end = end_embed.reshape(-1, hidden)
        h, mask = extend(backbone, cache, mask, end.expand(len(alive), *end.shape), last_only=True)
        gen = generate_from_cache(backbone, cache, mask, h[:, -1], max_new_tokens, eos_token_id)
    calls += 1 + gen.num_forward_passes
    passes += len(alive) * (1 + gen.num_forward_passes)
    thought_counts = torch.full((rows,), num_latents, dtype=torch.long, device=alive.device)
    finished = torch.zeros(rows, dtype=torch.bool, device=alive.device)
    finished[alive] = True
    if prune is not None:
        thought_counts[~finished] = prune.after
    assert gen.hidden_states is not None
    answer_states = prefix_embeds.new_zeros(rows, gen.hidden_states.shape[1], hidden)
    answer_states[alive] = gen.hidden_states
    answer_lengths = torch.zeros(rows, dtype=torch.long, device=alive.device)
    answer_lengths[alive] = gen.num_tokens
    tokens: list[list[int]] = [[] for _ in range(rows)]
    for row, ids in zip(alive.tolist(), gen.rows()):
        tokens[row] = ids
    return LatentSamples(
        states, thoughts, thought_counts, finished, tokens, answer_states, answer_lengths, calls, passes
    )


def _prune(
    prune: Pruning, states: torch.Tensor, alive: torch.Tensor, n_samples: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``prune.keep`` best rows of each question; returns (their original rows, their batch indices)."""
    scores = prune.score(states).reshape(-1, n_samples)  # (questions, N): all rows are alive before pruning
    best = scores.topk(prune.keep, dim=1).indices.sort(dim=1).values  # keep the sample order
    keep = (best + n_samples * torch.arange(len(scores), device=best.device)[:, None]).flatten()
    return alive[keep], keep
