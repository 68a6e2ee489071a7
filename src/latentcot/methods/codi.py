"""CODI: continuous chain-of-thought via self-distillation (Shen et al. 2025, arXiv:2502.21074).

One model plays two roles in one batch. The *teacher* reads the written steps; the *student*
thinks ``k`` continuous thoughts (each last hidden state goes through a projection — a
two-layer MLP then LayerNorm — before it is fed back) and then writes the answer::

    teacher:  question\\n step_1\\n … step_n\\n ### answer<eos>
    student:  question\\n <bot> <latent>×k <eot> ### answer<eos>

Loss (paper Eq. 5): ``α·CE_teacher + β·CE_student + γ·L_KD`` with

    L_KD = 1/L · Σ_l  d(sg[h_T^l], h_S^l) / std(sg[h_T^l])

over every transformer layer ``l`` at the *distillation position*: the token before the
answer. In our layout that is the last token of the ``###`` separator — the position whose
output predicts the first answer token, as the ":" of "The answer is:" does in the paper.
Both roles end in the same ``### answer<eos>`` tokens, so the position is found from the end
of each row. ``d`` is L1 (paper), smooth-L1 or MSE.

Teacher and student rows go through :func:`latentcot.latent.latent_forward` together
(2·batch rows, ``all_layers=True``): teacher rows simply have no latents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.config import option
from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError
from latentcot.latent import latent_forward, lm_loss
from latentcot.latent.diagnostics import mean_embedding_norm
from latentcot.latent.loop import Project, scaled_to
from latentcot.methods.base import Batch, LossOutput, ReasonOutput
from latentcot.methods.sequences import (
    ANSWER_SEPARATOR,
    Row,
    answer_ids,
    complete,
    encode,
    pad_rows,
    prepare_backbone,
    question_ids,
    steps_ids,
)

LossType = Literal["l1", "smooth_l1", "mse"]


@dataclass
class CodiConfig:
    num_latents: int = option(6, "continuous thoughts of the student (k)")
    alpha: float = option(1.0, "weight of the teacher's cross-entropy (alpha)")
    beta: float = option(1.0, "weight of the student's cross-entropy (beta)")
    gamma: float = option(1.0, "weight of the hidden-state distillation (gamma)")
    distill_loss: LossType = option("l1", "distance between teacher and student hidden states")
    normalize: bool = option(True, "divide each layer's distance by the teacher's std at that layer")
    drop_last_step: bool = option(
        False, "teacher CoT without its last step (the paper does this on GSM8k-Aug)"
    )
    projection: bool = option(True, "MLP + LayerNorm on each thought before it is fed back")
    latent_scale: Literal["none", "embedding"] = option(
        "none",
        "'none' feeds the projected thought back as is (paper); 'embedding' then rescales it to the mean norm "
        "of the input token embeddings (a departure for models trained from scratch: the projection's LayerNorm "
        "gives thoughts of norm ~sqrt(hidden), against token embeddings of ~0.7)",
    )
    lora_rank: int = option(0, "LoRA rank on the backbone through peft (0 = train every weight)")
    lora_alpha: int = option(32, "LoRA scaling numerator (with lora_rank > 0)")
    init_token: str = option("", "token whose embedding initialises <bot>/<latent>/<eot> ('' = eos)")

    def __post_init__(self) -> None:
        if self.num_latents < 1:
            raise LatentCotError(f"num_latents: must be >= 1, got {self.num_latents}")
        if self.lora_rank < 0:
            raise LatentCotError(f"lora_rank: must be >= 0, got {self.lora_rank}")


def apply_lora(backbone: PreTrainedModel, rank: int, alpha: int, adapter_name: str = "default") -> None:
    """Add a LoRA adapter to ``backbone`` in place (``transformers``' peft integration) and freeze
    the base weights. Needs the optional ``peft`` package (``pip install latentcot[lora]``)."""
    try:
        from peft import LoraConfig
    except ImportError as err:
        raise LatentCotError("lora_rank > 0 needs the optional 'peft' package (pip install peft)") from err
    backbone.add_adapter(
        LoraConfig(r=rank, lora_alpha=alpha, target_modules="all-linear"), adapter_name=adapter_name
    )


def distillation_loss(
    student: Sequence[torch.Tensor],
    teacher: Sequence[torch.Tensor],
    kind: LossType = "l1",
    normalize: bool = True,
) -> torch.Tensor:
    """CODI's L_KD: mean over layers of d(student, sg[teacher]) / std(sg[teacher]).

    Args:
        student: per layer, (batch, hidden) student hidden states at the distillation position.
        teacher: the same for the teacher (detached here: the teacher is not pulled to the student).
        kind: ``l1`` (paper), ``smooth_l1`` or ``mse``.
        normalize: divide each layer's distance by the teacher's std at that layer (paper).

    Returns:
        A float32 scalar, zero exactly when the student equals the teacher.
    """
    distance = {"l1": F.l1_loss, "smooth_l1": F.smooth_l1_loss, "mse": F.mse_loss}[kind]
    total = student[0].new_zeros((), dtype=torch.float32)
    for h_s, h_t in zip(student, teacher, strict=True):
        h_t = h_t.detach().float()
        d = distance(h_s.float(), h_t)
        total = total + (d / h_t.std().clamp(min=1e-6) if normalize else d)
    return total / len(student)


class Codi(nn.Module):
    """Teacher and student in one model; ``reason`` runs the student.

    Args:
        config: a :class:`CodiConfig`.
        backbone: a Hugging Face causal LM.
        tokenizer: its tokenizer (``<bot>``/``<latent>``/``<eot>`` added in place).
    """

    name = "codi"
    reset_optimizer_per_stage = False

    def __init__(self, config: CodiConfig, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.config, self.backbone, self.tokenizer = config, backbone, tokenizer
        self.tokens = prepare_backbone(backbone, tokenizer, init_token=config.init_token)
        if config.lora_rank:
            apply_lora(backbone, config.lora_rank, config.lora_alpha)
        hidden = backbone.config.hidden_size
        self.projection = (
            nn.Sequential(
                nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.LayerNorm(hidden)
            )
            if config.projection
            else nn.Identity()
        ).to(backbone.device)
        self.separator_length = len(encode(tokenizer, ANSWER_SEPARATOR))

    @property
    def project(self) -> Project:
        """What is applied to each thought before it is fed back: the projection, then (with
        ``latent_scale: embedding``) the rescaling to the embeddings' norm, measured once per call."""
        if self.config.latent_scale == "none":
            return self.projection
        return scaled_to(mean_embedding_norm(self.backbone), self.projection)

    def num_stages(self) -> int:
        return 1

    def stage_for_epoch(self, epoch: int) -> int:
        return 0

    def layout(self, num_steps: int, stage: int = 0) -> tuple[int, int]:
        """(steps replaced, thoughts): the student replaces every step with ``num_latents`` thoughts."""
        return num_steps, self.config.num_latents

    def collate(self, examples: Sequence[ReasoningExample], stage: int = 0) -> Batch:
        """Teacher rows first, then student rows (2·batch rows); ``distill_index`` (2·batch,) is
        the column of each row's distillation position."""
        t, k = self.tokens, self.config.num_latents
        teacher, student = [], []
        for ex in examples:
            steps = ex.steps[:-1] if self.config.drop_last_step else ex.steps
            answer = answer_ids(self.tokenizer, ex.answer)
            question = question_ids(self.tokenizer, ex.question)
            cot = steps_ids(self.tokenizer, steps) + answer
            teacher.append(Row(question, cot, cot))
            student.append(
                Row(question + [t.bot], [t.latent] * k + [t.eot] + answer, [-100] * (k + 1) + answer)
            )
        rows = teacher + student
        batch = pad_rows(rows, self.tokenizer.pad_token_id)
        # every row ends in "### answer<eos>": count back from the row's last real column
        answer_len = torch.tensor([len(answer_ids(self.tokenizer, ex.answer)) for ex in examples] * 2)
        last = batch["attention_mask"].cumsum(1).argmax(1)  # last real column per row
        batch["distill_index"] = last - answer_len + self.separator_length
        return batch

    def losses(self, batch: Batch) -> tuple[LossOutput, torch.Tensor, torch.Tensor]:
        """The CODI loss, plus the student's thoughts (batch, k, hidden) and their counts (batch,)
        (SIM-CoT decodes them)."""
        cfg, ids = self.config, batch["input_ids"]
        n = ids.shape[0] // 2
        embeds = self.backbone.get_input_embeddings()(ids)
        out = latent_forward(
            self.backbone,
            embeds,
            batch["attention_mask"],
            ids == self.tokens.latent,
            self.project,
            all_layers=True,
        )
        labels = batch["labels"]
        ce_teacher = lm_loss(self.backbone, out.hidden_states[:n], labels[:n])
        ce_student = lm_loss(self.backbone, out.hidden_states[n:], labels[n:])
        rows = torch.arange(2 * n, device=ids.device)
        at = batch["distill_index"]
        assert out.layer_hidden_states is not None
        picked = [layer[rows, at] for layer in out.layer_hidden_states[1:]]  # per layer (2n, hidden)
        kd = distillation_loss(
            [h[n:] for h in picked], [h[:n] for h in picked], cfg.distill_loss, cfg.normalize
        )
        loss = cfg.alpha * ce_teacher + cfg.beta * ce_student + cfg.gamma * kd
        logs = {"loss": float(loss.detach()), "ce_teacher": float(ce_teacher.detach()),
                "ce_student": float(ce_student.detach()), "distill": float(kd.detach())}  # fmt: skip
        return LossOutput(loss, logs), out.latents[n:], out.latent_counts[n:]

    def forward(self, batch: Batch) -> LossOutput:
        return self.losses(batch)[0]

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
        """The student: ``n_latents`` projected thoughts (default ``num_latents``), then ``### answer``."""
        k = self.config.num_latents if n_latents is None else n_latents
        t = self.tokens
        prompts = [
            Row(question_ids(self.tokenizer, q) + [t.bot], [t.latent] * k + [t.eot], []) for q in questions
        ]
        return complete(
            self.backbone, self.tokenizer, prompts, max_new_tokens, t.latent, self.project, temperature, top_p,
            generator,
        )  # fmt: skip
