"""Answer extraction and comparison, one rule per dataset family.

A model's generated answer and the gold answer go through the same normaliser, so whitespace a
word-level tokenizer adds ("Tom is a lempus ." vs "Tom is a lempus.") never decides a result.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from latentcot.errors import LatentCotError

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:])")
_NUMBER = re.compile(r"-?\d[\d,]*\.?\d*|-?\.\d+")


def _sentence(text: str) -> str:
    """ProsQA/ProntoQA: the first answer sentence, case- and spacing-insensitive."""
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split())).strip().lower()
    first = text.split(".")[0].strip()
    return first


def _truth(text: str) -> str:
    """ProntoQA: the answer is the word True or False."""
    words = text.replace(".", " ").split()
    return words[0].lower() if words else ""


def _digits(text: str) -> str:
    """Multiplication (iCoT): the product's digits, spaces removed (still reversed, as written)."""
    first = text.split("####")[-1].strip().split("\n")[0]
    return "".join(ch for ch in first if ch.isdigit())


def _node(text: str) -> str:
    """ProsQA in graph form: the answer is one node id, the first word."""
    words = text.split()
    return words[0] if words else ""


def _number(text: str) -> str:
    """GSM8k / arithmetic / chain: the first number, commas dropped, integers printed without '.0'."""
    match = _NUMBER.search(text.replace("####", " "))
    if not match:
        return ""
    raw = match.group(0).replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return raw
    return str(int(value)) if value == int(value) else repr(value)


NORMALISERS: dict[str, Callable[[str], str]] = {
    "prosqa": _sentence,
    "prosqa_graph": _node,
    "prontoqa": _truth,
    "multiplication": _digits,
    "gsm8k": _number,
    "arithmetic": _number,
    "chain": _number,
}


def normalise_answer(task: str, text: str) -> str:
    """The comparable form of an answer for ``task`` (one of :data:`NORMALISERS`)."""
    if task not in NORMALISERS:
        raise LatentCotError(f"unknown task '{task}' for answer extraction (known: {', '.join(NORMALISERS)})")
    return NORMALISERS[task](text)


def is_correct(task: str, predicted: str, gold: str) -> bool:
    """True when the predicted answer equals the gold one after the task's normalisation."""
    expected = normalise_answer(task, gold)
    return expected != "" and normalise_answer(task, predicted) == expected
