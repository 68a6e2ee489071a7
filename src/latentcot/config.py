"""Typed dataclass configs: YAML overrides the defaults, dotted CLI keys override the YAML.

We keep this small and hand-written rather than pulling in omegaconf or pydantic: configs are
plain ``@dataclass`` classes (every field has a default and a ``help`` in its metadata), the
loader checks every key and type against the dataclass, and each error is one line that names
the file and dotted key, with the closest valid key for a misspelling. Cross-field rules live in
each dataclass's ``__post_init__`` and raise :class:`LatentCotError`.

Example::

    cfg = load_config(RunConfig, "configs/coconut_prosqa.yaml", ["train.lr=3e-4"])
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from latentcot.errors import LatentCotError
from latentcot.files import read_regular_file

T = TypeVar("T")


class CliValue(str):
    """A ``key=value`` given on the command line: its text, and what YAML reads it as.

    A string field takes the text as written (``method.init_token=<<``, ``=yes``, ``=007``); any
    other field takes the YAML value, and text YAML cannot read is an error naming the key.
    """

    parsed: Any
    error: str | None

    def __new__(cls, text: str) -> CliValue:
        self = super().__new__(cls, text)
        self.parsed, self.error = text, None
        if text:
            try:
                self.parsed = yaml.load(text, Loader=_StrictLoader)
            except yaml.YAMLError as err:
                self.error = str(getattr(err, "problem", None) or err).splitlines()[0]
        return self

    def value(self, where: str, raw_ok: bool = False) -> Any:
        """The YAML value; the text itself when YAML cannot read it and ``raw_ok``."""
        if self.error is None:
            return self.parsed
        if raw_ok:
            return str(self)
        raise LatentCotError(f"{where}: cannot read {str(self)!r} as a value ({self.error})")


def plain(value: Any) -> Any:
    """``value`` with every :class:`CliValue` inside replaced by its YAML value (or its text)."""
    if isinstance(value, CliValue):
        return value.value("", raw_ok=True)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if key in seen and key != "<<":
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a default and a help string (mutable defaults are copied)."""
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kwargs)
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _closest(key: str, valid: list[str]) -> str:
    match = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else f" (valid keys: {', '.join(sorted(valid))})"


def _child(where: str, key: str) -> str:
    """'file.yaml' + 'optim' -> 'file.yaml: optim'; 'file.yaml: optim' + 'lr' -> 'file.yaml: optim.lr'."""
    return f"{where}.{key}" if ": " in where else f"{where}: {key}"


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert only the lossless cases (int -> float)."""
    origin = get_origin(tp)
    if isinstance(value, CliValue):
        if tp is str:
            return str(value)
        textual = (origin is Literal and all(isinstance(a, str) for a in get_args(tp))) or (
            origin in (Union, types.UnionType) and str in get_args(tp))
        value = value.value(where, raw_ok=textual)
    if tp is Any:
        return plain(value)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except LatentCotError as err:
                errors.append(str(err))
        raise LatentCotError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise LatentCotError(f"{where}: must be one of {choices}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise LatentCotError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (Any,)
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise LatentCotError(f"{where}: expected a mapping, got {value!r}")
        return plain(dict(value))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise LatentCotError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise LatentCotError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # PyYAML reads "3e-4" (no dot) as a string; accept any float literal
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LatentCotError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            number = math.inf
        if not math.isfinite(number):
            raise LatentCotError(f"{where}: expected a finite number, got {value!r:.40}")
        return number
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LatentCotError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise LatentCotError(f"{where}: expected a string, got {value!r}")
        return value
    raise LatentCotError(f"{where}: unsupported config type {_type_name(tp)}")


_LINE_BREAKS = {ord(ch): ch.encode("unicode_escape").decode() for ch in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


def from_dict(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build the dataclass ``cls`` from a mapping, checking every key and type.

    Args:
        cls: the dataclass to build.
        data: the mapping (e.g. parsed YAML).
        where: a prefix naming the source (file and key path) used in error messages.

    Returns:
        The dataclass instance; ``__post_init__`` runs its cross-field rules.

    Raises:
        LatentCotError: an unknown key (with the closest valid key), a wrong type or a broken rule.
    """
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise LatentCotError(f"{where}: unknown key '{key}'{_closest(str(key), names)}")
        kwargs[key] = _coerce(value, hints[key], _child(where, key))
    try:
        return cls(**kwargs)
    except LatentCotError as err:
        # a rule's message may quote a value a user typed with line breaks in it: keep it one line
        raise LatentCotError(f"{where}: {str(err).translate(_LINE_BREAKS)}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain data (what gets written into run folders and checkpoints)."""
    return dataclasses.asdict(cfg)


def parse_override(text: str) -> tuple[list[str], CliValue]:
    """Split ``a.b.c=value`` into its key path and the value (see :class:`CliValue`)."""
    if "=" not in text:
        raise LatentCotError(f"override '{text}': expected KEY=VALUE, e.g. train.lr=3e-4")
    key, raw = text.split("=", 1)
    if not key or "" in key.split("."):
        raise LatentCotError(f"override '{text}': the key before '=' is empty or has an empty part")
    return key.split("."), CliValue(raw)


def merge_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted ``key=value`` overrides onto a nested mapping (a copy is returned)."""
    import copy

    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise LatentCotError(f"override '{text}': '{part}' is not a section")
            node = child
        # a mapping (method={name: coconut}) is a section that later keys may go into
        node[path[-1]] = value.parsed if value.error is None and isinstance(value.parsed, dict) else value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing, empty, non-UTF-8 or bad file,
    a key given twice, or a directory, FIFO or device in place of the file."""
    path = Path(path)
    raw = read_regular_file(path, "config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LatentCotError(f"{path}: not UTF-8 text (byte {err.start})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        problem = str(getattr(err, "problem", None) or err).splitlines()[0]
        raise LatentCotError(f"{path}{line}: invalid YAML ({problem})") from None
    except RecursionError:
        raise LatentCotError(f"{path}: invalid YAML (nested too deeply)") from None
    if data is None:
        raise LatentCotError(f"{path}: empty config file (give at least one section, or no file for the defaults)")
    if not isinstance(data, dict):
        raise LatentCotError(f"{path}: the top level must be a mapping of config sections")
    return data


def check_derived(cls: type, data: dict[str, Any], given: set[tuple[str, ...]], where: str) -> None:
    """Keys a config sets from another field (``cls.derived_keys``, e.g. RunConfig's ``train.seed``
    from ``seed``): refused as an override, dropped from a saved config whose source is overridden
    (it is derived again), refused in the YAML where it disagrees with its source. Edits ``data``."""
    for key, source in getattr(cls, "derived_keys", {}).items():
        *sections, name = key.split(".")
        if (*sections, name) in given:
            raise LatentCotError(f"override '{key}': this config sets it from '{source}'; give {source}=… instead")
        node: Any = data
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict) or name not in node:
            continue
        if (source,) in given:
            del node[name]
            continue
        value = data.get(source, next(f.default for f in dataclasses.fields(cls) if f.name == source))
        if node[name] != value:
            raise LatentCotError(f"{where}: {key} is {node[name]!r} but {source} is {value!r}; "
                                 f"{key} follows {source}, so set {source} only")


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Defaults, then the YAML file (if any), then dotted overrides; every key checked.

    Args:
        cls: the top-level config dataclass.
        path: a YAML file, or None for the defaults.
        overrides: ``["train.lr=3e-4", ...]``.

    Returns:
        The validated config.
    """
    data = read_yaml(path) if path is not None else {}
    where = str(path) if path is not None else "config"
    check_derived(cls, data, {tuple(parse_override(text)[0]) for text in overrides or []}, where)
    data = merge_overrides(data, overrides or [])
    return from_dict(cls, data, where)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the resolved config as YAML (runs describe themselves)."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, help) for every field, nested dataclasses flattened; for --help."""
    rows: list[tuple[str, str, str]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows += describe(tp, f"{prefix}{f.name}.")  # type: ignore[arg-type]
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__}.{f.name} has no default")
        rows.append((prefix + f.name, repr(default), f.metadata.get("help", "")))
    return rows
