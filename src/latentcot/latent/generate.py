"""Batched, KV-cached decoding that continues from the latent loop's cache.

Each step projects only the last hidden state of each row to the vocabulary, feeds the chosen
token through one one-position pass on the cache, and stops a row at its eos (the batch stops
when every row has). Greedy by default; temperature and nucleus (top-p) sampling use the
``transformers`` logits warpers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedModel
from transformers.generation.logits_process import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from latentcot.latent.loop import extend


@dataclass
class Generation:
    """What :func:`generate_from_cache` returns.

    Attributes:
        tokens: (batch, steps) generated ids; after a row's eos, eos again.
        num_tokens: (batch,) tokens each row wrote, its eos included when it stopped.
        num_forward_passes: backbone calls made (one per step after the first token).
        eos_token_id: the stop token (``rows()`` strips it).
        hidden_states: (batch, steps, hidden) the last-layer state each token was chosen from
            (the answer's hidden trajectory; test-time-scaling signals read it).
    """

    tokens: torch.Tensor
    num_tokens: torch.Tensor
    num_forward_passes: int
    eos_token_id: int
    hidden_states: torch.Tensor | None = None

    def rows(self) -> list[list[int]]:
        """Each row's tokens up to (not including) its eos."""
        out = []
        for row, n in zip(self.tokens.tolist(), self.num_tokens.tolist()):
            ids = row[:n]
            out.append(ids[:-1] if ids and ids[-1] == self.eos_token_id else ids)
        return out


@torch.no_grad()
def generate_from_cache(
    backbone: PreTrainedModel,
    cache: DynamicCache,
    attention_mask: torch.Tensor,
    last_hidden: torch.Tensor,
    max_new_tokens: int,
    eos_token_id: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> Generation:
    """Decode up to ``max_new_tokens`` per row, continuing after the cached positions.

    Args:
        backbone: the causal LM the cache belongs to.
        cache: KV cache over ``attention_mask.shape[1]`` columns; updated in place.
        attention_mask: (batch, past) mask the cache was built with.
        last_hidden: (batch, hidden) last-layer hidden state of the last cached position.
        max_new_tokens: the budget per row.
        eos_token_id: a row stops once it writes this.
        temperature: 0 for greedy; otherwise sample from softmax(logits / temperature).
        top_p: nucleus sampling mass (with temperature > 0).
        generator: random source for sampling (seeded for reproducible samples).

    Returns:
        A :class:`Generation`; ``rows()`` strips the eos and what follows it.
    """
    head = backbone.get_output_embeddings()
    embed = backbone.get_input_embeddings()
    warpers = LogitsProcessorList()
    if temperature > 0:
        warpers.append(TemperatureLogitsWarper(temperature))
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
    batch = last_hidden.shape[0]
    finished = torch.zeros(batch, dtype=torch.bool, device=last_hidden.device)
    num_tokens = torch.zeros(batch, dtype=torch.long, device=last_hidden.device)
    written: list[torch.Tensor] = []
    states: list[torch.Tensor] = []
    hidden, passes = last_hidden, 0
    for step in range(max_new_tokens):
        logits = head(hidden).float()  # (batch, vocab): only the last position is projected
        if temperature > 0:
            probs = warpers(None, logits).softmax(-1)  # type: ignore[arg-type]
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(-1)
        token = torch.where(finished, eos_token_id, token)
        num_tokens += (~finished).long()
        written.append(token)
        states.append(hidden)
        finished |= token == eos_token_id
        if finished.all() or step == max_new_tokens - 1:
            break
        h, attention_mask = extend(backbone, cache, attention_mask, embed(token)[:, None])
        hidden = h[:, -1]
        passes += 1
    tokens = torch.stack(written, 1) if written else last_hidden.new_zeros(batch, 0, dtype=torch.long)
    hidden_states = torch.stack(states, 1) if states else last_hidden.new_zeros(batch, 0, last_hidden.shape[-1])
    return Generation(tokens, num_tokens, passes, eos_token_id, hidden_states)
