"""GSM8k-Aug-style equation chains for quick experiments, in the iCoT text format.

GSM8k-Aug (Deng et al. 2023, https://arxiv.org/abs/2311.01460) writes a solution as equations
``<<a*b=c>>``; here a short word problem carries a running count through 1-4 operations
(add, take away, multiply, share equally), so every step uses the previous result and the
answer is the last one. Integers only: a division is drawn only when it is exact.
"""

from __future__ import annotations

import random
import re

from latentcot.data.record import ReasoningExample

NAMES = "Ann Ben Carla Dev Emma Finn Gina Hugo Iris Jon Kate Leo Mia Noah Omar Pia".split()
ITEMS = "apples marbles stickers books coins cards pencils shells stamps cookies".split()
# one sentence per operation; {b} is the operand, {p} the pronoun
TEMPLATES = {
    "+": "Then {p} gets {b} more.",
    "-": "Then {p} gives away {b}.",
    "*": "Then {p} ends up with {b} times as many.",
    "/": "Then {p} shares them equally among {b} friends and keeps one share.",
}
_PRONOUN = {n: ("she" if n in "Ann Carla Emma Gina Iris Kate Mia Pia".split() else "he") for n in NAMES}


def _step(rng: random.Random, x: int) -> tuple[str, int, int]:
    """One operation on the running count ``x``: (op, operand, result)."""
    while True:
        op = rng.choice("+-*/")
        if op == "+":
            b = rng.randint(2, 50)
            return op, b, x + b
        if op == "-" and x > 2:
            b = rng.randint(1, x - 1)
            return op, b, x - b
        if op == "*" and x <= 200:
            b = rng.randint(2, 5)
            return op, b, x * b
        divisors = [d for d in range(2, 10) if x % d == 0]
        if op == "/" and divisors:
            b = rng.choice(divisors)
            return op, b, x // b


def sample(rng: random.Random, max_steps: int = 4) -> ReasoningExample:
    """One word problem with 1 to ``max_steps`` operations."""
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    x = rng.randint(2, 60)
    sentences = [f"{name} has {x} {item}."]
    steps = []
    for _ in range(rng.randint(1, max_steps)):
        op, b, y = _step(rng, x)
        sentences.append(TEMPLATES[op].format(p=_PRONOUN[name], b=b))
        steps.append(f"<<{x}{op}{b}={y}>>")
        x = y
    sentences.append(f"How many {item} does {name} have now?")
    return ReasoningExample(" ".join(sentences), steps, str(x))


def generate(n: int, seed: int, max_steps: int = 4) -> list[ReasoningExample]:
    """``n`` arithmetic word problems.

    Args:
        n: number of records.
        seed: the seed (same seed, same records).
        max_steps: the most operations per problem (1 or more).

    Returns:
        Records with ``<<a op b=c>>`` steps and an integer answer.
    """
    rng = random.Random(seed)
    return [sample(rng, max_steps) for _ in range(n)]


_START = re.compile(r"(\w+) has (\d+) (\w+)\.")
_OPERAND = {op: re.compile(re.escape(t).replace(r"\{p\}", r"(?:he|she)").replace(r"\{b\}", r"(\d+)"))
            for op, t in TEMPLATES.items()}
_EQUATION = re.compile(r"<<(\d+)([-+*/])(\d+)=(\d+)>>")


def check(example: ReasoningExample) -> bool:
    """True when replaying the question's operations gives every step and the answer."""
    sentences = re.findall(r"[^.?]+[.?]", example.question)
    start = _START.fullmatch(sentences[0].strip()) if sentences else None
    if start is None:
        return False
    x = int(start[2])
    expected = []
    for sentence in sentences[1:-1]:
        found = [(op, m) for op, rx in _OPERAND.items() if (m := rx.fullmatch(sentence.strip()))]
        if len(found) != 1:
            return False
        op, m = found[0]
        b = int(m[1])
        y = {"+": x + b, "-": x - b, "*": x * b, "/": x // b if b and x % b == 0 else None}[op]
        if y is None:
            return False
        expected.append(f"<<{x}{op}{b}={y}>>")
        x = y
    return example.steps == expected and example.answer == str(x)
