"""The one record type every dataset is read into and written from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReasoningExample:
    """A question, its written reasoning steps and the answer.

    Args:
        question: the problem statement as the model sees it.
        steps: the written chain of thought, one string per step (may be empty).
        answer: the final answer text.
        meta: everything else a source format carries (graph edges, symbols, ...), kept so
            that writing the record back reproduces the source.
    """

    question: str
    steps: list[str]
    answer: str
    meta: dict[str, Any] = field(default_factory=dict)
