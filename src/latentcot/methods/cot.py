"""Explicit chain of thought, standard supervised fine-tuning: the model writes every step,
then ``### answer`` (the "CoT" row of the Coconut paper, arXiv:2412.06769, Table 1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.config import option
from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError
from latentcot.methods.base import Batch, LossOutput, ReasonOutput
from latentcot.methods.sequences import (
    Row,
    answer_ids,
    complete,
    pad_rows,
    prepare_backbone,
    question_ids,
    sft_loss,
    steps_ids,
)


@dataclass
class CotConfig:
    max_steps: int = option(-1, "keep at most this many written steps per example (-1: all)")
    init_token: str = option("", "token whose embedding initialises added special tokens ('' = eos)")

    def __post_init__(self) -> None:
        if self.max_steps < -1:
            raise LatentCotError(f"max_steps: must be -1 (all) or >= 0, got {self.max_steps}")


class Cot(nn.Module):
    """question → ``step\\n … ### answer<eos>``; loss on steps and answer.

    Args:
        config: a :class:`CotConfig`.
        backbone: a Hugging Face causal LM.
        tokenizer: its tokenizer (modified in place).
    """

    name = "cot"
    reset_optimizer_per_stage = False

    def __init__(self, config: CotConfig, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.config, self.backbone, self.tokenizer = config, backbone, tokenizer
        self.tokens = prepare_backbone(backbone, tokenizer, init_token=config.init_token)

    def num_stages(self) -> int:
        return 1

    def stage_for_epoch(self, epoch: int) -> int:
        return 0

    def collate(self, examples: Sequence[ReasoningExample], stage: int = 0) -> Batch:
        keep = None if self.config.max_steps < 0 else self.config.max_steps
        rows = []
        for ex in examples:
            target = steps_ids(self.tokenizer, ex.steps[:keep]) + answer_ids(self.tokenizer, ex.answer)
            rows.append(Row(question_ids(self.tokenizer, ex.question), target, target))
        return pad_rows(rows, self.tokenizer.pad_token_id)

    def forward(self, batch: Batch) -> LossOutput:
        loss = sft_loss(self.backbone, batch)
        return LossOutput(loss, {"loss": float(loss.detach())})

    @torch.no_grad()
    def reason(
        self,
        questions: Sequence[str],
        max_new_tokens: int = 256,
        n_latents: int | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> ReasonOutput:
        """Write the steps and the answer; ``n_latents`` is accepted and ignored. Give a budget
        that covers the steps: an answer cut off before ``###`` is extracted as the raw text."""
        prompts = [Row(question_ids(self.tokenizer, q), [], []) for q in questions]
        return complete(self.backbone, self.tokenizer, prompts, max_new_tokens, None, None, temperature, top_p, generator)
