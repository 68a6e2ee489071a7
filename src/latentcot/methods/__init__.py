"""Language-model methods, one file each, resolved by name through a plain dict.

Example::

    config = method_config("coconut", {"c_thought": 2}, where="run.yaml: method")
    method = build_method("coconut", config, backbone, tokenizer)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.config import from_dict
from latentcot.errors import LatentCotError
from latentcot.methods.base import LossOutput, Method, ReasonOutput
from latentcot.methods.coconut import Coconut, CoconutConfig
from latentcot.methods.codi import Codi, CodiConfig
from latentcot.methods.cot import Cot, CotConfig
from latentcot.methods.nocot import NoCot, NoCotConfig
from latentcot.methods.pause import Pause, PauseConfig
from latentcot.methods.simcot import SimCot, SimCotConfig

# A method class, as the registry calls it: (config, backbone, tokenizer) -> a Method. Typing the
# registry's entries so lets mypy check each class against the Method protocol.
MethodFactory = Callable[[Any, PreTrainedModel, PreTrainedTokenizerBase], Method]

# name -> (config dataclass, method class)
METHODS: dict[str, tuple[type, MethodFactory]] = {
    "nocot": (NoCotConfig, NoCot),
    "cot": (CotConfig, Cot),
    "pause": (PauseConfig, Pause),
    "coconut": (CoconutConfig, Coconut),
    "codi": (CodiConfig, Codi),
    "simcot": (SimCotConfig, SimCot),
}


def _lookup(name: str, where: str) -> tuple[type, MethodFactory]:
    if name not in METHODS:
        raise LatentCotError(f"{where}: unknown method '{name}' (valid: {', '.join(METHODS)})")
    return METHODS[name]


def method_config(name: str, options: dict[str, Any] | None = None, where: str = "method") -> Any:
    """The typed config of method ``name`` from a mapping (every key and type checked).

    Args:
        name: a key of :data:`METHODS`.
        options: field values (e.g. the YAML section); defaults for the rest.
        where: names the source in error messages (file and key path).

    Raises:
        LatentCotError: unknown method, unknown key (closest valid one named) or bad value.
    """
    config_cls, _ = _lookup(name, where)
    return from_dict(config_cls, options or {}, where)


def build_method(name: str, config: Any, backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> Method:
    """Wrap ``backbone`` in method ``name``; adds the special tokens to ``tokenizer`` and resizes
    ``backbone`` (idempotent: a reloaded checkpoint is left as it is)."""
    _, method_cls = _lookup(name, "method")
    return method_cls(config, backbone, tokenizer)


__all__ = ["METHODS", "LossOutput", "Method", "ReasonOutput", "build_method", "method_config"]
