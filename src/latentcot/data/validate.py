"""Record-level validation: every problem in a file, each naming file, record and field.

Readers (:mod:`latentcot.data.formats`) collect :class:`Problem` s while parsing;
:func:`validate_file` returns them all, and ``read_examples`` raises the first one as a
:class:`~latentcot.errors.LatentCotError`. Records are numbered from 1: the position in a JSON
list, or the line number in a text / JSONL file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the graph fields of ProsQA / ProntoQA records (Coconut JSON) that index into idx_to_symbol
_NODE_FIELDS = ("root", "target", "neg_target")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record.

    Args:
        file: the file's path as given.
        record: 1-based record number (JSON list position) or line number (text, JSONL); None
            when the whole file is unreadable.
        field: the field at fault (``question``, ``steps[2]``, ``edges``...), or ``line`` / ``json``.
        message: what is wrong, in words a user can act on.
        unit: ``record`` or ``line``, how ``record`` counts.
    """

    file: str
    record: int | None
    field: str
    message: str
    unit: str = "record"

    def __str__(self) -> str:
        where = f"{self.file}: {self.unit} {self.record}" if self.record is not None else self.file
        return f"{where}: field '{self.field}': {self.message}"


def _text_problems(value: Any, name: str) -> list[tuple[str, str]]:
    if value is None:
        return [(name, "missing")]
    if not isinstance(value, str):
        return [(name, f"expected a string, got {type(value).__name__}")]
    if not value.strip():
        return [(name, "empty")]
    return []


def _graph_problems(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """Checks for the ProsQA/ProntoQA graph fields, when a record carries them."""
    out: list[tuple[str, str]] = []
    symbols = meta.get("idx_to_symbol")
    if symbols is None:
        return out
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s for s in symbols):
        return [("idx_to_symbol", "expected a list of non-empty strings")]
    n = len(symbols)

    def is_node(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n

    edges = meta.get("edges")
    if edges is not None:
        if not isinstance(edges, list):
            out.append(("edges", "expected a list of [parent, child] pairs"))
        else:
            for i, e in enumerate(edges):
                if not (isinstance(e, list) and len(e) == 2 and all(is_node(x) for x in e)):
                    out.append((f"edges[{i}]", f"expected [parent, child] node indices below {n}, got {e!r}"))
    for key in _NODE_FIELDS:
        if key in meta and not is_node(meta[key]):
            out.append((key, f"expected a node index below {n}, got {meta[key]!r}"))
    return out


def record_problems(obj: Any, meta_key: str | None = None) -> list[tuple[str, str]]:
    """(field, message) for everything wrong with one JSON/JSONL record.

    Args:
        obj: the decoded record.
        meta_key: ``"meta"`` for JSONL (extras nested under ``meta``); None for Coconut JSON
            (extras are top-level fields).

    Returns:
        A list of (field, message); empty when the record is valid.
    """
    if not isinstance(obj, dict):
        return [("record", f"expected an object with question/steps/answer, got {type(obj).__name__}")]
    out = _text_problems(obj.get("question"), "question")
    steps = obj.get("steps")
    if steps is None:
        out.append(("steps", "missing"))
    elif not isinstance(steps, list):
        out.append(("steps", f"expected a list of strings, got {type(steps).__name__}"))
    else:
        out += [(f"steps[{i}]", f"expected a string, got {type(s).__name__}")
                for i, s in enumerate(steps) if not isinstance(s, str)]
    out += _text_problems(obj.get("answer"), "answer")
    if meta_key is None:
        meta = obj
    else:
        extra = sorted(set(obj) - {"question", "steps", "answer", meta_key})
        out += [(k, "unknown field (JSONL records hold question, steps, answer, meta)") for k in extra]
        meta = obj.get(meta_key, {})
        if not isinstance(meta, dict):
            return out + [(meta_key, f"expected an object, got {type(meta).__name__}")]
    return out + _graph_problems(meta)


def icot_problems(line: str) -> list[tuple[str, str]]:
    """(field, message) for one iCoT text line ``question||steps #### answer``."""
    if "||" not in line:
        return [("line", "malformed: no '||' between question and steps")]
    question, rest = line.split("||", 1)
    if " #### " not in rest:
        return [("line", "malformed: no ' #### ' before the answer")]
    answer = rest.rsplit(" #### ", 1)[1]
    return _text_problems(question, "question") + _text_problems(answer, "answer")


def validate_file(path: str | Path, format: str | None = None) -> list[Problem]:
    """Every problem in a data file (an empty list when it is valid).

    Args:
        path: a Coconut JSON, iCoT text or JSONL file.
        format: ``json``, ``icot`` or ``jsonl``; detected from extension and content when None.

    Returns:
        All problems found, in file order.
    """
    # formats imports this module's checks, so it is imported here, where it is used
    from latentcot.data.formats import parse_file

    return parse_file(path, format)[1]
