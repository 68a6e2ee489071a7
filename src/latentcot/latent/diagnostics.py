"""Looking inside continuous thoughts: what each latent "says" through the LM head."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@torch.no_grad()
def nearest_tokens(
    backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, latents: torch.Tensor, k: int = 5
) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable vocabulary tokens of each latent read through the LM head.

    This is the Coconut paper's probe (Hao et al. 2024, Fig. 5): a continuous thought is the last
    hidden state, so projecting it with the output embedding gives the distribution the model
    would have written had it been asked to write a token there.

    Args:
        backbone: supplies ``get_output_embeddings()``.
        tokenizer: maps ids back to strings.
        latents: (steps, hidden) thoughts of one example.
        k: tokens per latent.

    Returns:
        Per latent, ``k`` pairs (token, probability), most probable first.
    """
    head = backbone.get_output_embeddings()
    probs = torch.softmax(head(latents.to(head.weight.dtype)).float(), -1)  # (steps, vocab)
    top = probs.topk(k, -1)
    return [
        [(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(ps, ids)]
        for ps, ids in zip(top.values, top.indices)
    ]
