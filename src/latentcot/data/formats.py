"""Readers and writers for the three on-disk formats, lossless on the real files.

* ``json`` - Coconut JSON (https://github.com/facebookresearch/coconut): one list of
  ``{question, steps, answer, ...}`` objects written by ``json.dumps`` with its defaults (``", "``
  / ``": "`` separators, ASCII escapes, no indent, no trailing newline). Extra fields
  (``idx_to_symbol``, ``edges``, ``root``, ``target``, ``neg_target``, ``chain_concepts``) go to
  ``meta`` in their original order.
* ``icot`` - iCoT text (https://github.com/da03/Internalize_CoT_Step_by_Step): one
  ``question||step step ... #### answer`` line per record. GSM8k-Aug steps are the ``<<a=b>>``
  items (natural-language chains split after sentences), multiplication steps the partial
  products joined by ``" + "``.
* ``jsonl`` - ours: one ``{"question", "steps", "answer", "meta"}`` object per line.

Reading then writing reproduces a real file byte for byte. Two bookkeeping keys in ``meta``
make that possible and are never written as fields: ``_key_order`` (the JSON key order, kept
only when it is not question, steps, answer, extras) and ``_step_separator`` (kept only when
the iCoT separator cannot be told from the steps themselves).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from latentcot.data.record import ReasoningExample
from latentcot.data.validate import Problem, icot_problems, record_problems
from latentcot.errors import LatentCotError

FORMATS = ("json", "icot", "jsonl")
_EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".txt": "icot"}
CORE_KEYS = ["question", "steps", "answer"]

# a multiplication chain holds only digits, spaces, parentheses and " + "
_MULT_COT = re.compile(r"[\d ()+]+")
_MULT_STEP = re.compile(r"[\d ()]+")
# split on the single space between <<...>> items, or after a sentence; " ".join undoes it exactly
_SPACE_SPLIT = re.compile(r"(?<=>>) (?=<<)|(?<=[.!?]) (?=\S)")


def detect_format(path: str | Path) -> str:
    """``json``, ``jsonl`` or ``icot`` from the extension, else from the first characters.

    Raises:
        LatentCotError: the extension is unknown and the content looks like none of them.
    """
    path = Path(path)
    if path.suffix in _EXTENSIONS:
        return _EXTENSIONS[path.suffix]
    if not path.is_file():
        raise LatentCotError(f"{path}: file not found")
    with path.open(encoding="utf-8", errors="replace") as f:
        head = f.read(4096)
    first = head.lstrip()[:1]
    if first == "[":
        return "json"
    if first == "{":
        return "jsonl"
    if "||" in head.split("\n", 1)[0]:
        return "icot"
    raise LatentCotError(f"{path}: cannot tell the format (use .json, .jsonl or .txt, or pass format=)")


def step_separator(steps: list[str]) -> str:
    """The iCoT separator that joins these steps: ``" + "`` for multiplication, else ``" "``."""
    return " + " if steps and all(_MULT_STEP.fullmatch(s) for s in steps) else " "


def split_icot_steps(cot: str) -> tuple[list[str], str]:
    """Split an iCoT chain into steps; returns (steps, separator) with ``separator.join(steps) == cot``."""
    if not cot:
        return [], " "
    if _MULT_COT.fullmatch(cot):
        return cot.split(" + "), " + "
    return _SPACE_SPLIT.split(cot), " "


def _example_from_record(obj: dict[str, Any]) -> ReasoningExample:
    keys = list(obj)
    meta = {k: obj[k] for k in keys if k not in CORE_KEYS}
    if keys != CORE_KEYS + list(meta):
        meta["_key_order"] = keys
    return ReasoningExample(obj["question"], obj["steps"], obj["answer"], meta)


def _record_from_example(ex: ReasoningExample) -> dict[str, Any]:
    fields = {k: v for k, v in ex.meta.items() if not k.startswith("_")}
    fields.update(question=ex.question, steps=ex.steps, answer=ex.answer)
    order = ex.meta.get("_key_order") or CORE_KEYS + [k for k in fields if k not in CORE_KEYS]
    return {k: fields[k] for k in order + [k for k in fields if k not in order]}


def _parse_icot_line(line: str) -> ReasoningExample:
    question, rest = line.split("||", 1)
    cot, answer = rest.rsplit(" #### ", 1)
    steps, sep = split_icot_steps(cot)
    meta = {} if step_separator(steps) == sep else {"_step_separator": sep}
    return ReasoningExample(question, steps, answer, meta)


def _icot_line(ex: ReasoningExample) -> str:
    sep = ex.meta.get("_step_separator") or step_separator(ex.steps)
    return f"{ex.question}||{sep.join(ex.steps)} #### {ex.answer}"


def parse_file(path: str | Path, format: str | None = None) -> tuple[list[ReasoningExample], list[Problem]]:
    """Parse a data file into examples and every problem found (used by read and validate).

    Args:
        path: the file.
        format: one of :data:`FORMATS`, or None to detect it.

    Returns:
        (the valid examples, all problems).
    """
    path = Path(path)
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise LatentCotError(f"{path}: unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LatentCotError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise LatentCotError(f"{path}: not UTF-8 text (byte {err.start})") from None
    name = str(path)
    examples: list[ReasoningExample] = []
    problems: list[Problem] = []
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            return [], [Problem(name, None, "json", f"invalid JSON at line {err.lineno} col {err.colno}: {err.msg}")]
        if not isinstance(data, list):
            return [], [Problem(name, None, "json", "expected a list of records at the top level")]
        for i, obj in enumerate(data, 1):
            found = record_problems(obj)
            problems += [Problem(name, i, f, m) for f, m in found]
            if not found:
                examples.append(_example_from_record(obj))
        return examples, problems
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a record
    for i, line in enumerate(lines, 1):
        if fmt == "icot":
            found = icot_problems(line)
            if not found:
                examples.append(_parse_icot_line(line))
        else:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                problems.append(Problem(name, i, "json", f"invalid JSON at col {err.colno}: {err.msg}", "line"))
                continue
            found = record_problems(obj, meta_key="meta")
            if not found:
                examples.append(ReasoningExample(obj["question"], obj["steps"], obj["answer"], obj.get("meta", {})))
        problems += [Problem(name, i, f, m, "line") for f, m in found]
    return examples, problems


def read_examples(path: str | Path, format: str | None = None) -> list[ReasoningExample]:
    """Read a Coconut JSON, iCoT text or JSONL file.

    Args:
        path: the file.
        format: ``json``, ``icot`` or ``jsonl``; detected from extension and content when None.

    Returns:
        The records, in file order.

    Raises:
        LatentCotError: naming the file, record (or line) and field of the first problem.
    """
    examples, problems = parse_file(path, format)
    if problems:
        more = f" (and {len(problems) - 1} more; see `latentcot data validate`)" if len(problems) > 1 else ""
        raise LatentCotError(f"{problems[0]}{more}")
    return examples


def format_examples(examples: list[ReasoningExample], format: str) -> str:
    """The file contents for ``examples`` in ``format`` (see the module docstring for layouts)."""
    if format == "json":
        return json.dumps([_record_from_example(ex) for ex in examples])
    if format == "icot":
        return "".join(_icot_line(ex) + "\n" for ex in examples)
    if format == "jsonl":
        rows = ({"question": ex.question, "steps": ex.steps, "answer": ex.answer, "meta": ex.meta} for ex in examples)
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    raise LatentCotError(f"unknown format '{format}' (choose from {', '.join(FORMATS)})")


def write_examples(examples: list[ReasoningExample], path: str | Path, format: str | None = None) -> None:
    """Write records in the format given, or the one the file's extension names.

    Args:
        examples: the records.
        path: the output file (parent folders are created).
        format: ``json``, ``icot`` or ``jsonl``; None picks it from the extension.
    """
    path = Path(path)
    fmt = format or _EXTENSIONS.get(path.suffix)
    if fmt is None:
        raise LatentCotError(f"{path}: cannot tell the output format from '{path.suffix}' (use .json, .jsonl or .txt)")
    text = format_examples(examples, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="")
