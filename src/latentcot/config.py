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
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from latentcot.errors import LatentCotError

T = TypeVar("T")


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
    if tp is Any:
        return value
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
        return dict(value)
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
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LatentCotError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LatentCotError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise LatentCotError(f"{where}: expected a string, got {value!r}")
        return value
    raise LatentCotError(f"{where}: unsupported config type {_type_name(tp)}")


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
            raise LatentCotError(f"{where}: unknown key '{key}'{_closest(key, names)}")
        kwargs[key] = _coerce(value, hints[key], _child(where, key))
    try:
        return cls(**kwargs)
    except LatentCotError as err:
        raise LatentCotError(f"{where}: {err}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain data (what gets written into run folders and checkpoints)."""
    return dataclasses.asdict(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value."""
    if "=" not in text:
        raise LatentCotError(f"override '{text}': expected KEY=VALUE, e.g. train.lr=3e-4")
    key, raw = text.split("=", 1)
    if not key:
        raise LatentCotError(f"override '{text}': the key before '=' is empty")
    return key.split("."), yaml.safe_load(raw) if raw else ""


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
        node[path[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for a missing file or bad YAML."""
    path = Path(path)
    if not path.is_file():
        raise LatentCotError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise LatentCotError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise LatentCotError(f"{path}: the top level must be a mapping of config sections")
    return data


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
