"""Parallel test-time scaling for latent reasoners: N sampled trajectories per question, batched,
and the answer picked by majority vote, by the Latent Reward Model, or by latent-trajectory signals.

* Sampling: :func:`latentcot.latent.sampling.sample_trajectories` (MC dropout or additive Gaussian
  noise on the fed-back thoughts; Yang et al. 2025, arXiv:2510.07745).
* Reward model: :mod:`latentcot.eval.reward` (best-of-N and reward-weighted vote).
* Signals: :mod:`latentcot.latent.signals` (net, cumulative and aligned change of the thought and
  answer hidden states; Vilas et al. 2025, arXiv:2510.10494), for selection and early pruning.

``latentcot eval CKPT --samples N --sampler noise --aggregate vote`` calls :func:`evaluate_tts`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError
from latentcot.eval.answers import is_correct, normalise_answer
from latentcot.eval.evaluate import EvalResult
from latentcot.eval.reward import LatentRewardModel, ThoughtGroup
from latentcot.latent.loop import Project
from latentcot.latent.sampling import LatentSamples, Pruning, Score, ThoughtSampler, sample_trajectories
from latentcot.latent.signals import SIGNALS, trajectory_signals
from latentcot.methods.base import Method
from latentcot.methods.coconut import Coconut
from latentcot.methods.codi import Codi
from latentcot.methods.sequences import extract_answer, question_ids
from latentcot.methods.simcot import SimCot

Aggregate = Literal["vote", "reward", "reward-vote", "signal", "signal-vote"]
AGGREGATES = ("vote", "reward", "reward-vote", "signal", "signal-vote")


@dataclass
class LatentParts:
    """What sampling needs from a latent method: its backbone, the tokens around the thoughts, its
    projection and default k.

    ``bot`` is put between question and thoughts (None: nothing, the graph layout), ``end`` is fed
    after the last thought (``<eot>``, or the graph layout's given ``###``), and ``given`` is the
    text of ``end`` that belongs to the written answer ("" or ``###``), put back before the answer
    is read.
    """

    backbone: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    bot: int | None
    end: list[int]
    project: Project | None
    num_latents: int
    given: str = ""


def latent_parts(method: Method) -> LatentParts:
    """The parts of Coconut, CODI or SIM-CoT (on either) that the sampler drives."""
    if isinstance(method, SimCot):
        return latent_parts(method.base)
    if isinstance(method, Coconut):
        k = method.config.max_latent_stage * method.config.c_thought
        bot, end, given = method.thought_frame()  # the prompt `reason` builds
        return LatentParts(method.backbone, method.tokenizer, bot, end, method.project, k, given)
    if isinstance(method, Codi):
        t = method.tokens
        return LatentParts(
            method.backbone, method.tokenizer, t.bot, [t.eot], method.project, method.config.num_latents
        )
    raise LatentCotError(
        f"test-time sampling needs a latent method (coconut, codi, simcot), not '{method.name}'"
    )


@dataclass
class SampledAnswers:
    """:func:`sample_answers`' result: the trajectories and, per row, the text and extracted answer."""

    samples: LatentSamples
    texts: list[str]
    answers: list[str]
    question_ids: list[list[int]]  # per row (what a reward model reads)
    seconds: float


@torch.no_grad()
def sample_answers(
    method: Method,
    questions: Sequence[str],
    n_samples: int,
    sampler: ThoughtSampler | None = None,
    n_latents: int | None = None,
    max_new_tokens: int = 16,
    prune: Pruning | None = None,
) -> SampledAnswers:
    """``n_samples`` latent trajectories and answers per question, all in one batch.

    Rows are ``question * n_samples + sample``; pruned rows have text ``""``.
    """
    parts = latent_parts(method)
    k = parts.num_latents if n_latents is None else n_latents
    backbone, tokenizer = parts.backbone, parts.tokenizer
    ids = [question_ids(tokenizer, q) for q in questions]
    prefixes = [q + ([] if parts.bot is None else [parts.bot]) for q in ids]
    width = max(len(p) for p in prefixes)
    device = backbone.device
    pad = tokenizer.pad_token_id
    prefix = torch.tensor([[pad] * (width - len(p)) + p for p in prefixes], dtype=torch.long, device=device)
    mask = torch.tensor(
        [[0] * (width - len(p)) + [1] * len(p) for p in prefixes], dtype=torch.long, device=device
    )
    embed = backbone.get_input_embeddings()
    end = embed(torch.tensor(parts.end, device=device))  # (positions, hidden)
    began = time.perf_counter()
    samples = sample_trajectories(
        backbone,
        embed(prefix),
        mask,
        k,
        n_samples,
        end,
        tokenizer.eos_token_id,
        max_new_tokens,
        parts.project,
        sampler,
        prune,
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - began
    texts = tokenizer.batch_decode(samples.tokens, skip_special_tokens=True)
    given = f"{parts.given} " if parts.given else ""  # the given '###' belongs to the written answer
    texts = [given + t if done else "" for t, done in zip(texts, samples.finished.tolist())]
    rows_ids = [q for q in ids for _ in range(n_samples)]
    return SampledAnswers(samples, texts, [extract_answer(t) for t in texts], rows_ids, seconds)


# --- aggregation ----------------------------------------------------------------------------


def majority_vote(answers: Sequence[str], weights: Sequence[float] | None = None) -> str:
    """The answer with the most votes (or the largest total weight); ties go to the first seen.
    Empty answers (pruned or unparsable samples) do not vote unless nothing else does."""
    weights = [1.0] * len(answers) if weights is None else list(weights)
    totals: dict[str, float] = {}
    for answer, weight in zip(answers, weights):
        if answer:
            totals[answer] = totals.get(answer, 0.0) + weight
    if not totals:
        return ""
    best = max(totals.values())
    return next(a for a in answers if a and totals[a] == best)


def best_of_n(answers: Sequence[str], scores: Sequence[float]) -> str:
    """The answer of the best-scored sample (empty answers are skipped unless all are empty)."""
    ranked = sorted(range(len(answers)), key=lambda i: (not answers[i], -scores[i]))
    return answers[ranked[0]] if ranked else ""


def top_vote(answers: Sequence[str], scores: Sequence[float], keep: int) -> str:
    """Majority vote among the ``keep`` best-scored samples."""
    order = sorted(range(len(answers)), key=lambda i: -scores[i])[:keep]
    return majority_vote([answers[i] for i in sorted(order)])


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` predicting ``labels`` (ties count half); NaN without both classes."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    s = torch.tensor(scores, dtype=torch.float64)
    ranks = _average_ranks(s)
    y = torch.tensor(labels, dtype=torch.bool)
    return float((ranks[y].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks with ties averaged (the Mann-Whitney convention)."""
    order = values.argsort()
    ranks = torch.empty_like(values)
    ranks[order] = torch.arange(1, len(values) + 1, dtype=values.dtype)
    for v in values.unique():
        tied = values == v
        if int(tied.sum()) > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


# --- signals --------------------------------------------------------------------------------


@dataclass
class SignalChoice:
    """One signal, where it is read and which way is better: ``[-][answer.]name``
    (e.g. ``aligned_change``, ``-cumulative_change``, ``answer.net_change``)."""

    name: str
    source: Literal["thoughts", "answer"] = "thoughts"
    sign: float = 1.0

    @classmethod
    def parse(cls, text: str) -> SignalChoice:
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        source: Literal["thoughts", "answer"] = "thoughts"
        if body.startswith("answer."):
            source, body = "answer", body.removeprefix("answer.")
        if body not in SIGNALS:
            raise LatentCotError(
                f"signal '{text}': name one of {', '.join(SIGNALS)} (optionally '-' and 'answer.' before)"
            )
        return cls(body, source, sign)

    def __str__(self) -> str:
        return f"{'-' if self.sign < 0 else ''}{'answer.' if self.source == 'answer' else ''}{self.name}"


def sample_signals(samples: LatentSamples) -> dict[str, torch.Tensor]:
    """Every signal of every row: keys ``name`` (thought states) and ``answer.name`` (answer states)."""
    out = trajectory_signals(samples.states, samples.thought_counts + 1)
    answer = trajectory_signals(samples.answer_states, samples.answer_lengths.clamp(min=1))
    return {**out, **{f"answer.{k}": v for k, v in answer.items()}}


def signal_score(choice: SignalChoice) -> Score:
    """A pruning score: the (signed) thought signal of the states computed so far."""
    if choice.source != "thoughts":
        raise LatentCotError("early pruning reads the thoughts; answer signals exist only after the answer")

    def score(states: torch.Tensor) -> torch.Tensor:
        return choice.sign * trajectory_signals(states)[choice.name]

    return score


# --- evaluation -----------------------------------------------------------------------------


@dataclass
class TtsConfig:
    """How :func:`evaluate_tts` samples and aggregates.

    Attributes:
        n_samples: N, samples per question.
        sampler: the :class:`ThoughtSampler`.
        aggregate: ``vote``, ``reward`` (best-of-N), ``reward-vote`` (votes weighted by the softmax
            of the reward scores), ``signal`` (best-of-N by the signal) or ``signal-vote`` (vote of
            the better-signalled half).
        signal: the :class:`SignalChoice` for ``signal*`` and pruning.
        prune_after: prune after this many thoughts (-1: no pruning).
        keep: samples kept per question when pruning.
    """

    n_samples: int = 1
    sampler: ThoughtSampler = field(default_factory=ThoughtSampler)
    aggregate: Aggregate = "vote"
    signal: SignalChoice = field(default_factory=lambda: SignalChoice("aligned_change"))
    prune_after: int = -1
    keep: int = 0

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise LatentCotError(f"samples: must be >= 1, got {self.n_samples}")
        if self.aggregate not in AGGREGATES:
            raise LatentCotError(f"aggregate: one of {', '.join(AGGREGATES)}, not {self.aggregate!r}")
        if self.prune_after >= 0 and not 1 <= self.keep <= self.n_samples:
            raise LatentCotError(
                f"keep: pruning keeps between 1 and {self.n_samples} samples, got {self.keep}"
            )


def aggregate_answers(
    cfg: TtsConfig, answers: Sequence[str], reward: Sequence[float] | None, signal: Sequence[float] | None
) -> str:
    """One question's answer from its samples' (normalised) answers."""
    if cfg.aggregate == "vote":
        return majority_vote(answers)
    if cfg.aggregate in ("reward", "reward-vote"):
        if reward is None:
            raise LatentCotError(f"aggregate {cfg.aggregate}: needs a reward model (--reward-model)")
        if cfg.aggregate == "reward":
            return best_of_n(answers, reward)
        return majority_vote(answers, torch.tensor(reward).softmax(0).tolist())
    assert signal is not None
    if cfg.aggregate == "signal":
        return best_of_n(answers, signal)
    return top_vote(answers, signal, max(1, len(answers) // 2))


@torch.no_grad()
def evaluate_tts(
    method: Method,
    examples: Sequence[ReasoningExample],
    task: str,
    cfg: TtsConfig,
    reward_model: LatentRewardModel | None = None,
    batch_size: int = 64,
    max_new_tokens: int = 16,
    n_latents: int | None = None,
) -> EvalResult:
    """Sample, aggregate and score; ``batch_size`` counts questions (each brings N rows).

    Returns:
        An :class:`EvalResult` (forward passes summed over samples, see
        :class:`latentcot.latent.sampling.LatentSamples`); each prediction also lists its samples'
        answers, correctness, signals and reward scores, and ``coverage`` (any sample right).
    """
    was_training = method.training
    method.eval()
    prune = None
    if cfg.prune_after >= 0:
        prune = Pruning(cfg.prune_after, cfg.keep, signal_score(cfg.signal))
    predictions: list[dict[str, Any]] = []
    tokens = passes = latents = 0
    elapsed, batches, n = 0.0, 0, cfg.n_samples
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        out = sample_answers(
            method, [ex.question for ex in chunk], n, cfg.sampler, n_latents, max_new_tokens, prune
        )
        elapsed += out.seconds
        batches += 1
        passes += out.samples.sample_passes
        latents += out.samples.thoughts.shape[1] * len(chunk)
        tokens += int(out.samples.answer_lengths.sum())
        signals = sample_signals(out.samples)
        chosen = cfg.signal.sign * signals[str(cfg.signal).lstrip("-")]
        reward = None
        if reward_model is not None:
            began = time.perf_counter()
            reward = reward_model.score(out.question_ids, out.samples.thoughts).tolist()
            elapsed += time.perf_counter() - began
        for i, ex in enumerate(chunk):
            rows = range(i * n, (i + 1) * n)
            done = [r for r in rows if bool(out.samples.finished[r])]
            answers = [normalise_answer(task, out.answers[r]) for r in done]
            r_scores = [reward[r] for r in done] if reward is not None else None
            s_scores = [float(chosen[r]) for r in done]
            answer = aggregate_answers(cfg, answers, r_scores, s_scores)
            correct = [is_correct(task, a, ex.answer) for a in answers]
            predictions.append({
                "question": ex.question, "gold": ex.answer, "predicted": answer,
                "text": out.texts[done[0]] if done else "", "correct": is_correct(task, answer, ex.answer),
                "coverage": any(correct), "samples": answers, "samples_correct": correct,
                "signal": s_scores, "reward": r_scores,
            })  # fmt: skip
    method.train(was_training)
    return EvalResult.from_totals(f"{method.name}+{cfg.aggregate}@{n}", task, predictions, tokens, passes,
                                  elapsed, batches, batch_size, latents)


@torch.no_grad()
def collect_groups(
    method: Method,
    examples: Sequence[ReasoningExample],
    task: str,
    n_samples: int,
    sampler: ThoughtSampler,
    batch_size: int = 64,
    max_new_tokens: int = 16,
    n_latents: int | None = None,
) -> list[ThoughtGroup]:
    """The reasoner's own samples as reward-model training data: per question, its N trajectories'
    thoughts and whether each answer is right (the reference's labels when it estimates no
    per-step values). Every question is returned; :func:`latentcot.eval.reward.train_reward_model`
    keeps those with both right and wrong samples."""
    groups = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        out = sample_answers(method, [ex.question for ex in chunk], n_samples, sampler, n_latents, max_new_tokens)
        thoughts = out.samples.thoughts.detach().cpu()
        for i, ex in enumerate(chunk):
            rows = range(i * n_samples, (i + 1) * n_samples)
            labels = torch.tensor([float(is_correct(task, out.answers[r], ex.answer)) for r in rows])
            groups.append(ThoughtGroup(out.question_ids[i * n_samples], thoughts[rows.start : rows.stop], labels))
    return groups
