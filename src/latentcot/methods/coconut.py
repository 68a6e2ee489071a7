"""Coconut: chain of continuous thought (Hao et al. 2024, arXiv:2412.06769).

The last hidden state is fed back as the next input embedding instead of a written token.
Training follows the paper's curriculum: at stage ``s`` the first ``s`` written steps are
replaced by ``s·c`` continuous thoughts (``c = c_thought``; ``steps_per_stage: g`` makes it the first
``s·g`` steps, our option for fewer thoughts than steps)::

    question\\n <bot> <latent>×(s·c) <eot> step_{s+1}\\n … ### answer<eos>

and the loss covers what follows ``<eot>``. Stages ``0 … max_latent_stage`` are the paper's
(same rows, same loss); one more stage (``max_latent_stage + 1``) drops every remaining step and uses
``max_latent_stage·c`` thoughts (``min(steps, max_latent_stage)·c`` unless
``pad_latent_to_max``), the setting the paper trains last and evaluates. The trainer asks
:meth:`Coconut.stage_for_epoch` which stage an epoch uses (``epoch // epochs_per_stage``), and
resets the optimizer when the stage changes if ``reset_optimizer_per_stage``. The reference
code's loop differs: a fresh AdamW every epoch, weight decay on every parameter, constant lr
without warm-up or clipping, the last partial batch kept — ``latentcot.train.config.REFERENCE_LOOP``
sets the trainer that way (docs/latent_methods.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.config import option
from latentcot.data.graph import Graph, distances, graph_of, hops, optimal_levels, walk_frontiers
from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError
from latentcot.latent.diagnostics import mean_embedding_norm
from latentcot.latent.loop import Project, latent_forward, lm_loss, scaled_to, soft_tokens
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
    sft_loss,
    steps_ids,
)


@dataclass
class CoconutConfig:
    c_thought: int = option(1, "continuous thoughts per replaced reasoning step (c)")
    max_latent_stage: int = option(6, "last curriculum stage that replaces steps one by one")
    steps_per_stage: int = option(
        1, "written steps each stage replaces with its c thoughts (1: the paper's); 2 lets 4 stages of thoughts "
        "stand for 7 or 8 steps, one pair of steps per thought group, where 1 leaves every step past the 3rd "
        "to the 4th group",
    )
    epochs_per_stage: int = option(5, "epochs spent on each curriculum stage")
    stage_epochs: list[int] = option(
        [], "epochs of each curriculum stage in order, e.g. [12, 4] = 12 epochs in the first stage and 4 in "
        "every later one (the last entry repeats); [] = epochs_per_stage for every stage",
    )
    pad_latent_to_max: bool = option(True, "final stage: always max_latent_stage*c thoughts, as at inference")
    uniform_prob: float = option(
        0.0, "probability that an example trains on a stage drawn uniformly from its own (0 … its step groups)"
    )
    reset_optimizer_per_stage: bool = option(True, "trainer resets the optimizer state when the stage changes")
    no_curriculum: bool = option(False, "train on the final stage from the start (paper's 'w/o curriculum')")
    start_stage: int = option(
        0, "first curriculum stage; 1 skips stage 0 (CoT) when the backbone starts from a trained CoT model "
        "(model.init_from), as the paper's GSM8k recipe does",
    )
    latent_token_names: Literal["default", "coconut"] = option(
        "default", "'default' (<bot> <latent> <eot>) or 'coconut' (<|start-latent|> <|latent|> <|end-latent|>)"
    )
    init_token: str = option("", "token whose embedding initialises the new special tokens ('' = eos)")
    supervision: Literal["steps", "frontier"] = option(
        "steps",
        "'steps': stage s replaces the first s written steps (Coconut); 'frontier': graph questions "
        "(task prosqa_graph) — at stage s < hops the model thinks s thoughts and names one node at depth "
        "s+1 of a shortest path, at stage >= hops it answers ('Reasoning by Superposition', arXiv:2505.12514)",
    )
    frontier_nodes: Literal["path", "walk", "reach"] = option(
        "path",
        "supervision frontier: which nodes stage s names (one drawn uniformly per row) and thought s+1 should "
        "hold: 'path' = depth s+1 of a shortest root->target path (the reference's neighbor_k); 'walk' = the "
        "ends of (s+1)-edge walks from the root (the whole search frontier), which a guess from the candidates "
        "cannot name; 'reach' = every node within s+1 edges of the root, root included (CoT2's reachable set) "
        "(docs/latent_methods.md, 'Graph search')",
    )
    teacher_forcing: bool = option(
        False,
        "supervision frontier with thought_input soft: training feeds, in place of thought i, the mean "
        "embedding of the frontier_nodes set of depth i, and trains every thought in one pass (the root "
        "names a node of set 1, thought i one of set i+1, then the answer) with no curriculum (one stage; the "
        "stage options do nothing); inference "
        "feeds the model's own soft thoughts (CoT2's continuous supervised training, arXiv:2505.23648)",
    )
    markers: Literal["auto", "on", "off"] = option(
        "auto",
        "<bot>/<eot> around the thoughts: 'on' (Coconut's reference); 'off' (the superposition reference's graph "
        "layout, supervision frontier only: the thoughts follow the question, each frontier node is read at the "
        "last thought's position, '###' is given before the answer); 'auto' = off for supervision frontier, on "
        "otherwise",
    )
    thought_targets: bool = option(
        False,
        "supervision steps: the output at each thought group's last position (the vector fed back as the next "
        "thought) is also trained, through the LM head, to write the first token of what follows the steps the "
        "group stands for (the next step's; the answer's after the last step), as the superposition reference "
        "trains every thought to name its next node; on running sums that token is the sum so far. Off: no "
        "thought is supervised (Coconut)",
    )
    thought_input: Literal["hidden", "soft"] = option(
        "hidden",
        "what a thought feeds back: 'hidden' = the last hidden state (Coconut); 'soft' = the token embeddings "
        "weighted by the LM head's distribution at that position, softmax(lm_head(h)) @ E (Soft Thinking, "
        "arXiv:2505.15778; CoT2, arXiv:2505.23648): a superposition of tokens by construction, which the "
        "circuit that reads one token's edges can read as it is (docs/latent_methods.md, 'Graph search')",
    )
    latent_scale: Literal["none", "embedding"] = option(
        "none",
        "'none' feeds the last hidden state back as is (paper); 'embedding' rescales each thought to the "
        "mean norm of the input token embeddings (for models trained from scratch, whose final hidden "
        "states are ~20x larger than their token embeddings)",
    )

    def __post_init__(self) -> None:
        for key in ("c_thought", "epochs_per_stage", "steps_per_stage"):
            if getattr(self, key) < 1:
                raise LatentCotError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if self.max_latent_stage < 0:
            raise LatentCotError(f"max_latent_stage: must be >= 0, got {self.max_latent_stage}")
        if not 0 <= self.start_stage <= self.max_latent_stage + 1:
            raise LatentCotError(f"start_stage: must be in [0, max_latent_stage + 1], got {self.start_stage}")
        if not 0.0 <= self.uniform_prob <= 1.0:
            raise LatentCotError(f"uniform_prob: must be in [0, 1], got {self.uniform_prob}")
        if not isinstance(self.stage_epochs, list) or not all(
            isinstance(e, int) and not isinstance(e, bool) and e >= 1 for e in self.stage_epochs
        ):
            raise LatentCotError(f"stage_epochs: must be a list of whole numbers >= 1, got {self.stage_epochs!r}")
        if self.steps_per_stage != 1 and self.supervision == "frontier":
            raise LatentCotError("steps_per_stage: only 1 with supervision 'frontier' (a stage is a hop there)")
        if self.thought_targets and self.supervision != "steps":
            raise LatentCotError("thought_targets: for supervision 'steps' (supervision 'frontier' names a node "
                                 "at every stage already)")
        if self.markers == "off" and self.supervision != "frontier":
            raise LatentCotError("markers: 'off' is the graph layout of supervision 'frontier'; use 'on' or 'auto'")
        if self.frontier_nodes != "path" and self.supervision != "frontier":
            raise LatentCotError(f"frontier_nodes: {self.frontier_nodes!r} is for supervision 'frontier'")
        if self.teacher_forcing and (self.supervision != "frontier" or self.thought_input != "soft"
                                     or self.c_thought != 1 or self.markers == "on"):
            raise LatentCotError("teacher_forcing: needs supervision 'frontier', thought_input 'soft', c_thought 1 "
                                 "and the graph layout (markers 'auto' or 'off')")

    @property
    def bare(self) -> bool:
        """True when the thoughts sit between the question and the answer without <bot>/<eot>."""
        return self.markers == "off" or (self.markers == "auto" and self.supervision == "frontier")


class Coconut(nn.Module):
    """Continuous thoughts through :func:`latentcot.latent.latent_forward`, with the curriculum.

    Args:
        config: a :class:`CoconutConfig`.
        backbone: a Hugging Face causal LM (new token embeddings initialised from ``init_token``).
        tokenizer: its tokenizer (latent tokens added in place).
    """

    name = "coconut"

    def __init__(self, config: CoconutConfig, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase):
        super().__init__()
        self.config, self.backbone, self.tokenizer = config, backbone, tokenizer
        self.tokens = prepare_backbone(backbone, tokenizer, config.latent_token_names, config.init_token)
        self.reset_optimizer_per_stage = config.reset_optimizer_per_stage

    def num_stages(self) -> int:
        """``max_latent_stage + 2`` (stages 0 … max, then all steps dropped); 1 without curriculum
        (``no_curriculum``, ``teacher_forcing``)."""
        return 1 if self.config.no_curriculum or self.config.teacher_forcing else self.config.max_latent_stage + 2

    def stage_for_epoch(self, epoch: int) -> int:
        """The curriculum stage of a 0-based epoch: ``start_stage + epoch // epochs_per_stage`` (or as
        ``stage_epochs`` lays the stages out, counted from ``start_stage``), capped at the last."""
        cfg = self.config
        last = self.num_stages() - 1
        if not cfg.stage_epochs:
            return min(cfg.start_stage + epoch // cfg.epochs_per_stage, last)
        stage, left, lengths = cfg.start_stage, epoch, cfg.stage_epochs
        while stage < last and left >= lengths[min(stage - cfg.start_stage, len(lengths) - 1)]:
            left -= lengths[min(stage - cfg.start_stage, len(lengths) - 1)]
            stage += 1
        return stage

    def layout(self, num_steps: int, stage: int) -> tuple[int, int]:
        """(steps replaced, continuous thoughts) for an example with ``num_steps`` steps at ``stage``."""
        cfg = self.config
        if cfg.no_curriculum:
            stage = cfg.max_latent_stage + 1
        if stage > cfg.max_latent_stage:
            n = cfg.max_latent_stage if cfg.pad_latent_to_max else min(self.step_groups(num_steps), cfg.max_latent_stage)
            return num_steps, n * cfg.c_thought
        return min(stage * cfg.steps_per_stage, num_steps), stage * cfg.c_thought

    def collate(self, examples: Sequence[ReasoningExample], stage: int = 0) -> Batch:
        """Rows for ``stage``; with ``uniform_prob`` each example may draw its own stage
        (:meth:`row_stage`; the batch's ``row_stage`` holds each row's). ``<bot>`` sits in one column
        for the whole batch."""
        if self.config.teacher_forcing:
            return self._teacher_batch(examples)
        if self.config.supervision == "frontier":
            return pad_rows([self._frontier_row(ex, stage) for ex in examples], self.tokenizer.pad_token_id)
        t = self.tokens
        rows, stages = [], []
        for ex in examples:
            row_stage = self.row_stage(len(ex.steps), stage)
            stages.append(row_stage)
            skipped, k = self.layout(len(ex.steps), row_stage)
            target = steps_ids(self.tokenizer, ex.steps[skipped:]) + answer_ids(self.tokenizer, ex.answer)
            right = [t.latent] * k + [t.eot] + target
            labels = [-100] * (k + 1) + target
            if self.config.thought_targets:
                # the label at column j is predicted from column j - 1: the group's last thought
                for g, token in enumerate(self.thought_targets(ex, k // self.config.c_thought)):
                    labels[(g + 1) * self.config.c_thought] = token
            rows.append(Row(question_ids(self.tokenizer, ex.question) + [t.bot], right, labels))
        batch = pad_rows(rows, self.tokenizer.pad_token_id)
        batch["row_stage"] = torch.tensor(stages, dtype=torch.long)
        return batch

    def row_stage(self, num_steps: int, stage: int) -> int:
        """The stage one row of a batch at ``stage`` trains on: ``stage`` itself, or with probability
        ``uniform_prob`` one drawn uniformly from the stages the row has (0 … its step groups,
        ``ceil(num_steps / steps_per_stage)``; the reference draws 0 … its steps, the same with one
        step per stage), from the torch RNG the trainer seeds."""
        if self.config.uniform_prob > 0 and float(torch.rand(())) < self.config.uniform_prob:
            return int(torch.randint(0, self.step_groups(num_steps) + 1, ()))
        return stage

    def step_groups(self, num_steps: int) -> int:
        """The thought groups ``num_steps`` steps fill, ``steps_per_stage`` each (the last may hold fewer)."""
        return -(-num_steps // self.config.steps_per_stage)

    def thought_targets(self, ex: ReasoningExample, groups: int) -> list[int]:
        """``thought_targets``: per group of thoughts, the first token of what follows the steps it
        stands for (group ``g`` stands for steps ``g·p … (g+1)·p - 1``, ``p = steps_per_stage``): the
        next step's first token, or the answer's (after ``###``) where no step follows."""
        per = self.config.steps_per_stage
        sep, written = encode(self.tokenizer, ANSWER_SEPARATOR), answer_ids(self.tokenizer, ex.answer)
        answer = written[len(sep)] if written[: len(sep)] == sep else written[0]
        return [encode(self.tokenizer, ex.steps[(g + 1) * per] + "\n")[0] if (g + 1) * per < len(ex.steps) else answer
                for g in range(groups)]

    def _frontier_row(self, ex: ReasoningExample, stage: int) -> Row:
        """The graph curriculum of the superposition reference: the stage is capped at the record's
        hop count ``h`` (with ``uniform_prob``, drawn in ``[0, min(stage, h)]``); below ``h`` the
        target is one uniformly drawn node of depth ``stage + 1`` on a shortest path (``frontier_nodes:
        walk``: at the end of a ``stage + 1``-edge walk from the root), at ``h`` the
        answer after ``max_latent_stage·c`` thoughts (``h·c`` without ``pad_latent_to_max``).

        Without markers (the reference's layout) the thoughts follow the question's last token (the
        root) directly, so the output that names the depth-``s + 1`` node is the very vector that
        would be fed back as thought ``s + 1``; the answer stage gives ``###`` and labels the rest."""
        cfg, t = self.config, self.tokens
        graph = graph_of(ex)
        levels = optimal_levels(graph)
        h = len(levels) - 1
        s = min(stage, h)
        if cfg.uniform_prob > 0 and float(torch.rand(())) < cfg.uniform_prob:
            s = int(torch.randint(0, s + 1, ()))
        if cfg.no_curriculum:
            s = h
        question = question_ids(self.tokenizer, ex.question)
        if s < h:
            nodes = levels[s + 1] if cfg.frontier_nodes == "path" else self.frontier_sets(graph, s + 1)[s + 1]
            target = encode(self.tokenizer, str(nodes[int(torch.randint(len(nodes), ()))]))
            k = s * cfg.c_thought
            if cfg.bare:
                return Row(question, [t.latent] * k + target, [-100] * k + target)
        else:
            target = answer_ids(self.tokenizer, ex.answer)
            k = (cfg.max_latent_stage if cfg.pad_latent_to_max else h) * cfg.c_thought
            if cfg.bare:
                given = self.thought_frame()[1]
                rest = target[len(given):]
                return Row(question, [t.latent] * k + given + rest, [-100] * (k + len(given)) + rest)
        return Row(question + [t.bot], [t.latent] * k + [t.eot] + target, [-100] * (k + 1) + target)

    def frontier_sets(self, graph: Graph, depth: int) -> list[list[int]]:
        """``sets[i]``, ``i = 0 … depth``: the nodes thought ``i`` should hold under ``frontier_nodes``
        (sorted; ``path`` is empty past the target's depth)."""
        kind = self.config.frontier_nodes
        if kind == "path":
            levels = optimal_levels(graph)
            return [levels[i] if i < len(levels) else [] for i in range(depth + 1)]
        if kind == "walk":
            return [sorted(f) for f in walk_frontiers(graph, depth)]
        d = distances(graph)
        return [sorted(v for v, dv in enumerate(d) if 0 <= dv <= i) for i in range(depth + 1)]

    def _teacher_batch(self, examples: Sequence[ReasoningExample]) -> Batch:
        """``teacher_forcing``: every row at its answer stage, the thoughts given. Row: ``question``
        (the root last), ``k`` thoughts, ``###``, the answer; the label at thought ``i`` (predicted at the
        position before it: the root for ``i = 1``) is one node drawn uniformly from set ``i``, -100
        where the set is empty. ``soft_index`` (row, column, token) and ``soft_weight`` say what each
        thought is fed: the uniform mixture of set ``i``'s node embeddings (nothing where it is empty)."""
        cfg, t = self.config, self.tokens
        given = self.thought_frame()[1]
        rows, soft = [], []
        for ex in examples:
            graph = graph_of(ex)
            k = cfg.max_latent_stage if cfg.pad_latent_to_max else hops(graph)
            sets = self.frontier_sets(graph, k)
            labels, mixes = [], []
            for nodes in sets[1:]:
                ids = [encode(self.tokenizer, str(v))[0] for v in nodes]
                labels.append(ids[int(torch.randint(len(ids), ()))] if ids else -100)
                mixes.append(ids)
            answer = answer_ids(self.tokenizer, ex.answer)[len(given):]
            rows.append(Row(question_ids(self.tokenizer, ex.question), [t.latent] * k + given + answer,
                            labels + [-100] * len(given) + answer))
            soft.append(mixes)
        batch = pad_rows(rows, self.tokenizer.pad_token_id)
        index, weight = [], []
        first = max(len(row.left) for row in rows)  # pad_rows: every right part starts in this column
        for r, mixes in enumerate(soft):
            for i, ids in enumerate(mixes):
                for token in ids:
                    index.append((r, first + i, token))
                    weight.append(1.0 / len(ids))
        batch["soft_index"] = torch.tensor(index, dtype=torch.long).reshape(-1, 3)
        batch["soft_weight"] = torch.tensor(weight, dtype=torch.float)
        return batch

    def teacher_embeds(self, batch: Batch) -> torch.Tensor:
        """The input embeddings of a ``teacher_forcing`` batch: token embeddings, with each thought's
        column holding the mixture ``soft_index``/``soft_weight`` give it (zeros for an empty set)."""
        ids, (row, col, token) = batch["input_ids"], batch["soft_index"].unbind(-1)
        table = self.backbone.get_input_embeddings()
        embeds = table(ids).masked_fill((ids == self.tokens.latent)[..., None], 0.0)
        weight: torch.Tensor = table.weight  # type: ignore[assignment]
        return embeds.index_put((row, col), weight[token] * batch["soft_weight"][:, None].to(weight.dtype),
                                accumulate=True)

    def thought_frame(self) -> tuple[int | None, list[int], str]:
        """How the thoughts sit between question and answer at inference (``reason`` and the
        test-time sampler both build their prompts from it): the token put before them (``<bot>``;
        None in the graph layout, where they follow the question), the ids fed after the last one
        (``<eot>``; the graph layout's given ``###``), and the text of those ids that belongs to
        the written answer ("" or ``###``)."""
        if self.config.bare:
            return None, encode(self.tokenizer, ANSWER_SEPARATOR), ANSWER_SEPARATOR
        return self.tokens.bot, [self.tokens.eot], ""

    @property
    def project(self) -> Project | None:
        """What is applied to each thought before it is fed back (None: nothing).

        Read once per forward or ``reason`` call, so the embedding norm is measured once per
        call, not once per latent pass.
        """
        soft = soft_tokens(self.backbone) if self.config.thought_input == "soft" else None
        if self.config.latent_scale == "none":
            return soft
        return scaled_to(mean_embedding_norm(self.backbone), before=soft)

    def forward(self, batch: Batch) -> LossOutput:
        if "soft_index" in batch:  # teacher_forcing: the thoughts are given, one pass
            none = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
            out = latent_forward(self.backbone, self.teacher_embeds(batch), batch["attention_mask"], none)
            loss = lm_loss(self.backbone, out.hidden_states, batch["labels"])
        else:
            loss = sft_loss(self.backbone, batch, self.tokens.latent, self.project)
        latents = float((batch["input_ids"] == self.tokens.latent).sum(1).float().mean())
        return LossOutput(loss, {"loss": float(loss.detach()), "latents_per_example": latents})

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
        """Think ``n_latents`` continuous thoughts (default ``max_latent_stage·c_thought``), then
        write ``### answer``. ``latents`` in the output holds the thoughts (batch, n, hidden)."""
        k = self.config.max_latent_stage * self.config.c_thought if n_latents is None else n_latents
        latent = self.tokens.latent
        bot, end, given = self.thought_frame()
        start = [] if bot is None else [bot]
        prompts = [Row(question_ids(self.tokenizer, q) + start, [latent] * k + end, []) for q in questions]
        out = complete(
            self.backbone, self.tokenizer, prompts, max_new_tokens, latent, self.project, temperature, top_p, generator
        )
        if given:  # the graph layout's given '###' belongs to the written answer
            out.texts = [f"{given} {text}" for text in out.texts]
        return out
