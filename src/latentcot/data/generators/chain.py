"""Running sums modulo m: a state-tracking chain with one short step per hop, for latent studies.

``3 + 7 + 9 + 4 (mod 10)`` has the steps ``3 + 7 = 0.``, ``0 + 9 = 9.`` and ``9 + 4 = 3.`` and the
answer ``3``: each step adds the next term to the running value; the last step's result is the
answer.

Without written steps a model must compose ``length - 1`` additions in one pass, which a small
transformer does badly (it is a parity-like task for m = 2); with them every token is a one-hop
lookup, so the gap between no-CoT and CoT is wide and each step's content is exactly known. It
is the kind of task on which latent methods can be compared at small scale in minutes, and on
which a SIM-CoT step decoder's output can be checked against the true step.

Not a real data set: it has no validation file in ``../shared/data``.
"""

from __future__ import annotations

import random
import re

from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError

_QUESTION = re.compile(r"(\d+(?: \+ \d+)*) \(mod (\d+)\)")


def sample(rng: random.Random, length: int = 8, modulus: int = 10) -> ReasoningExample:
    """One chain of ``length`` terms in ``[0, modulus)``."""
    terms = [rng.randrange(modulus) for _ in range(length)]
    value = terms[0]
    steps = []
    for term in terms[1:]:
        new = (value + term) % modulus
        steps.append(f"{value} + {term} = {new}.")
        value = new
    question = " + ".join(map(str, terms)) + f" (mod {modulus})"
    return ReasoningExample(question, steps, str(value))


def generate(n: int, seed: int, length: int = 8, modulus: int = 10) -> list[ReasoningExample]:
    """``n`` running-sum chains.

    Args:
        n: number of records.
        seed: the seed (same seed, same records).
        length: terms per chain (2 or more); a chain has ``length - 1`` steps.
        modulus: the sums are taken modulo this (2 or more).

    Returns:
        Records with ``a + b = c.`` steps (sentences, so the iCoT text format round-trips) and the final value as the answer.
    """
    if length < 2:
        raise LatentCotError(f"chain: length must be at least 2, got {length}")
    if modulus < 2:
        raise LatentCotError(f"chain: modulus must be at least 2, got {modulus}")
    rng = random.Random(seed)
    return [sample(rng, length, modulus) for _ in range(n)]


def check(example: ReasoningExample) -> bool:
    """True when re-adding the question's terms gives every step and the answer."""
    match = _QUESTION.fullmatch(example.question)
    if match is None:
        return False
    terms = [int(t) for t in match[1].split(" + ")]
    modulus = int(match[2])
    if modulus < 2 or len(terms) < 2 or any(t >= modulus for t in terms):
        return False
    value, expected = terms[0], []
    for term in terms[1:]:
        new = (value + term) % modulus
        expected.append(f"{value} + {term} = {new}.")
        value = new
    return example.steps == expected and example.answer == str(value)
