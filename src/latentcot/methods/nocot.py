"""No-CoT baseline: the model reads the question and writes ``### answer`` directly.

The "No-CoT" row of the Coconut paper (Hao et al. 2024, arXiv:2412.06769, Table 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.config import option
from latentcot.data.record import ReasoningExample
from latentcot.methods.base import Batch, LossOutput, ReasonOutput
from latentcot.methods.sequences import (
    Row,
    answer_ids,
    complete,
    pad_rows,
    prepare_backbone,
    question_ids,
    sft_loss,
)


@dataclass
class NoCotConfig:
    init_token: str = option("", "token whose embedding initialises added special tokens ('' = eos)")


class NoCot(nn.Module):
    """question → ``### answer<eos>``; loss on the answer part only.

    Args:
        config: a :class:`NoCotConfig`.
        backbone: a Hugging Face causal LM (gets the shared special tokens, see
            :func:`latentcot.methods.sequences.prepare_backbone`).
        tokenizer: its tokenizer (modified in place).
    """

    name = "nocot"
    reset_optimizer_per_stage = False

    def __init__(self, config: NoCotConfig, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.config, self.backbone, self.tokenizer = config, backbone, tokenizer
        self.tokens = prepare_backbone(backbone, tokenizer, init_token=config.init_token)

    def num_stages(self) -> int:
        return 1

    def stage_for_epoch(self, epoch: int) -> int:
        return 0

    def collate(self, examples: Sequence[ReasoningExample], stage: int = 0) -> Batch:
        rows = []
        for ex in examples:
            target = answer_ids(self.tokenizer, ex.answer)
            rows.append(Row(question_ids(self.tokenizer, ex.question), target, target))
        return pad_rows(rows, self.tokenizer.pad_token_id)

    def forward(self, batch: Batch) -> LossOutput:
        loss = sft_loss(self.backbone, batch)
        return LossOutput(loss, {"loss": float(loss.detach())})

    @torch.no_grad()
    def reason(
        self,
        questions: Sequence[str],
        max_new_tokens: int = 64,
        n_latents: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> ReasonOutput:
        """Greedy (or sampled) batched answers; ``n_latents`` is accepted and ignored."""
        prompts = [Row(question_ids(self.tokenizer, q), [], []) for q in questions]
        return complete(self.backbone, self.tokenizer, prompts, max_new_tokens, None, None, temperature, top_p, generator)
