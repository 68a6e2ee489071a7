"""Batched, KV-cached decoding that continues from the latent loop's cache.

Each step projects only the last hidden state of each row to the vocabulary, feeds the chosen
token through one one-position pass on the cache, and stops a row at its eos (the batch stops
when every row has; greedy decoding also drops finished rows from the batch as they accumulate). Greedy by default; temperature and nucleus (top-p) sampling use the
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

COMPACT_FRACTION = 4  # compact once a quarter of the rows still decoding have finished


@dataclass
class Generation:
    """What :func:`generate_from_cache` returns.

    Attributes:
        tokens: (batch, steps) generated ids; after a row's eos, eos again.
        num_tokens: (batch,) tokens each row wrote, its eos included when it stopped.
        num_forward_passes: backbone calls made (one per step after the first token).
        eos_token_id: the stop token (``rows()`` strips it).
        hidden_states: (batch, steps, hidden) the last-layer state each token was chosen from
            (the answer's hidden trajectory; test-time-scaling signals read it up to
            ``num_tokens``); zeros after a row's eos once the row has left the batch.
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
    compact: bool = True,
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
        compact: greedy decoding drops finished rows from the batch (and the cache) once at least
            1/:data:`COMPACT_FRACTION` of the rows still in it have finished, so that rows that
            stop early stop costing compute; the tokens are those of decoding without it. Sampling
            never compacts (the random draws would then depend on which rows are left).

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
    device = last_hidden.device
    # rows still decoding (indices into the batch); finished rows leave the batch when compacted
    active = torch.arange(batch, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)  # over the active rows
    num_tokens = torch.zeros(batch, dtype=torch.long, device=device)
    tokens = torch.full((batch, max_new_tokens), eos_token_id, dtype=torch.long, device=device)
    states = last_hidden.new_zeros(batch, max_new_tokens, last_hidden.shape[-1])
    hidden, passes, steps = last_hidden, 0, 0
    for step in range(max_new_tokens):
        logits = head(hidden).float()  # (active, vocab): only the last position is projected
        if temperature > 0:
            probs = warpers(None, logits).softmax(-1)  # type: ignore[arg-type]
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            token = logits.argmax(-1)
        token = torch.where(finished, eos_token_id, token)
        rows = slice(None) if len(active) == batch else active  # plain slicing until the first compaction
        num_tokens[rows] += (~finished).long()
        tokens[rows, step] = token
        states[rows, step] = hidden
        steps = step + 1
        finished |= token == eos_token_id
        done = int(finished.sum())
        if done == len(active) or step == max_new_tokens - 1:
            break
        if temperature == 0 and compact and done * COMPACT_FRACTION >= len(active):
            # greedy rows do not depend on each other: drop the finished ones from the batch
            keep = (~finished).nonzero().flatten()
            cache.batch_select_indices(keep)
            active, token, attention_mask, finished = active[keep], token[keep], attention_mask[keep], finished[keep]
        h, attention_mask = extend(backbone, cache, attention_mask, embed(token)[:, None])
        hidden = h[:, -1]
        passes += 1
    return Generation(tokens[:, :steps], num_tokens, passes, eos_token_id, states[:, :steps])
