"""Dataset statistics: counts, steps per record, lengths in words, vocabulary, answer format.

The same numbers compare a generator with the real validation file it imitates (see
``bench/data_stats.py`` and ``tests/test_generators.py``).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from latentcot.data.record import ReasoningExample

_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?\d*\.\d+|-?\d+\.\d*")
_DIGIT_SEQUENCE = re.compile(r"\d( \d)+")
_PUNCT = ".,?!:;()<>"


def answer_format(answer: str) -> str:
    """A coarse class of an answer: ``true/false``, ``integer``, ``decimal``, ``digit sequence``
    (spaced digits, as in multiplication), ``sentence`` (ends with a period) or ``text``."""
    if answer in ("True", "False"):
        return "true/false"
    text = answer.replace(",", "")
    if _INTEGER.fullmatch(text):
        return "integer"
    if _DECIMAL.fullmatch(text):
        return "decimal"
    if _DIGIT_SEQUENCE.fullmatch(answer):
        return "digit sequence"
    return "sentence" if answer.endswith(".") else "text"


def words(text: str) -> list[str]:
    """Whitespace words with surrounding punctuation stripped (the unit of the vocabulary)."""
    return [w for w in (t.strip(_PUNCT) for t in text.split()) if w]


def summary(values: list[int]) -> dict[str, float]:
    """mean / min / max of a list of counts (zeros for an empty list)."""
    if not values:
        return {"mean": 0.0, "min": 0, "max": 0}
    return {"mean": round(sum(values) / len(values), 3), "min": min(values), "max": max(values)}


def dataset_stats(examples: list[ReasoningExample]) -> dict[str, Any]:
    """Measurable statistics of a list of records.

    Args:
        examples: the records.

    Returns:
        ``{"records", "steps" {mean, min, max, histogram}, "step_words", "question_words",
        "answer_words", "vocabulary_size", "answer_formats" {class: fraction}}``; the vocabulary
        is the set of punctuation-stripped words over questions, steps and answers.
    """
    steps = [len(ex.steps) for ex in examples]
    formats = Counter(answer_format(ex.answer) for ex in examples)
    n = max(len(examples), 1)
    return {
        "records": len(examples),
        "steps": {**summary(steps), "histogram": {str(k): v for k, v in sorted(Counter(steps).items())}},
        "step_words": summary([len(s.split()) for ex in examples for s in ex.steps]),
        "question_words": summary([len(ex.question.split()) for ex in examples]),
        "answer_words": summary([len(ex.answer.split()) for ex in examples]),
        "vocabulary_size": len(vocabulary(examples)),
        "answer_formats": {k: round(v / n, 4) for k, v in formats.most_common()},
    }


def vocabulary(examples: list[ReasoningExample]) -> set[str]:
    """The set of words used by questions, steps and answers."""
    out: set[str] = set()
    for ex in examples:
        out.update(words(ex.question), words(ex.answer), *(words(s) for s in ex.steps))
    return out


def format_table(stats: dict[str, Any], title: str = "") -> str:
    """A plain-text table of :func:`dataset_stats` output, for the terminal."""
    st = stats["steps"]
    rows = [
        ("records", str(stats["records"])),
        ("steps per record", f"mean {st['mean']:.2f}  min {st['min']}  max {st['max']}"),
        ("steps histogram", "  ".join(f"{k}:{v}" for k, v in st["histogram"].items())),
    ]
    for key in ("question_words", "step_words", "answer_words"):
        s = stats[key]
        rows.append((key.replace("_", " "), f"mean {s['mean']:.2f}  min {s['min']}  max {s['max']}"))
    rows.append(("vocabulary size", str(stats["vocabulary_size"])))
    rows.append(("answer format", "  ".join(f"{k} {v:.1%}" for k, v in stats["answer_formats"].items())))
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)
