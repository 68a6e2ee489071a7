"""The small interfaces the trainer and the language-model methods implement.

:class:`Trainable` is what :class:`latentcot.train.trainer.Trainer` needs of any model it trains
(language-model methods, EndoCoT): an ``nn.Module`` whose ``forward(batch)`` is the training
loss, so the trainer can wrap it in DDP/FSDP and call it, and a ``backbone`` its checkpoints save.

:class:`Method` is a language-model method: a trainable whose backbone is a Hugging Face causal LM
(plus whatever extra trainable parts it adds: a latent projection, a step decoder, ...), that
collates records into batches per curriculum stage, and whose ``reason`` is batched, KV-cached
inference. The trainer knows nothing else about a method.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.data.record import ReasoningExample


@dataclass
class LossOutput:
    """What ``forward(batch)`` returns: the scalar to backpropagate and numbers to log."""

    loss: torch.Tensor
    logs: dict[str, float] = field(default_factory=dict)


@dataclass
class ReasonOutput:
    """What ``reason(batch)`` returns, one entry per example of the batch.

    Attributes:
        texts: the decoded generated text (answer part, plus written steps for CoT).
        answers: the answer extracted from each text (before dataset-specific normalisation).
        num_generated_tokens: tokens written per example (latents excluded).
        num_forward_passes: backbone calls made for the batch (each latent pass counts one).
        latents: (batch, steps, hidden) latent thoughts, or None for methods without latents.
    """

    texts: list[str]
    answers: list[str]
    num_generated_tokens: list[int]
    num_forward_passes: int
    latents: torch.Tensor | None = None


Batch = dict[str, Any]


class Trainable(Protocol):
    """What the trainer needs of a model: a loss per batch, its name and config, and a backbone.

    A checkpoint saves ``backbone`` as ``model.safetensors`` (with ``save_pretrained`` when it is
    a Hugging Face model, then also ``tokenizer``) and every other weight of the module as
    ``method.safetensors``. The batches come from the trainer's data: ``collate`` of a
    :class:`Method` over a list of examples, or a :class:`latentcot.train.trainer.BatchStream`.
    """

    @property
    def name(self) -> str:
        """Recorded in every checkpoint (``latentcot.json``)."""
        ...

    @property
    def config(self) -> Any:
        """The model's config dataclass (recorded in the run folder unless a run config is given)."""
        ...

    @property
    def backbone(self) -> nn.Module:
        """The main network; saved in Hugging Face format when it is a ``PreTrainedModel``."""
        ...

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        """Saved beside a Hugging Face backbone; None for a model without one (EndoCoT)."""
        ...

    @property
    def reset_optimizer_per_stage(self) -> bool:
        """Whether the trainer clears AdamW's moments when the curriculum stage changes."""
        ...

    training: bool

    def eval(self) -> Self:
        """Evaluation mode (``nn.Module.eval``)."""
        ...

    def train(self, mode: bool = True) -> Self:
        """Training mode, or evaluation mode with ``mode=False`` (``nn.Module.train``)."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]:
        """The parameters (``nn.Module.parameters``)."""
        ...

    def forward(self, batch: Batch) -> LossOutput:
        """The training loss for one batch."""
        ...


class Method(Trainable, Protocol):
    """One method = one file implementing this.

    ``stage`` is the curriculum stage (Coconut); the method owns its schedule
    (``stage_for_epoch``) and the trainer follows it. Methods without a curriculum ignore it and
    report ``num_stages() == 1``.

    Every method class is also an ``nn.Module``; the Protocol lists the module members callers
    use (``training``, ``eval``, ``train``, ``parameters``). Code that needs the full module
    (DDP/FSDP wrapping, state dicts) views it as one with ``typing.cast(nn.Module, method)``.
    """

    name: str
    config: Any  # the method's config dataclass
    backbone: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    reset_optimizer_per_stage: bool  # the trainer clears AdamW moments when the stage changes

    def collate(self, examples: Sequence[ReasoningExample], stage: int = 0) -> Batch:
        """Tokenise and pad a list of records into a training batch for ``stage``."""
        ...

    def num_stages(self) -> int:
        """Number of curriculum stages (1 when the method has none)."""
        ...

    def stage_for_epoch(self, epoch: int) -> int:
        """The curriculum stage a 0-based epoch trains on (always 0 without a curriculum)."""
        ...

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
        """Batched, KV-cached inference from raw question strings: greedy when ``temperature`` is 0,
        else sampling (nucleus ``top_p``); ``n_latents`` overrides the trained number of thoughts
        (ignored by methods without latents)."""
        ...
