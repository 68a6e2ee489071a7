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
_GRAPH_FIELDS = ("edges", *_NODE_FIELDS)
# the bookkeeping keys latentcot itself writes into a JSONL record's meta (see formats.py);
# any other key starting with "_" is refused, so that no user key can steer the reader or writer
BOOKKEEPING_KEYS = ("_key_order", "_step_separator")
CORE_FIELDS = ("question", "steps", "answer")
# real records nest 4 deep (list > record > edges > pair); anything far deeper is not a record
MAX_DEPTH = 16


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


def has_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone UTF-16 surrogate (from a JSON escape like ``\\ud800``),
    which no UTF-8 file can store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text_problems(value: Any, name: str) -> list[tuple[str, str]]:
    if value is None:
        return [(name, "missing")]
    if not isinstance(value, str):
        return [(name, f"expected a string, got {type(value).__name__}")]
    if not value.strip():
        return [(name, "empty")]
    if has_surrogate(value):
        return [(name, "holds a lone UTF-16 surrogate (an escape like \\ud800 that is no character)")]
    return []


def steps_problems(steps: Any) -> list[tuple[str, str]]:
    """Problems of a ``steps`` value: a list of non-blank strings. ``[""]`` alone is accepted:
    it is how Coconut's converter writes a record without steps (6 records of gsm_valid.json)."""
    if steps is None:
        return [("steps", "missing")]
    if not isinstance(steps, list):
        return [("steps", f"expected a list of strings, got {type(steps).__name__}")]
    if steps == [""]:
        return []
    out = []
    for i, step in enumerate(steps):
        if isinstance(step, str) and not step.strip():
            out.append((f"steps[{i}]", "empty or blank step"))
        elif isinstance(step, str) and has_surrogate(step):
            out.append((f"steps[{i}]", "holds a lone UTF-16 surrogate (an escape like \\ud800 that is no character)"))
        elif not isinstance(step, str):
            out.append((f"steps[{i}]", f"expected a string, got {type(step).__name__}"))
    return out


def _value_problems(value: Any, name: str, depth: int = 0) -> list[tuple[str, str]]:
    """Surrogates anywhere in an extra field, and nesting beyond :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        return [(name, f"nested deeper than {MAX_DEPTH} levels")]
    if isinstance(value, str):
        return [(name, "holds a lone UTF-16 surrogate")] if has_surrogate(value) else []
    if isinstance(value, dict):
        for key, item in value.items():
            found = _value_problems(key, name, depth + 1) or _value_problems(item, f"{name}.{key}", depth + 1)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = _value_problems(item, f"{name}[{i}]", depth + 1)
            if found:
                return found
    return []


def _graph_problems(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """Checks for the ProsQA/ProntoQA graph fields, when a record carries them."""
    out: list[tuple[str, str]] = []
    symbols = meta.get("idx_to_symbol")
    if symbols is None:
        return [(key, "a graph field without idx_to_symbol (its node names)") for key in _GRAPH_FIELDS if key in meta]
    if not isinstance(symbols, list) or not all(isinstance(s, str) and s.strip() for s in symbols):
        return [("idx_to_symbol", "expected a list of non-empty strings")]
    if len(set(symbols)) != len(symbols):
        twice = next(s for s in symbols if symbols.count(s) > 1)
        return [("idx_to_symbol", f"names '{twice}' twice")]
    n = len(symbols)

    def is_node(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n

    edges = meta.get("edges")
    if edges is not None:
        if not isinstance(edges, list):
            out.append(("edges", "expected a list of [parent, child] pairs"))
        else:
            seen = set()
            for i, e in enumerate(edges):
                if not (isinstance(e, list) and len(e) == 2 and all(is_node(x) for x in e)):
                    out.append((f"edges[{i}]", f"expected [parent, child] node indices below {n}, got {e!r}"))
                elif e[0] == e[1]:
                    out.append((f"edges[{i}]", f"a node linked to itself: {e!r}"))
                elif tuple(e) in seen:
                    out.append((f"edges[{i}]", f"the edge {e!r} is listed twice"))
                else:
                    seen.add(tuple(e))
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
    out += steps_problems(obj.get("steps"))
    out += _text_problems(obj.get("answer"), "answer")
    if meta_key is None:
        meta = {k: v for k, v in obj.items() if k not in CORE_FIELDS}
        out += [(k, "fields starting with '_' are reserved for latentcot's bookkeeping") for k in meta if k.startswith("_")]
    else:
        extra = sorted(set(obj) - {"question", "steps", "answer", meta_key})
        out += [(k, "unknown field (JSONL records hold question, steps, answer, meta)") for k in extra]
        meta = obj.get(meta_key, {})
        if not isinstance(meta, dict):
            return out + [(meta_key, f"expected an object, got {type(meta).__name__}")]
        out += _bookkeeping_problems(meta, meta_key)
    for key, value in meta.items():
        out += _value_problems(value, key if meta_key is None else f"{meta_key}.{key}")
    return out + _graph_problems(meta)


def _bookkeeping_problems(meta: dict[str, Any], meta_key: str) -> list[tuple[str, str]]:
    """A JSONL record's meta may carry the two bookkeeping keys latentcot writes, and only with
    values that cannot change what the record says: ``_key_order`` lists exactly the record's
    fields, ``_step_separator`` is one of the two iCoT separators."""
    out: list[tuple[str, str]] = []
    fields = [*CORE_FIELDS, *(k for k in meta if not k.startswith("_"))]
    for key, value in meta.items():
        where = f"{meta_key}.{key}"
        if key in CORE_FIELDS:
            out.append((where, f"'{key}' is a record field, not meta"))
        elif not key.startswith("_"):
            continue
        elif key not in BOOKKEEPING_KEYS:
            out.append((where, f"keys starting with '_' are reserved ({', '.join(BOOKKEEPING_KEYS)})"))
        elif key == "_key_order" and not (
            isinstance(value, list) and all(isinstance(k, str) for k in value) and sorted(value) == sorted(fields)
        ):
            out.append((where, f"must list exactly the record's fields {fields}, got {value!r}"))
        elif key == "_step_separator" and value not in (" ", " + "):
            out.append((where, f"must be ' ' or ' + ', got {value!r}"))
    return out


def icot_problems(line: str) -> list[tuple[str, str]]:
    """(field, message) for one iCoT text line ``question||steps #### answer``."""
    if "||" not in line:
        return [("line", "malformed: no '||' between question and steps")]
    question, rest = line.split("||", 1)
    if " #### " not in rest:
        return [("line", "malformed: no ' #### ' before the answer")]
    if "\r" in line:
        return [("line", "holds a carriage return (Windows line endings?); iCoT lines end with \\n only")]
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
