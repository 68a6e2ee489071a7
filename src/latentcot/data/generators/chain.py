"""Running sums modulo m: a state-tracking chain with one short step per hop, for latent studies.

``3 + 7 + 9 + 4 (mod 10)`` has the steps ``3 + 7 = 0.``, ``0 + 9 = 9.`` and ``9 + 4 = 3.`` and the
answer ``3``: each step adds the next term to the running value; the last step's result is the
answer.

Without written steps a model must compose ``length - 1`` additions in one pass, which a small
transformer does badly (it is a parity-like task for m = 2); with them every token is a one-hop
lookup, so the gap between no-CoT and CoT is wide and each step's content is exactly known. It
is the kind of task on which latent methods can be compared at small scale in minutes, and on
which a SIM-CoT step decoder's output can be checked against the true step.

``stride`` k > 1 writes one step per k additions (``3 + 7 + 9 = 9.`` then ``9 + 4 = 3.`` at k = 2, the
last step taking what is left): a CoT start whose written steps already make k additions in one pass,
so that a latent curriculum replacing one written step per thought gives each thought the work of k
additions and still replaces exactly one written step (docs/latent_methods.md, "Grouped steps").

Not a real data set: it has no validation file in ``../shared/data``.
"""

from __future__ import annotations

import random
import re

from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError

_QUESTION = re.compile(r"(\d+(?: \+ \d+)*) \(mod (\d+)\)")


def _steps(terms: list[int], modulus: int, stride: int) -> tuple[list[str], int]:
    """The written steps of a chain (each adding ``stride`` terms to the running value) and its final value."""
    value, steps = terms[0], []
    for start in range(1, len(terms), stride):
        group = terms[start:start + stride]
        new = (value + sum(group)) % modulus
        steps.append(" + ".join(map(str, [value, *group])) + f" = {new}.")
        value = new
    return steps, value


def sample(rng: random.Random, length: int = 8, modulus: int = 10, stride: int = 1) -> ReasoningExample:
    """One chain of ``length`` terms in ``[0, modulus)``, one written step per ``stride`` additions."""
    terms = [rng.randrange(modulus) for _ in range(length)]
    steps, value = _steps(terms, modulus, stride)
    question = " + ".join(map(str, terms)) + f" (mod {modulus})"
    return ReasoningExample(question, steps, str(value))


def generate(n: int, seed: int, length: int = 8, modulus: int = 10, stride: int = 1) -> list[ReasoningExample]:
    """``n`` running-sum chains.

    Args:
        n: number of records.
        seed: the seed (same seed, same records).
        length: terms per chain (2 or more); a chain has ``length - 1`` steps.
        modulus: the sums are taken modulo this (2 or more).
        stride: additions per written step (1 or more): ``ceil((length - 1) / stride)`` steps, the last
            taking what is left. The questions and answers do not depend on it (same seed, same questions).

    Returns:
        Records with ``a + b = c.`` steps (``a + b + c = d.`` at stride 2; sentences, so the iCoT text format
        round-trips) and the final value as the answer.
    """
    if length < 2:
        raise LatentCotError(f"chain: length must be at least 2, got {length}")
    if modulus < 2:
        raise LatentCotError(f"chain: modulus must be at least 2, got {modulus}")
    if stride < 1:
        raise LatentCotError(f"chain: stride must be at least 1, got {stride}")
    rng = random.Random(seed)
    return [sample(rng, length, modulus, stride) for _ in range(n)]


def check(example: ReasoningExample) -> bool:
    """True when re-adding the question's terms gives every step (at some stride) and the answer."""
    match = _QUESTION.fullmatch(example.question)
    if match is None:
        return False
    terms = [int(t) for t in match[1].split(" + ")]
    modulus = int(match[2])
    if modulus < 2 or len(terms) < 2 or any(t >= modulus for t in terms):
        return False
    # the stride is read off the first step (its number of terms less one)
    stride = example.steps[0].count("+") if example.steps else 1
    expected, value = _steps(terms, modulus, max(stride, 1))
    return example.steps == expected and example.answer == str(value)
