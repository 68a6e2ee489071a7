"""The Latent Reward Model (LatentRM; Yang et al. 2025, "Parallel Test-Time Scaling for Latent
Reasoning Models", arXiv:2510.07745, reference code YRYangang/LatentTTS).

A scorer of latent trajectories: a copy of the reasoner's backbone with a one-unit linear head
reads ``question <bot> z_1 … z_k`` — the question's tokens, then the sampled thoughts as input
embeddings — and gives every thought position a score ``r_t``. It is trained on the reasoner's
own samples: for each training question, N trajectories are sampled and labelled by whether their
answer is right; questions whose samples are all right or all wrong are dropped (they teach no
contrast). The objective is step-wise and contrastive across the N samples of a question
(the reference's loss): at every step t the scores of the N samples go through a softmax over
samples, and the loss is the cross-entropy against the labels::

    L = − 1/(Q·k) Σ_q Σ_t Σ_n y_{q,n} · log softmax_n(r_{q,n,t})

A trajectory's score is its step scores pooled (``mean``, the reference's default, ``last`` or
``min``). It is trained by latentcot's one trainer (it implements the method interface the trainer
needs) and saved as any checkpoint: the backbone in Hugging Face safetensors, the head in
``method.safetensors``, the config in ``latentcot.json``; nothing is pickled.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.config import from_dict, option, to_dict
from latentcot.errors import LatentCotError
from latentcot.latent.loop import latent_forward
from latentcot.methods.base import Batch, LossOutput


@dataclass
class RewardConfig:
    pooling: Literal["mean", "last", "min"] = option("mean", "how step scores make a trajectory's score")
    bot_token_id: int = option(-1, "the reasoner's <bot> id, put between question and thoughts (-1: none)")


@dataclass
class ThoughtGroup:
    """The N sampled trajectories of one question, for training.

    Attributes:
        question_ids: the question's token ids (as the reasoner reads them, before ``<bot>``).
        thoughts: (N, k, hidden) the thoughts each sample fed back.
        labels: (N,) 1.0 for a sample whose answer is right, else 0.0.
    """

    question_ids: list[int]
    thoughts: torch.Tensor
    labels: torch.Tensor


class LatentRewardModel(nn.Module):
    """Step scores for latent trajectories.

    Args:
        config: a :class:`RewardConfig`.
        backbone: a causal LM whose input embeddings the thoughts live in (a copy of the
            reasoner's backbone; see :func:`reward_model_from`).
        tokenizer: the reasoner's tokenizer (saved with the checkpoint).
    """

    name = "latent_rm"
    reset_optimizer_per_stage = False

    def __init__(self, config: RewardConfig, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.config, self.backbone, self.tokenizer = config, backbone, tokenizer
        self.head = nn.Linear(backbone.config.hidden_size, 1)
        nn.init.zeros_(self.head.weight)  # every trajectory starts equal
        nn.init.zeros_(self.head.bias)

    def num_stages(self) -> int:
        return 1

    def stage_for_epoch(self, epoch: int) -> int:
        return 0

    def step_scores(self, question_ids: Sequence[Sequence[int]], thoughts: torch.Tensor) -> torch.Tensor:
        """Score every thought of every trajectory.

        Args:
            question_ids: one token list per trajectory.
            thoughts: (rows, k, hidden) the fed-back thoughts.

        Returns:
            (rows, k) step scores ``r_t`` (float32).
        """
        device = self.head.weight.device
        bot = [self.config.bot_token_id] if self.config.bot_token_id >= 0 else []
        prefixes = [list(q) + bot for q in question_ids]
        width = max(len(p) for p in prefixes)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prefixes], dtype=torch.long, device=device)
        mask = torch.tensor(
            [[0] * (width - len(p)) + [1] * len(p) for p in prefixes], dtype=torch.long, device=device
        )
        rows, k, _ = thoughts.shape
        embeds = torch.cat(
            [self.backbone.get_input_embeddings()(ids), thoughts.to(device, self.head.weight.dtype)], 1
        )
        mask = torch.cat([mask, mask.new_ones(rows, k)], 1)
        none = torch.zeros_like(mask, dtype=torch.bool)
        hidden = latent_forward(self.backbone, embeds, mask, none).hidden_states[
            :, width:
        ]  # (rows, k, hidden)
        return self.head(hidden).squeeze(-1).float()

    def pool(self, step_scores: torch.Tensor) -> torch.Tensor:
        """(rows, k) -> (rows,) trajectory scores."""
        if self.config.pooling == "last":
            return step_scores[:, -1]
        if self.config.pooling == "min":
            return step_scores.min(1).values
        return step_scores.mean(1)

    @torch.no_grad()
    def score(self, question_ids: Sequence[Sequence[int]], thoughts: torch.Tensor) -> torch.Tensor:
        """(rows,) trajectory scores, higher = more likely right."""
        return self.pool(self.step_scores(question_ids, thoughts))

    # --- the trainer's interface ------------------------------------------------------------

    def collate(self, groups: Sequence[ThoughtGroup], stage: int = 0) -> Batch:
        """Groups of equal N flattened to rows; ``n_samples`` says how to fold them back."""
        n = {len(g.labels) for g in groups}
        if len(n) != 1:
            raise LatentCotError(
                f"reward model: every group needs the same number of samples (got {sorted(n)})"
            )
        return {
            "question_ids": [g.question_ids for g in groups for _ in range(len(g.labels))],
            "thoughts": torch.cat([g.thoughts for g in groups]),
            "labels": torch.cat([g.labels for g in groups]).float(),
            "n_samples": n.pop(),
        }

    def forward(self, batch: Batch) -> LossOutput:
        n = batch["n_samples"]
        scores = self.step_scores(batch["question_ids"], batch["thoughts"])  # (rows, k)
        loss = stepwise_contrastive_loss(
            scores.reshape(-1, n, scores.shape[1]), batch["labels"].to(scores.device).reshape(-1, n)
        )
        return LossOutput(loss, {"loss": float(loss.detach())})


def stepwise_contrastive_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The reference's objective: softmax over the N samples at each step, cross-entropy against the labels.

    Args:
        scores: (questions, N, k) step scores.
        labels: (questions, N) 1 for right samples, 0 for wrong ones.

    Returns:
        ``− mean_{q,t} Σ_n y_{q,n} log softmax_n(r_{q,n,t})``.
    """
    log_p = F.log_softmax(scores, dim=1)  # over samples
    return -(labels[:, :, None] * log_p).sum(1).mean()


def reward_model_from(
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    bot_token_id: int | None,
    pooling: str = "mean",
) -> LatentRewardModel:
    """A reward model initialised from (a deep copy of) the reasoner's backbone, as the reference does;
    ``bot_token_id`` None: the reasoner puts nothing between question and thoughts (graph layout)."""
    bot = -1 if bot_token_id is None else bot_token_id
    config = from_dict(RewardConfig, {"pooling": pooling, "bot_token_id": bot}, where="reward")
    return LatentRewardModel(config, copy.deepcopy(backbone), tokenizer)


def informative_groups(groups: Sequence[ThoughtGroup]) -> list[ThoughtGroup]:
    """The groups with at least one right and one wrong sample (the reference drops the others)."""
    return [g for g in groups if 0 < float(g.labels.sum()) < len(g.labels)]


def load_reward_model(path: str | Path) -> LatentRewardModel:
    """A trained reward model from a checkpoint folder, or a run folder (its latest checkpoint)."""
    from latentcot.data.tokenizer import load_tokenizer
    from latentcot.models import load_backbone
    from latentcot.train import checkpoint as ckpt

    folder = ckpt.resolve_checkpoint(path)
    info = ckpt.read_info(folder)
    if info.get("method") != LatentRewardModel.name:
        raise LatentCotError(f"{folder}: a '{info.get('method')}' checkpoint, not a latent reward model")
    config = from_dict(
        RewardConfig, info["config"]["reward"], where=f"{folder}/latentcot.json: config.reward"
    )
    model = LatentRewardModel(config, load_backbone(folder), load_tokenizer(folder))
    ckpt.load_checkpoint(folder, model)  # type: ignore[arg-type]
    return model.eval()


def train_reward_model(
    model: LatentRewardModel,
    groups: Sequence[ThoughtGroup],
    run_dir: str | Path,
    steps: int = 300,
    batch_size: int = 8,
    lr: float = 1e-4,
    seed: int = 0,
) -> dict[str, float]:
    """Train with latentcot's trainer on the informative groups; the checkpoint lands in ``run_dir``."""
    from latentcot.train.config import TrainConfig
    from latentcot.train.trainer import Trainer

    kept = informative_groups(groups)
    if len(kept) < batch_size:
        raise LatentCotError(
            f"reward model: {len(kept)} questions with both right and wrong samples; need >= {batch_size}"
        )
    cfg = TrainConfig(
        lr=lr,
        batch_size=batch_size,
        max_steps=steps,
        seed=seed,
        log_every=max(1, steps // 10),
        warmup_steps=min(20, steps // 10),
        distributed="none",
    )
    run_config = {"reward": to_dict(model.config), "train": to_dict(cfg), "num_groups": len(kept)}
    trainer = Trainer(model, kept, cfg, run_dir, run_config=run_config)  # type: ignore[arg-type]
    metrics = trainer.fit()
    model.eval()
    return metrics
