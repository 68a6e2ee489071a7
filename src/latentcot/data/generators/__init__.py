"""Seeded generators of training data in the real formats, each with a checker that proves the
answer. ``GENERATORS`` maps a task name to ``generate(n, seed, **options)``; ``CHECKERS`` to
``check(example) -> bool``.

Example::

    examples = generate("multiplication", n=1000, seed=0, digits=4)
    assert all(CHECKERS["multiplication"](ex) for ex in examples)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from latentcot.data import graph
from latentcot.data.generators import arithmetic, chain, multiplication, prontoqa, prosqa
from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError

GENERATORS: dict[str, Callable[..., list[ReasoningExample]]] = {
    "multiplication": multiplication.generate,
    "prosqa": prosqa.generate,
    "prontoqa": prontoqa.generate,
    "arithmetic": arithmetic.generate,
    "chain": chain.generate,
    "prosqa_graph": graph.generate,
}
CHECKERS: dict[str, Callable[[ReasoningExample], bool]] = {
    "multiplication": multiplication.check,
    "prosqa": prosqa.check,
    "prontoqa": prontoqa.check,
    "arithmetic": arithmetic.check,
    "chain": chain.check,
    "prosqa_graph": graph.check,
}
# the real validation file each generator imitates (relative to the data directory); chain has none
REAL_FILES = {
    "multiplication": "multiplication/stepwise/{digits}_by_{digits}_mult/valid.txt",
    "prosqa": "prosqa/prosqa_valid.json",
    "prosqa_graph": "prosqa/prosqa_valid.json",
    "prontoqa": "prontoqa/prontoqa_valid.json",
    "arithmetic": "gsm8k_aug/valid.txt",
}


def generate(task: str, n: int, seed: int, **options: Any) -> list[ReasoningExample]:
    """``n`` records of ``task``, the same for the same seed and options.

    Args:
        task: one of :data:`GENERATORS`.
        n: number of records (0 or more).
        seed: the seed.
        **options: task options (``digits`` for multiplication, ``max_steps`` for arithmetic,
            ``length``, ``modulus`` and ``stride`` for chain, ``max_hops`` for prosqa_graph).

    Returns:
        The records.

    Raises:
        LatentCotError: an unknown task, a negative ``n`` or a bad option.
    """
    if task not in GENERATORS:
        raise LatentCotError(f"unknown task '{task}' (choose from {', '.join(GENERATORS)})")
    if n < 0:
        raise LatentCotError(f"n must be 0 or more, got {n}")
    accepted = [k for k in inspect.signature(GENERATORS[task]).parameters if k not in ("n", "seed")]
    for key, value in options.items():
        if key not in accepted:
            raise LatentCotError(f"{task}: unknown option '{key}' (options: {', '.join(accepted) or 'none'})")
        if key in ("digits", "max_steps") and value < 1:
            raise LatentCotError(f"{task}: {key} must be at least 1, got {value}")
    return GENERATORS[task](n, seed, **options)


def check(task: str, example: ReasoningExample) -> bool:
    """Whether ``example`` is a correct ``task`` record (its answer proved from its question)."""
    return CHECKERS[task](example)
