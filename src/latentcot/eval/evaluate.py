"""Accuracy and efficiency of a method on a list of records, batched.

Efficiency is reported the way the Coconut paper compares methods: tokens written per question,
backbone forward passes per question (each latent pass counts one), questions per second and
latency per batch at a stated batch size, all measured on the machine at hand.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from latentcot.data.record import ReasoningExample
from latentcot.eval.answers import is_correct
from latentcot.methods.base import Method
from latentcot.methods.sequences import question_ids


@dataclass
class EvalResult:
    """Numbers for one method on one data set (all measured, none estimated)."""

    method: str
    task: str
    n: int
    accuracy: float
    tokens_per_question: float
    forward_passes_per_question: float
    questions_per_second: float
    latency_per_batch_s: float
    batch_size: int
    latents_per_question: float = 0.0  # continuous thoughts per question (per trajectory when sampling)
    predictions: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_totals(
        cls, method: str, task: str, predictions: list[dict[str, Any]], tokens: int, passes: int,
        elapsed: float, batches: int, batch_size: int, latents: int = 0,
    ) -> EvalResult:
        """The per-question means of totals counted over a run (``predictions`` carry ``correct``)."""
        n = len(predictions)
        return cls(
            method=method,
            task=task,
            n=n,
            accuracy=sum(p["correct"] for p in predictions) / max(n, 1),
            tokens_per_question=tokens / max(n, 1),
            forward_passes_per_question=passes / max(n, 1),
            questions_per_second=n / elapsed if elapsed else 0.0,
            latency_per_batch_s=elapsed / max(batches, 1),
            batch_size=batch_size,
            latents_per_question=latents / max(n, 1),
            predictions=predictions,
        )

    def summary(self) -> dict[str, Any]:
        """Everything but the per-example predictions."""
        out = asdict(self)
        out.pop("predictions")
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def evaluate(
    method: Method,
    examples: Sequence[ReasoningExample],
    task: str,
    batch_size: int = 64,
    max_new_tokens: int = 64,
    *,
    bucket: bool = True,
    **reason_options: Any,
) -> EvalResult:
    """Run ``method.reason`` over ``examples`` in batches and score the answers.

    Args:
        method: a trained method (see :class:`latentcot.methods.base.Method`).
        examples: records with gold answers.
        task: answer-normalisation family (``prosqa``, ``prontoqa``, ``multiplication``, ``gsm8k``...).
        batch_size: questions per ``reason`` call.
        max_new_tokens: generation budget per question.
        bucket: batch questions of similar length together (sorted by prompt length), so that
            left padding to a batch's longest prompt wastes little of the prefill; predictions
            come back in the order of ``examples``. False batches them in their given order.
        **reason_options: passed to ``reason`` (e.g. ``n_latents``, ``temperature``).

    Returns:
        An :class:`EvalResult` with per-example predictions.
    """
    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    predictions: list[dict[str, Any]] = []
    tokens = passes = latents = 0
    elapsed = 0.0
    batches = 0
    order = length_order([ex.question for ex in examples], method) if bucket else list(range(len(examples)))
    for start in range(0, len(examples), batch_size):
        chunk = [examples[i] for i in order[start : start + batch_size]]
        _sync(device)
        began = time.perf_counter()
        out = method.reason([ex.question for ex in chunk], max_new_tokens=max_new_tokens, **reason_options)
        _sync(device)
        elapsed += time.perf_counter() - began
        batches += 1
        tokens += sum(out.num_generated_tokens)
        passes += out.num_forward_passes * len(chunk)
        latents += 0 if out.latents is None else out.latents.shape[1] * len(chunk)
        for ex, text, answer in zip(chunk, out.texts, out.answers):
            predictions.append(
                {"question": ex.question, "gold": ex.answer, "predicted": answer, "text": text,
                 "correct": is_correct(task, answer, ex.answer)}
            )
    method.train(was_training)
    predictions = [p for _, p in sorted(zip(order, predictions), key=lambda pair: pair[0])]
    return EvalResult.from_totals(method.name, task, predictions, tokens, passes, elapsed, batches, batch_size, latents)


def length_order(questions: Sequence[str], method: Method) -> list[int]:
    """Indices of ``questions`` sorted by prompt length in tokens (characters without a
    tokenizer), stable, for length bucketing. The question's ids come from the methods' own
    memoised encoder, so the batches that follow do not tokenise them again."""
    tokenizer = getattr(method, "tokenizer", None)
    if tokenizer is not None and questions:
        lengths = [len(question_ids(tokenizer, q)) for q in questions]
    else:
        lengths = [len(q) for q in questions]
    return sorted(range(len(questions)), key=lambda i: lengths[i])


def write_result(result: EvalResult, path: str | Path) -> None:
    """Write the summary and predictions as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({**result.summary(), "predictions": result.predictions}, indent=1))


def format_table(results: Sequence[EvalResult]) -> str:
    """A Markdown table: accuracy, tokens, forward passes, questions/s per method."""
    lines = [
        "| method | task | n | accuracy | tokens/question | forward passes/question | questions/s | batch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.method} | {r.task} | {r.n} | {100 * r.accuracy:.1f}% | {r.tokens_per_question:.1f} | "
            f"{r.forward_passes_per_question:.1f} | {r.questions_per_second:.1f} | {r.batch_size} |"
        )
    return "\n".join(lines)
