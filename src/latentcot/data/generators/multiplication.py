"""N x N multiplication in the iCoT format (Deng et al. 2023, https://arxiv.org/abs/2311.01460).

A line reads ``a (digits reversed) * b (digits reversed)||steps #### product (reversed)``. Step
``i`` is the partial product ``a * b_i`` (``b_i`` the i-th digit of b, ones first) shifted by ``i``
places, written reversed over ``N + 1 + i`` digits; from the second step on it is followed by
the running sum ``( ... )`` over the same width, except on the last step, whose running sum is
the answer (``2N`` digits). Leading (most significant) digits of both operands are non-zero, as
in the real files.
"""

from __future__ import annotations

import re

import numpy as np

from latentcot.data.record import ReasoningExample

_QUESTION = re.compile(r"\d( \d)* \* \d( \d)*")


def _rev(value: int, width: int) -> str:
    """``value`` as ``width`` digits, least significant first, space-separated."""
    return " ".join(str(value).zfill(width)[::-1])


def format_multiplication(a: int, b: int, digits: int) -> ReasoningExample:
    """The iCoT record for ``a * b`` with ``digits``-digit operands (exactly as the real files)."""
    steps = []
    running = 0
    b_digits = str(b).zfill(digits)[::-1]
    for i, d in enumerate(b_digits):
        partial = a * int(d) * 10**i
        running += partial
        step = _rev(partial, digits + 1 + i)
        if 0 < i < digits - 1:
            step += f" ( {_rev(running, digits + 1 + i)} )"
        steps.append(step)
    question = f"{_rev(a, digits)} * {_rev(b, digits)}"
    return ReasoningExample(question, steps, _rev(a * b, 2 * digits))


def operands(example: ReasoningExample) -> tuple[int, int, int]:
    """(a, b, digits) read back from a multiplication question."""
    left, right = example.question.split(" * ")
    a, b = left.replace(" ", "")[::-1], right.replace(" ", "")[::-1]
    return int(a), int(b), len(a)


def generate(n: int, seed: int, digits: int = 4) -> list[ReasoningExample]:
    """``n`` random ``digits`` x ``digits`` products.

    Args:
        n: number of records.
        seed: the seed (same seed, same records).
        digits: operand length N (the real files have 4, 5, 7, 9, 11).

    Returns:
        The records, in iCoT layout.
    """
    rng = np.random.default_rng(seed)
    # draw all digits at once, most significant first and non-zero (as in the real files);
    # operands up to 18 digits fit int64, products are exact Python ints
    draws = rng.integers(0, 10, size=(n, 2, digits))
    draws[:, :, 0] = rng.integers(1, 10, size=(n, 2))
    place = 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)
    values = (draws * place).sum(-1)
    return [format_multiplication(int(a), int(b), digits) for a, b in values]


def check(example: ReasoningExample) -> bool:
    """True when every partial product, running sum and the answer are right for the question."""
    if not _QUESTION.fullmatch(example.question):
        return False
    a, b, digits = operands(example)
    expected = format_multiplication(a, b, digits)
    return (example.steps, example.answer) == (expected.steps, expected.answer)
