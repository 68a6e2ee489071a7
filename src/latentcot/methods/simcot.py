"""SIM-CoT: step-level supervision of implicit chain of thought (Wei et al. 2025, arXiv:2509.20317).

A plug-in on Coconut or CODI (composition: :class:`SimCot` holds the base method). During
training an auxiliary *step decoder* reads each latent — or each group of ``c`` latents — as a
prefix embedding and is trained to write that latent's own reasoning step::

    decoder row:  z_{g,1} … z_{g,c}  step_g\\n <eos>        (loss on step_g\\n <eos>)

    L = L_base + λ · CE_step                                 (paper Eq. 3)

Alignment of steps to latent groups (``g = 0 … G-1``, ``G = latents // c``): group ``g`` writes
the ``g``-th replaced step; when an example has more replaced steps than groups, the extra
steps are merged into the last group's target (written one after the other); when it has fewer,
the remaining groups are *missing* and follow ``missing_steps``: ``answer`` — the target is what
follows ``<eot>`` at the last stage, ``### answer`` (the reference code), ``eos`` — just ``<eos>``
("no step here"), or ``none`` — no loss for that group.

Defaults follow the SIM-CoT reference code (its Coconut variant, ``CoconutGPT_Same_Word_Embedding``
in github.com/InternLM/SIM-CoT): the step cross-entropy is summed over each row's tokens and
divided by the number of rows (``step_loss_norm: rows``; ``tokens`` is the per-token mean), the
decoder reads step tokens through the base model's input embedding (``decoder_embedding: base``),
and decoder positions start at 1 (``decoder_first_position``).

Every group of every example of the batch is decoded in ONE teacher-forced pass over the
flattened (batch·groups) rows. The decoder is a separate copy of the backbone (paper), the
backbone itself (``shared``) or a LoRA adapter on it (``lora``, needs ``peft``). It is never used
by :meth:`SimCot.reason`, so inference costs exactly what the base method costs; its weights
(state-dict keys ``step_decoder.*``) are saved to ``step_decoder.safetensors`` and a checkpoint
without that file loads with no decoder built at all.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.config import from_dict, option
from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError
from latentcot.latent import latent_forward
from latentcot.latent.cache import new_cache
from latentcot.latent.generate import Generation
from latentcot.latent.loop import _cache_keyword, prefix_unlabelled
from latentcot.methods.base import Batch, LossOutput, ReasonOutput
from latentcot.methods.coconut import Coconut, CoconutConfig
from latentcot.methods.codi import Codi, CodiConfig, apply_lora
from latentcot.methods.sequences import ANSWER_SEPARATOR, answer_ids, encode, steps_ids

STEP_DECODER = "step_decoder."  # the checkpoint writer's prefix for the droppable decoder file
BASES: dict[str, tuple[type, type]] = {"coconut": (CoconutConfig, Coconut), "codi": (CodiConfig, Codi)}


@dataclass
class SimCotConfig:
    base: Literal["coconut", "codi"] = option("coconut", "the implicit-CoT method SIM-CoT supervises")
    base_options: dict[str, Any] = option(
        {}, "the base method's options, e.g. {c_thought: 1, max_latent_stage: 6}"
    )
    step_loss_weight: float = option(1.0, "weight of the step decoder's cross-entropy (lambda)")
    latents_per_step: int = option(
        0, "latents the decoder reads per step (c); 0 = Coconut's c_thought, 1 for CODI"
    )
    decoder: Literal["copy", "shared", "lora"] = option(
        "copy", "step decoder: a copy of the backbone (paper), the backbone itself, or a LoRA adapter on it"
    )
    lora_rank: int = option(8, "adapter rank when decoder is 'lora'")
    missing_steps: Literal["answer", "eos", "none"] = option(
        "answer",
        "latent groups past an example's last step: target '### answer' (reference code), '<eos>' only, "
        "or no loss",
    )
    step_loss_norm: Literal["rows", "tokens"] = option(
        "rows",
        "step CE summed over each row's tokens and divided by the rows (reference code), or the mean "
        "over tokens (the reference's loss_level=token_level)",
    )
    decoder_embedding: Literal["base", "own"] = option(
        "base", "embedding the decoder reads step tokens through: the base model's (reference code) or its own"
    )
    decoder_first_position: int = option(1, "position id of the decoder's first latent (reference code: 1)")
    max_step_tokens: int = option(32, "longest decoder target (tokens, eos included) and decoding budget")
    decoder_start_epoch: int = option(
        0,
        "two-stage schedule: epochs of base-only training before the joint stage (0 = joint from the start)",
    )
    build_step_decoder: bool = option(True, "build the decoder (training); False for inference-only use")

    def __post_init__(self) -> None:
        base_cfg: Any = from_dict(BASES[self.base][0], self.base_options, where="method.base_options")
        c = self.group_size()
        if self.base == "coconut":
            if self.latents_per_step not in (0, base_cfg.c_thought):
                raise LatentCotError("method.latents_per_step: with Coconut it must be 0 or c_thought")
        elif base_cfg.num_latents % c:
            raise LatentCotError(
                f"method.latents_per_step: {c} does not divide num_latents {base_cfg.num_latents}"
            )
        for key in ("decoder_start_epoch", "latents_per_step", "decoder_first_position"):
            if getattr(self, key) < 0:
                raise LatentCotError(f"method.{key}: must be >= 0, got {getattr(self, key)}")
        if self.max_step_tokens < 1:
            raise LatentCotError(f"method.max_step_tokens: must be >= 1, got {self.max_step_tokens}")

    def group_size(self) -> int:
        """c: latents per step."""
        if self.latents_per_step:
            return self.latents_per_step
        return int(self.base_options.get("c_thought", 1)) if self.base == "coconut" else 1


def align_steps(steps: Sequence[str], groups: int, per: int = 1) -> list[list[str]]:
    """The steps each of ``groups`` latent groups writes: ``per`` each (Coconut's ``steps_per_stage``),
    extras merged into the last group, ``[]`` for groups past the last step (a missing step)."""
    if groups == 0:
        return []
    return [list(steps[g * per : (g + 1) * per]) for g in range(groups - 1)] + [list(steps[(groups - 1) * per :])]


class SimCot(nn.Module):
    """The base method plus a step decoder trained on its latents.

    The base's submodules (``backbone``, CODI's ``projection``) are registered here under their
    own names, so a SIM-CoT checkpoint is the base's weights plus ``step_decoder.*``.

    Args:
        config: a :class:`SimCotConfig`.
        backbone: a Hugging Face causal LM.
        tokenizer: its tokenizer (the base adds its tokens in place).
    """

    name = "simcot"
    base: Coconut | Codi  # held, not registered (see above)
    backbone: PreTrainedModel  # the base's, registered by name

    def __init__(self, config: SimCotConfig, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        base_cfg_cls, base_cls = BASES[config.base]
        base = base_cls(
            from_dict(base_cfg_cls, config.base_options, "method.base_options"), backbone, tokenizer
        )
        object.__setattr__(self, "base", base)  # not a child: its parts are registered below
        for child_name, child in base.named_children():
            self.add_module(child_name, child)
        self.config, self.tokenizer, self.c = config, tokenizer, config.group_size()
        self.reset_optimizer_per_stage = base.reset_optimizer_per_stage
        self._separator = encode(tokenizer, ANSWER_SEPARATOR)[-1]
        self.step_decoder: nn.Module | None = None
        if config.build_step_decoder:
            self.build_step_decoder()

    # --- the decoder ------------------------------------------------------------------------

    def build_step_decoder(self) -> None:
        """Create the step decoder (a copy of the backbone, or the ``lora`` adapter)."""
        if self.config.decoder == "copy":
            self.step_decoder = copy.deepcopy(self.backbone)
        elif self.config.decoder == "lora":
            apply_lora(self.backbone, self.config.lora_rank, 2 * self.config.lora_rank, "step_decoder")
            self.backbone.disable_adapters()  # the base passes never see it

    @property
    def has_step_decoder(self) -> bool:
        return self.config.decoder != "copy" or self.step_decoder is not None

    @contextmanager
    def _decoder(self) -> Iterator[PreTrainedModel]:
        if not self.has_step_decoder:
            raise LatentCotError(
                "this SIM-CoT model has no step decoder (checkpoint without step_decoder.safetensors)"
            )
        if self.config.decoder == "copy":
            yield self.step_decoder  # type: ignore[misc]
        elif self.config.decoder == "shared":
            yield self.backbone
        else:
            self.backbone.enable_adapters()
            try:
                yield self.backbone
            finally:
                self.backbone.disable_adapters()

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Build the copied decoder only when the state holds its weights; drop it otherwise."""
        if self.config.decoder == "copy":
            wanted = any(k.startswith(STEP_DECODER) for k in state_dict)
            if wanted and self.step_decoder is None:
                self.build_step_decoder()
            elif not wanted:
                self.step_decoder = None
        return super().load_state_dict(state_dict, strict, assign)

    def train(self, mode: bool = True) -> SimCot:
        super().train(mode)
        self.base.train(mode)
        return self

    # --- curriculum -------------------------------------------------------------------------

    def num_stages(self) -> int:
        """The base's stages, twice over with a two-stage schedule (base-only, then joint)."""
        return self.base.num_stages() * (2 if self.config.decoder_start_epoch else 1)

    def stage_for_epoch(self, epoch: int) -> int:
        joint = self.config.decoder_start_epoch and epoch >= self.config.decoder_start_epoch
        return self.base.stage_for_epoch(epoch) + (self.base.num_stages() if joint else 0)

    def _split_stage(self, stage: int) -> tuple[int, bool]:
        n = self.base.num_stages()
        return stage % n, not self.config.decoder_start_epoch or stage >= n

    # --- training ---------------------------------------------------------------------------

    def step_targets(self, steps: Sequence[str], groups: int, answer: str = "") -> list[list[int] | None]:
        """Decoder target ids (``step\\n … <eos>``) per latent group; None where no loss. A missing
        group writes ``### answer<eos>`` (``missing_steps: answer``), ``<eos>`` or nothing."""
        eos, missing = self.tokenizer.eos_token_id, self.config.missing_steps
        out: list[list[int] | None] = []
        per = self.base.config.steps_per_stage if isinstance(self.base, Coconut) else 1
        for target in align_steps(steps, groups, per):
            if target:
                ids = steps_ids(self.tokenizer, target) + [eos]
            elif missing == "none":
                out.append(None)
                continue
            else:
                ids = answer_ids(self.tokenizer, answer) if missing == "answer" else [eos]
            out.append(ids[-self.config.max_step_tokens :])
        return out

    def collate(self, examples: Sequence[ReasoningExample], stage: int = 0) -> Batch:
        """The base batch plus ``step_ids``/``step_mask`` (rows, tokens) — one row per supervised
        latent group — ``step_source`` (rows,): the group's index in the flattened (batch·groups)
        latents, and ``joint``: whether the step loss is on at this stage."""
        base_stage, joint = self._split_stage(stage)
        batch = self.base.collate(examples, base_stage)
        # each row's own stage (Coconut's uniform_prob draws one per row; CODI has one for all)
        stages = batch["row_stage"].tolist() if "row_stage" in batch else [base_stage] * len(examples)
        layouts = [self.base.layout(len(ex.steps), s) for ex, s in zip(examples, stages)]
        max_groups = max(k for _, k in layouts) // self.c
        ids, source = [], []
        for b, (ex, (replaced, k)) in enumerate(zip(examples, layouts)):
            for g, target in enumerate(self.step_targets(ex.steps[:replaced], k // self.c, ex.answer)):
                if target is not None:
                    ids.append(target)
                    source.append(b * max_groups + g)
        width = max((len(t) for t in ids), default=0)
        batch["step_ids"] = torch.tensor(
            [t + [self.tokenizer.pad_token_id] * (width - len(t)) for t in ids], dtype=torch.long
        ).reshape(len(ids), width)
        batch["step_mask"] = torch.tensor(
            [[1] * len(t) + [0] * (width - len(t)) for t in ids], dtype=torch.long
        ).reshape(len(ids), width)
        batch["step_source"] = torch.tensor(source, dtype=torch.long)
        batch["joint"] = joint
        return batch

    def _base_losses(self, batch: Batch) -> tuple[LossOutput, torch.Tensor]:
        if isinstance(self.base, Codi):
            out, latents, _ = self.base.losses(batch)
            return out, latents
        ids = batch["input_ids"]  # Coconut: its loss, keeping the thoughts
        labels, latent_mask = batch["labels"], ids == self.base.tokens.latent
        fwd = latent_forward(
            self.backbone,
            self.backbone.get_input_embeddings()(ids),
            batch["attention_mask"],
            latent_mask,
            self.base.project,
            prefix_states=not prefix_unlabelled(latent_mask, labels),
        )
        targets, keep = labels[:, 1:], labels[:, 1:] != -100
        head = self.backbone.get_output_embeddings()
        per_token = F.cross_entropy(head(fwd.hidden_states[:, :-1][keep]).float(), targets[keep], reduction="none")
        loss = per_token.mean()  # lm_loss, keeping each token's term for the answer's
        # the answer's first token follows the separator's last token (predicted at that column):
        # its loss shows when the readout is learned
        columns = torch.arange(labels.shape[1], device=labels.device)
        last = torch.where(labels == self._separator, columns, -1).max(1).values  # (batch,)
        answer = torch.zeros_like(keep)
        answer[last >= 0, last[last >= 0]] = True
        answer = answer[keep]
        logs = {"loss": float(loss.detach()), "answer_loss": float(per_token[answer].mean().detach())}
        if self.base.config.thought_targets:  # labels predicted from a thought are thought_targets' only
            named = (ids[:, :-1] == self.base.tokens.latent)[keep]
            logs["thought_target_loss"] = float(per_token[named].mean().detach()) if named.any() else 0.0
        return LossOutput(loss, logs), fwd.latents

    def _token_embeddings(self, decoder: PreTrainedModel, ids: torch.Tensor) -> torch.Tensor:
        """Step tokens as the decoder reads them: through the base's embedding or its own."""
        table = self.backbone if self.config.decoder_embedding == "base" else decoder
        return table.get_input_embeddings()(ids).to(decoder.dtype)

    def _positions(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        first = self.config.decoder_first_position + start
        return torch.arange(first, first + x.shape[1], device=x.device).expand(x.shape[0], -1)

    def step_loss(self, latents: torch.Tensor, batch: Batch) -> torch.Tensor:
        """CE of the decoder writing each group's step, all groups in one pass.

        ``step_loss_norm: rows`` sums over each row's tokens and divides by the rows, as the
        reference code does; ``tokens`` is the mean over tokens.

        Args:
            latents: (batch, max_latents, hidden) thoughts from the base's forward.
            batch: from :meth:`collate` (``step_ids``, ``step_mask``, ``step_source``).
        """
        b, k, hidden = latents.shape
        prefix = latents.reshape(b * (k // self.c), self.c, hidden)[batch["step_source"]]  # (rows, c, hidden)
        ids, mask = batch["step_ids"], batch["step_mask"]
        with self._decoder() as decoder:
            embeds = torch.cat([prefix.to(decoder.dtype), self._token_embeddings(decoder, ids)], 1)  # (rows, c+T, hidden)
            full_mask = torch.cat([mask.new_ones(len(ids), self.c), mask], 1)  # right-padded
            h = decoder.base_model(
                inputs_embeds=embeds, attention_mask=full_mask, position_ids=self._positions(embeds), use_cache=False
            ).last_hidden_state
            keep = mask.bool()  # step token t is predicted at position c - 1 + t
            logits = decoder.get_output_embeddings()(h[:, self.c - 1 : -1][keep])  # (tokens, vocab)
            total = F.cross_entropy(logits.float(), ids[keep], reduction="sum")
        return total / (len(ids) if self.config.step_loss_norm == "rows" else keep.sum())

    def forward(self, batch: Batch) -> LossOutput:
        out, latents = self._base_losses(batch)
        if not batch["joint"] or batch["step_source"].numel() == 0:
            return LossOutput(out.loss, {**out.logs, "step_loss": 0.0})
        step = self.step_loss(latents, batch)
        loss = out.loss + self.config.step_loss_weight * step
        return LossOutput(loss, {**out.logs, "loss": float(loss.detach()), "step_loss": float(step.detach())})

    # --- inference --------------------------------------------------------------------------

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
        """The base method's inference, untouched (the decoder is never run here)."""
        return self.base.reason(questions, max_new_tokens, n_latents, temperature, top_p, generator)

    @torch.no_grad()
    def decode_steps(self, latents: torch.Tensor, max_new_tokens: int | None = None) -> list[list[str]]:
        """Greedy text the decoder writes for each latent group, all groups in one batch.

        Args:
            latents: (batch, k, hidden) thoughts (e.g. ``reason(...).latents``); k a multiple of c.
            max_new_tokens: budget per step (default ``max_step_tokens``).

        Returns:
            Per example, one string per group of ``c`` latents.
        """
        b, k, hidden = latents.shape
        groups, eos = k // self.c, self.tokenizer.eos_token_id
        x = latents.reshape(b * groups, self.c, hidden)  # (rows, c, hidden)
        finished = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        written: list[torch.Tensor] = []
        with self._decoder() as decoder:
            x, cache, seen = x.to(decoder.dtype), new_cache(decoder.config), 0
            keyword = _cache_keyword(type(decoder.base_model))
            for _ in range(max_new_tokens or self.config.max_step_tokens):
                h = decoder.base_model(
                    inputs_embeds=x, position_ids=self._positions(x, seen), use_cache=True, **{keyword: cache}
                ).last_hidden_state
                token = torch.where(finished, eos, decoder.get_output_embeddings()(h[:, -1]).argmax(-1))
                written.append(token)
                finished |= token == eos
                if finished.all():
                    break
                seen += x.shape[1]
                x = self._token_embeddings(decoder, token[:, None])
        tokens = torch.stack(written, 1)  # (rows, steps); eos again after a row's eos
        stops = tokens == eos
        lengths = torch.where(stops.any(1), stops.int().argmax(1) + 1, tokens.shape[1])
        rows = Generation(tokens, lengths, len(written), eos).rows()
        texts = [t.strip() for t in self.tokenizer.batch_decode(rows, skip_special_tokens=True)]
        return [texts[i * groups : (i + 1) * groups] for i in range(b)]

    def latent_steps(self, latents: torch.Tensor) -> list[list[str]]:
        """Per example, the decoded step of each latent: :meth:`decode_steps` with each group's
        step repeated for its ``c`` latents."""
        return [[step for step in groups for _ in range(self.c)] for groups in self.decode_steps(latents)]

    def target_texts(self, steps: Sequence[str], groups: int, answer: str = "") -> list[str]:
        """The text each of ``groups`` latent groups should decode to (as :meth:`decode_steps` writes
        it; '' = none), laid out as training lays them out: on Coconut, fewer groups than its
        ``max_latent_stage`` are the thoughts of that stage, which stand for the first ``groups``
        steps (the rest is still written as text), not all the steps with the extras merged in."""
        if isinstance(self.base, Coconut):
            last = self.base.config.max_latent_stage
            replaced, k = self.base.layout(len(steps), groups if groups < last else last + 1)
            if k == groups * self.c:
                steps = steps[:replaced]
        targets = [(t or [])[:-1] for t in self.step_targets(steps, groups, answer)]  # without eos
        return [t.strip() for t in self.tokenizer.batch_decode(targets, skip_special_tokens=True)]


def with_step_decoder(method: object) -> SimCot | None:
    """``method`` when it is a SIM-CoT model whose step decoder is loaded, else None."""
    return method if isinstance(method, SimCot) and method.has_step_decoder else None
