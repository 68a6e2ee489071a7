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
from latentcot.data.validate import Problem, icot_problems, record_problems, steps_problems
from latentcot.errors import LatentCotError
from latentcot.files import read_regular_file

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
    head = read_regular_file(path)[:4096].decode("utf-8", errors="replace")
    first = head.lstrip()[:1]
    if first == "[":
        return "json"
    if first == "{":
        return "jsonl"
    if "||" in head.split("\n", 1)[0]:
        return "icot"
    raise LatentCotError(f"{path}: cannot tell the format (use .json, .jsonl or .txt, or pass format=)")


class _BadJSONValue(ValueError):
    """A JSON value latentcot refuses: a duplicate key, a huge or non-finite number."""


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > 30:
        raise _BadJSONValue(f"number with {len(text)} digits is too large")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text) if len(text) <= 100 else float("inf")
    if value in (float("inf"), float("-inf")):
        raise _BadJSONValue(f"number {text[:20]}{'...' if len(text) > 20 else ''} is too large")
    return value


def _json_constant(text: str) -> Any:
    raise _BadJSONValue(f"{text} is not valid JSON")


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        twice = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise _BadJSONValue(f"duplicate key '{twice}'")
    return out


def load_json(text: str) -> tuple[Any, str | None]:
    """Strict JSON: (value, None), or (None, what is wrong) for invalid JSON, a duplicate key, a
    number too large or not finite (NaN, Infinity) or nesting too deep for the parser."""
    try:
        return json.loads(text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant,
                          object_pairs_hook=_json_object), None
    except json.JSONDecodeError as err:
        return None, f"invalid JSON at line {err.lineno} col {err.colno}: {err.msg}"
    except _BadJSONValue as err:
        return None, str(err)
    except RecursionError:
        return None, "nested too deeply"


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
    order = [k for k in order if k in fields]  # a stale order (records built in Python) cannot drop fields
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


def parse_file(
    path: str | Path, format: str | None = None, allow_empty: bool = False
) -> tuple[list[ReasoningExample], list[Problem]]:
    """Parse a data file into examples and every problem found (used by read and validate).

    Args:
        path: the file.
        format: one of :data:`FORMATS`, or None to detect it.
        allow_empty: a file without records is valid (by default it is a problem).

    Returns:
        (the valid examples, all problems).
    """
    path = Path(path)
    data = read_regular_file(path)  # first: a directory, FIFO or missing file is named as such
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise LatentCotError(f"{path}: unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    name = str(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return [], [Problem(name, None, "file", f"not UTF-8 text (byte {err.start})")]
    if text.startswith("\ufeff"):
        return [], [Problem(name, None, "file", "starts with a byte-order mark; save it as UTF-8 without BOM")]
    if not text.strip():
        return [], [] if allow_empty else [Problem(name, None, "file", "empty: no records")]
    return _parse_text(text, fmt, name, allow_empty)


def _parse_text(text: str, fmt: str, name: str, allow_empty: bool) -> tuple[list[ReasoningExample], list[Problem]]:
    examples: list[ReasoningExample] = []
    problems: list[Problem] = []
    if fmt == "json":
        data, error = load_json(text)
        if error is not None:
            return [], [Problem(name, None, "json", error)]
        if not isinstance(data, list):
            return [], [Problem(name, None, "json", "expected a list of records at the top level")]
        if not data and not allow_empty:
            return [], [Problem(name, None, "json", "empty list: no records")]
        for i, obj in enumerate(data, 1):
            found = record_problems(obj)
            problems += [Problem(name, i, f, m) for f, m in found]
            if not found:
                examples.append(_example_from_record(obj))
        return examples, problems
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start a record
    elif fmt == "icot":  # a file cut short: the last line may look complete ("... #### 1" of "#### 12")
        problems.append(Problem(name, len(lines), "line", "no newline at the end of the file: the last line "
                                "may be cut short (add the newline if it is complete)", "line"))
        lines.pop()
    for i, line in enumerate(lines, 1):
        if fmt == "icot":
            found = icot_problems(line)
            if not found:
                example = _parse_icot_line(line)
                found = steps_problems(example.steps)
                if not found:
                    examples.append(example)
        else:
            obj, error = load_json(line)
            if error is not None:
                problems.append(Problem(name, i, "json", error.replace(" at line 1 col", " at col"), "line"))
                continue
            found = record_problems(obj, meta_key="meta")
            if not found:
                examples.append(ReasoningExample(obj["question"], obj["steps"], obj["answer"], obj.get("meta", {})))
        problems += [Problem(name, i, f, m, "line") for f, m in found]
    return examples, problems


def read_examples(path: str | Path, format: str | None = None, allow_empty: bool = False) -> list[ReasoningExample]:
    """Read a Coconut JSON, iCoT text or JSONL file.

    Args:
        path: the file.
        format: ``json``, ``icot`` or ``jsonl``; detected from extension and content when None.
        allow_empty: return ``[]`` for a file without records instead of raising.

    Returns:
        The records, in file order.

    Raises:
        LatentCotError: naming the file, record (or line) and field of the first problem.
    """
    examples, problems = parse_file(path, format, allow_empty)
    if problems:
        more = f" (and {len(problems) - 1} more; see `latentcot data validate`)" if len(problems) > 1 else ""
        raise LatentCotError(f"{problems[0]}{more}")
    return examples


def format_examples(examples: list[ReasoningExample], format: str) -> str:
    """The file contents for ``examples`` in ``format`` (see the module docstring for layouts)."""
    if format not in FORMATS:
        raise LatentCotError(f"unknown format '{format}' (choose from {', '.join(FORMATS)})")
    if format == "icot":
        return "".join(_icot_line(ex) + "\n" for ex in examples)
    try:
        if format == "json":
            return json.dumps([_record_from_example(ex) for ex in examples], allow_nan=False)
        rows = ({"question": ex.question, "steps": ex.steps, "answer": ex.answer, "meta": ex.meta} for ex in examples)
        return "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in rows)
    except (TypeError, ValueError) as err:  # a meta value JSON cannot hold (an object, NaN)
        raise LatentCotError(f"cannot write the records as {format}: {err}") from None


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
    check_round_trip(examples, text, fmt, str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
    except OSError as err:
        raise LatentCotError(f"{path}: cannot write ({err.strerror or err})") from None


def _comparable(ex: ReasoningExample, fmt: str) -> tuple[Any, ...]:
    """What a format stores of a record: iCoT text keeps no meta, and writes Coconut's ``[""]``
    (no steps) as an empty chain, which reads back as ``[]``."""
    if fmt == "icot":
        return ex.question, [] if ex.steps == [""] else ex.steps, ex.answer
    return ex.question, ex.steps, ex.answer, {k: v for k, v in ex.meta.items() if not k.startswith("_")}


def check_round_trip(examples: list[ReasoningExample], text: str, fmt: str, name: str = "output") -> None:
    """Raise unless ``text`` (the formatted ``examples``) reads back as the same records.

    Raises:
        LatentCotError: naming the first record that the format cannot hold and why (a newline or
            ``||`` in an iCoT field, steps that iCoT text cannot keep apart, an empty step, ...).
    """
    for i, ex in enumerate(examples, 1):
        where = f"{name}: record {i}"
        if fmt == "icot":
            for field, value in (("question", ex.question), *((f"steps[{j}]", s) for j, s in enumerate(ex.steps)),
                                 ("answer", ex.answer)):
                if "\n" in value or "\r" in value:
                    raise LatentCotError(f"{where}: field '{field}': holds a line break, which iCoT text cannot store")
            if "||" in ex.question:
                raise LatentCotError(f"{where}: field 'question': holds '||', which iCoT text uses after the question")
            for field, value in (*((f"steps[{j}]", s) for j, s in enumerate(ex.steps)), ("answer", ex.answer)):
                if " #### " in value:
                    raise LatentCotError(f"{where}: field '{field}': holds ' #### ', which iCoT text puts before the answer")
    read_back, problems = _parse_text(text, fmt, name, allow_empty=True)
    if problems:
        first = problems[0]
        raise LatentCotError(f"{name}: record {first.record}: field '{first.field}': cannot be written as "
                             f"{fmt}: {first.message}")
    for i, (ex, back) in enumerate(zip(examples, read_back, strict=True), 1):
        if _comparable(ex, fmt) != _comparable(back, fmt):
            field = next((f for f, a, b in zip(("question", "steps", "answer", "meta"), _comparable(ex, fmt),
                                               _comparable(back, fmt)) if a != b), "record")
            raise LatentCotError(f"{name}: record {i}: field '{field}': {fmt} cannot hold it as it is "
                                 f"(it would read back as {getattr(back, field, back)!r:.120})")
