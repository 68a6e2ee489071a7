"""Pause tokens: k copies of one learnable ``<pause>`` token between question and answer give
the model k extra positions to compute in, without writing steps (Goyal et al. 2023, "Think
before you speak", arXiv:2310.02226; the "Pause as thought" baseline of Coconut, Table 1)."""

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
)


@dataclass
class PauseConfig:
    num_pause: int = option(6, "pause tokens between question and answer (training and default inference)")
    init_token: str = option("", "token whose embedding initialises <pause> ('' = eos)")

    def __post_init__(self) -> None:
        if self.num_pause < 0:
            raise LatentCotError(f"num_pause: must be >= 0, got {self.num_pause}")


class Pause(nn.Module):
    """question ``<pause>×k`` → ``### answer<eos>``; the ``<pause>`` embedding is trained.

    Args:
        config: a :class:`PauseConfig`.
        backbone: a Hugging Face causal LM.
        tokenizer: its tokenizer (modified in place).
    """

    name = "pause"
    reset_optimizer_per_stage = False

    def __init__(self, config: PauseConfig, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.config, self.backbone, self.tokenizer = config, backbone, tokenizer
        self.tokens = prepare_backbone(backbone, tokenizer, init_token=config.init_token)

    def num_stages(self) -> int:
        return 1

    def stage_for_epoch(self, epoch: int) -> int:
        return 0

    def _prompt(self, question: str, k: int) -> list[int]:
        return question_ids(self.tokenizer, question) + [self.tokens.pause] * k

    def collate(self, examples: Sequence[ReasoningExample], stage: int = 0) -> Batch:
        rows = []
        for ex in examples:
            target = answer_ids(self.tokenizer, ex.answer)
            rows.append(Row(self._prompt(ex.question, self.config.num_pause), target, target))
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
        """Batched answers; ``n_latents`` sets the number of pause tokens (default ``num_pause``)."""
        k = self.config.num_pause if n_latents is None else n_latents
        prompts = [Row(self._prompt(q, k), [], []) for q in questions]
        return complete(self.backbone, self.tokenizer, prompts, max_new_tokens, None, None, temperature, top_p, generator)
