"""Checkpoints: a Hugging Face folder plus latentcot's own files, written atomically, no pickle.

Layout of ``run_dir/checkpoints/step-000123/``::

    config.json, generation_config.json, model.safetensors   backbone.save_pretrained(...)
    tokenizer.json, tokenizer_config.json, ...               tokenizer.save_pretrained(...)
    method.safetensors        the method's own weights (state_dict keys not under "backbone.")
    step_decoder.safetensors  keys under "step_decoder." (SIM-CoT; training only, may be deleted)
    latentcot.json            method name, resolved config, step, epoch, stage, data position
    trainer_state.safetensors optimizer / scheduler tensors and torch RNG states
    trainer_state.json        everything else of the training state, tensors referenced by key

A checkpoint is written into a temporary folder beside its final place and renamed when
complete, so a crash mid-write leaves the previous checkpoints untouched and never a half
folder named ``step-*``. Loading reads only safetensors and JSON: nothing is unpickled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from latentcot.errors import LatentCotError

if TYPE_CHECKING:
    from latentcot.methods.base import Method

CHECKPOINTS = "checkpoints"
STEP_DECODER = "step_decoder."
_STEP_DIR = re.compile(r"^step-(\d+)$")


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    """``run_dir/checkpoints/step-000123``."""
    return Path(run_dir) / CHECKPOINTS / f"step-{step:06d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (temporary folders are never listed)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(_STEP_DIR.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


# --- nested state <-> (JSON, tensors) -------------------------------------------------------
# Optimizer, scheduler and RNG states are nests of dicts (int or str keys), lists, tuples,
# tensors, numpy arrays and scalars. Every container and tensor is tagged so decoding restores
# the exact types; tensors go to safetensors under their path in the nest.


def encode_state(obj: Any, tensors: dict[str, torch.Tensor], path: str = "state") -> Any:
    """Turn a nested state into JSON-able data, moving tensors into ``tensors`` by path."""
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous().clone()
        return {"tensor": path}
    if isinstance(obj, np.ndarray):
        return {"ndarray": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {"dict": [[k, encode_state(v, tensors, f"{path}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        tag = "tuple" if isinstance(obj, tuple) else "list"
        return {tag: [encode_state(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at {path} in a checkpoint")


def decode_state(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode_state`."""
    if not isinstance(data, dict):
        return data
    (tag,) = data.keys() - {"dtype"}
    if tag == "tensor":
        return tensors[data["tensor"]]
    if tag == "ndarray":
        return np.asarray(data["ndarray"], dtype=data["dtype"])
    if tag == "dict":
        return {k: decode_state(v, tensors) for k, v in data["dict"]}
    items = [decode_state(v, tensors) for v in data[tag]]
    return tuple(items) if tag == "tuple" else items


# --- save -----------------------------------------------------------------------------------


def save_checkpoint(
    run_dir: str | Path,
    method: Method,
    info: dict[str, Any],
    trainer_state: dict[str, Any] | None = None,
    method_state: dict[str, torch.Tensor] | None = None,
    keep_last: int = 0,
) -> Path:
    """Write ``run_dir/checkpoints/step-{info['step']}`` atomically and prune old ones.

    Args:
        run_dir: the run folder.
        method: the (unwrapped) method; its ``backbone`` and ``tokenizer`` are saved in
            Hugging Face format.
        info: what goes into ``latentcot.json``; must hold ``step``. The method name is added.
        trainer_state: optimizer / scheduler / RNG state (any nest of containers, tensors
            and scalars), or None for a weights-only checkpoint.
        method_state: the method's full state dict when it differs from
            ``method.state_dict()`` (gathered from FSDP shards).
        keep_last: keep this many newest checkpoints (0 keeps all).

    Returns:
        The checkpoint folder.
    """
    final = checkpoint_dir(run_dir, int(info["step"]))
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(".tmp-*"):  # left by a crash mid-write
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir()
    try:
        _write(tmp, method, info, trainer_state, method_state)
        if final.exists():  # re-saving a step (e.g. the end of a resumed run): swap folders
            old = final.parent / f".tmp-old-{final.name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_last:
        for old_ckpt in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old_ckpt)
    return final


def _write(
    folder: Path,
    method: Method,
    info: dict[str, Any],
    trainer_state: dict[str, Any] | None,
    method_state: dict[str, torch.Tensor] | None,
) -> None:
    module = cast(nn.Module, method)  # every method is an nn.Module (see methods/base.py)
    state = module.state_dict() if method_state is None else method_state
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    method.backbone.save_pretrained(folder, state_dict=backbone)
    method.tokenizer.save_pretrained(folder)
    extra = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    decoder = {k: v for k, v in extra.items() if k.startswith(STEP_DECODER)}
    own = {k: v for k, v in extra.items() if not k.startswith(STEP_DECODER)}
    save_file(_cpu(own), folder / "method.safetensors")
    if decoder:
        save_file(_cpu(decoder), folder / "step_decoder.safetensors")
    meta = {"method": method.name, **info}
    (folder / "latentcot.json").write_text(json.dumps(meta, indent=2))
    if trainer_state is not None:
        tensors: dict[str, torch.Tensor] = {}
        encoded = encode_state(trainer_state, tensors)
        save_file(tensors, folder / "trainer_state.safetensors")
        (folder / "trainer_state.json").write_text(json.dumps(encoded))


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # a copy, so extra modules that alias each other (tied heads) can share one file
    return {k: v.detach().cpu().clone() for k, v in state.items()}


# --- load -----------------------------------------------------------------------------------


def read_info(path: str | Path) -> dict[str, Any]:
    """``latentcot.json`` of a checkpoint: method name, config, step, epoch, stage, ..."""
    file = Path(path) / "latentcot.json"
    if not file.is_file():
        raise LatentCotError(f"{path}: not a latentcot checkpoint (no latentcot.json)")
    return json.loads(file.read_text())


def read_method_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The method's full state dict from a checkpoint folder (safetensors only).

    ``step_decoder.*`` keys are included when ``step_decoder.safetensors`` is present.
    """
    folder = Path(path)
    index = folder / "model.safetensors.index.json"
    if index.is_file():  # a sharded backbone
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    else:
        raise LatentCotError(f"{folder}: no model.safetensors (or index) in the checkpoint")
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update({f"backbone.{k}": v for k, v in load_file(folder / shard).items()})
    for extra in ("method.safetensors", "step_decoder.safetensors"):
        if (folder / extra).is_file():
            state.update(load_file(folder / extra))
    return state


def missing_keys_that_matter(method: nn.Module, missing: list[str]) -> list[str]:
    """Missing keys other than tied weights (stored once) and a deliberately dropped step decoder."""
    current = method.state_dict(keep_vars=True)
    missing_set = set(missing)
    present_ptrs = {t.data_ptr() for k, t in current.items() if k not in missing_set}
    return [
        k
        for k in missing
        if not k.startswith(STEP_DECODER) and current[k].data_ptr() not in present_ptrs
    ]


def load_checkpoint(path: str | Path, method: Method) -> dict[str, Any]:
    """Load a checkpoint's weights into ``method`` in place.

    Args:
        path: a checkpoint folder (``.../checkpoints/step-000123``).
        method: a method built from the same name and config (see :func:`read_info`).

    Returns:
        The checkpoint's ``latentcot.json`` content.

    Raises:
        LatentCotError: the folder is not a checkpoint or does not match the method.
    """
    info = read_info(path)
    state = read_method_state(path)
    module = cast(nn.Module, method)  # every method is an nn.Module (see methods/base.py)
    result = module.load_state_dict(state, strict=False)
    missing = missing_keys_that_matter(module, result.missing_keys)
    if missing or result.unexpected_keys:
        raise LatentCotError(
            f"{path}: checkpoint does not match method '{info['method']}' "
            f"(missing {missing[:5]}, unexpected {result.unexpected_keys[:5]})"
        )
    return info


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    """The optimizer / scheduler / RNG state saved with a checkpoint (safetensors + JSON)."""
    folder = Path(path)
    if not (folder / "trainer_state.json").is_file():
        raise LatentCotError(f"{folder}: no trainer_state.json; this checkpoint cannot be resumed")
    tensors = load_file(folder / "trainer_state.safetensors")
    return decode_state(json.loads((folder / "trainer_state.json").read_text()), tensors)
