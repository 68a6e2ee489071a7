"""Checkpoints: a Hugging Face folder plus latentcot's own files, written atomically, no pickle.

Layout of ``run_dir/checkpoints/step-000123/``::

    config.json, generation_config.json, model.safetensors   backbone.save_pretrained(...)
    tokenizer.json, tokenizer_config.json, ...               tokenizer.save_pretrained(...)
                                   (a backbone that is not a Hugging Face model, EndoCoT's: its
                                   state dict alone in model.safetensors, no tokenizer)
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

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel

from latentcot.errors import LatentCotError

if TYPE_CHECKING:
    from latentcot.methods.base import Trainable

CHECKPOINTS = "checkpoints"
STEP_DECODER = "step_decoder."
# weight files in pickle formats: refused before anything (transformers included) opens them
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# dtypes a checkpoint's floating-point weights may have
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
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


def resolve_checkpoint(path: str | Path) -> Path:
    """``path`` itself, or the latest checkpoint of the run folder ``path``.

    Raises:
        LatentCotError: a run folder without a checkpoint yet.
    """
    folder = Path(path)
    if (folder / "checkpoints").is_dir():
        latest = latest_checkpoint(folder)
        if latest is None:
            raise LatentCotError(f"{folder}: run folder has no checkpoint yet")
        folder = latest
    return folder


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


# --- run folders ----------------------------------------------------------------------------

# what a run leaves in its folder besides checkpoints/ and tb/ (removed by --overwrite)
RUN_FILES = ("metrics.jsonl", "eval.json", "config.json", "config.yaml")
STAGE_START = "stage_start"  # run_dir/stage_start/checkpoints/: where the current stage began (train.stage_retries)


def prepare_run_dir(run_dir: str | Path, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse to mix two runs in one folder.

    A folder that already holds a run (checkpoints or ``metrics.jsonl``) is continued with
    ``resume``, replaced with ``overwrite`` (its checkpoints, TensorBoard events and run files
    are deleted; nothing else in the folder is touched; the trainer clears the stage-start snapshot
    itself at any fresh start), and otherwise refused.

    Raises:
        LatentCotError: the folder holds a run and neither flag is given, or both are.
    """
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise LatentCotError(f"{run_dir}: give --resume (continue the run) or --overwrite (replace it), not both")
    held = [name for name in ("checkpoints/step-*", "metrics.jsonl") if any(run_dir.glob(name))]
    if not held or resume:
        return
    if not overwrite:
        raise LatentCotError(f"{run_dir}: already holds a run ({', '.join(held)}); continue it with --resume "
                             "or replace it with --overwrite")
    if os.environ.get("RANK", "0") == "0":  # under torchrun one process deletes
        for name in (CHECKPOINTS, "tb"):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in RUN_FILES:
            (run_dir / name).unlink(missing_ok=True)


def non_finite_tensor(state: dict[str, torch.Tensor]) -> str | None:
    """The first floating-point tensor holding NaN or an infinity, or None."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return key
    return None


# --- save -----------------------------------------------------------------------------------


def save_checkpoint(
    run_dir: str | Path,
    method: Trainable,
    info: dict[str, Any],
    trainer_state: dict[str, Any] | None = None,
    method_state: dict[str, torch.Tensor] | None = None,
    keep_last: int = 0,
) -> Path:
    """Write ``run_dir/checkpoints/step-{info['step']}`` atomically and prune old ones.

    Args:
        run_dir: the run folder.
        method: the (unwrapped) method; its ``backbone`` and ``tokenizer`` are saved in
            Hugging Face format (a backbone of another kind: its weights alone, no tokenizer).
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
    bad = non_finite_tensor(cast(nn.Module, method).state_dict() if method_state is None else method_state)
    if bad is not None:  # never write a checkpoint that cannot be used
        raise LatentCotError(f"step {info['step']}: weight '{bad}' is NaN or infinite; checkpoint not written "
                             f"(the last good one is {latest_checkpoint(run_dir)})")
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
    method: Trainable,
    info: dict[str, Any],
    trainer_state: dict[str, Any] | None,
    method_state: dict[str, torch.Tensor] | None,
) -> None:
    module = cast(nn.Module, method)  # every method is an nn.Module (see methods/base.py)
    state = module.state_dict() if method_state is None else method_state
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    if isinstance(method.backbone, PreTrainedModel):
        method.backbone.save_pretrained(folder, state_dict=backbone)
    else:  # EndoCoT: the same file name, read back by read_method_state alike
        save_file(_cpu(backbone), folder / "model.safetensors")
    if method.tokenizer is not None:
        method.tokenizer.save_pretrained(folder)
    extra = {k: v for k, v in state.items() if not k.startswith("backbone.")}
    decoder = {k: v for k, v in extra.items() if k.startswith(STEP_DECODER)}
    own = {k: v for k, v in extra.items() if not k.startswith(STEP_DECODER)}
    save_file(_cpu(own), folder / "method.safetensors")
    if decoder:
        save_file(_cpu(decoder), folder / "step_decoder.safetensors")
    if trainer_state is not None:
        tensors: dict[str, torch.Tensor] = {}
        encoded = encode_state(trainer_state, tensors)
        save_file(tensors, folder / "trainer_state.safetensors")
        (folder / "trainer_state.json").write_text(json.dumps(encoded))
    # a digest per file, so that a flipped byte is found on loading (latentcot.json is written last)
    digests = {p.name: file_digest(p) for p in sorted(folder.iterdir()) if p.is_file()}
    meta = {"method": method.name, **info, "sha256": digests}
    meta["checksum"] = info_checksum(meta)
    (folder / "latentcot.json").write_text(json.dumps(meta, indent=2))


def info_checksum(info: dict[str, Any]) -> str:
    """SHA-256 of ``latentcot.json``'s content without its own ``checksum`` (canonical JSON)."""
    body = json.dumps({k: v for k, v in info.items() if k != "checksum"}, sort_keys=True)
    return hashlib.sha256(body.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # a copy, so extra modules that alias each other (tied heads) can share one file
    return {k: v.detach().cpu().clone() for k, v in state.items()}


# --- load -----------------------------------------------------------------------------------


def read_info(path: str | Path) -> dict[str, Any]:
    """``latentcot.json`` of a checkpoint: method name, config, step, epoch, stage, ...

    Raises:
        LatentCotError: naming the file when it is missing, not JSON or not a checkpoint's.
    """
    from latentcot.data.formats import load_json
    from latentcot.files import read_regular_file

    file = Path(path) / "latentcot.json"
    if not file.exists():
        raise LatentCotError(f"{path}: not a latentcot checkpoint (no latentcot.json)")
    try:
        info, error = load_json(read_regular_file(file, "checkpoint file").decode("utf-8"))
    except UnicodeDecodeError:
        info, error = None, "not UTF-8 text"
    if error is None and not (isinstance(info, dict) and isinstance(info.get("method"), str)
                              and isinstance(info.get("config", {}), dict) and isinstance(info.get("step", 0), int)):
        error = "not a latentcot checkpoint description (a method name, a config object, an integer step)"
    elif error is None and "checksum" in info and info["checksum"] != info_checksum(info):
        error = "its content differs from the checksum recorded when it was saved"
    if error is not None:
        raise LatentCotError(f"{file}: corrupt ({error})")
    return cast(dict[str, Any], info)


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check a checkpoint folder before any library loads from it; returns ``latentcot.json``.

    Refuses pickle-format weights (``pytorch_model.bin``, ``*.pt``: nothing is ever unpickled, so
    transformers is never pointed at a folder holding them), a file whose SHA-256 differs from the
    one recorded at saving, and a ``*.safetensors`` file that is empty, truncated or has a bad
    header, or holds float64 weights.

    Raises:
        LatentCotError: one line naming the file.
    """
    folder = Path(path)
    info = read_info(folder)
    if not isinstance(info.get("config"), dict):
        raise LatentCotError(f"{folder / 'latentcot.json'}: corrupt (no config object)")
    for file in sorted(folder.iterdir()):
        if file.suffix in PICKLE_SUFFIXES:
            raise LatentCotError(f"{file}: a pickle-format weight file; latentcot loads safetensors only "
                                 "(convert it with safetensors, or remove it)")
    digests = info.get("sha256", {})
    for name, digest in (digests.items() if isinstance(digests, dict) else ()):
        file = folder / name
        if file.is_file() and file_digest(file) != digest:  # a deleted file (a dropped step decoder) is fine
            raise LatentCotError(f"{file}: corrupt (its SHA-256 differs from the one recorded when it was saved)")
    for file in sorted(folder.glob("*.safetensors")):
        _check_safetensors_header(file)
    return info


def _check_safetensors_header(file: Path) -> None:
    if file.stat().st_size == 0:
        raise LatentCotError(f"{file}: empty file")
    try:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                dtype = f.get_slice(key).get_dtype()
                if dtype in ("F64", "float64"):
                    raise LatentCotError(f"{file}: tensor '{key}' is float64; checkpoints hold float32, float16 "
                                         "or bfloat16 weights")
    except LatentCotError:
        raise
    except Exception as err:  # safetensors raises its own error types for every malformed file
        raise LatentCotError(f"{file}: corrupt safetensors file ({str(err).splitlines()[0][:160]})") from None


def load_tensors(file: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors; every floating tensor must be finite and not float64.

    Raises:
        LatentCotError: naming the file (and the tensor) when it is unreadable or holds bad values.
    """
    _check_safetensors_header(file)
    try:
        tensors = load_file(file)
    except Exception as err:  # truncated data past a valid header
        raise LatentCotError(f"{file}: corrupt safetensors file ({str(err).splitlines()[0][:160]})") from None
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and tensor.numel():
            if tensor.dtype not in WEIGHT_DTYPES:
                raise LatentCotError(f"{file}: tensor '{key}' is {tensor.dtype}; expected float32, float16 or bfloat16")
            if not bool(torch.isfinite(tensor).all()):
                raise LatentCotError(f"{file}: tensor '{key}' holds NaN or infinite values")
    return tensors


def read_method_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The method's full state dict from a checkpoint folder (safetensors only).

    ``step_decoder.*`` keys are included when ``step_decoder.safetensors`` is present.
    """
    folder = Path(path)
    index = folder / "model.safetensors.index.json"
    if index.is_file():  # a sharded backbone
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise LatentCotError(f"{index}: corrupt (expected a JSON object with a weight_map)") from None
        if not all(isinstance(s, str) and "/" not in s and (folder / s).is_file() for s in shards):
            raise LatentCotError(f"{index}: names shard files that are not in the folder")
    elif (folder / "model.safetensors").is_file():
        shards = ["model.safetensors"]
    else:
        raise LatentCotError(f"{folder}: no model.safetensors (or index) in the checkpoint")
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update({f"backbone.{k}": v for k, v in load_tensors(folder / shard).items()})
    for extra in ("method.safetensors", "step_decoder.safetensors"):
        if (folder / extra).is_file():
            state.update(load_tensors(folder / extra))
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


def load_checkpoint(path: str | Path, method: Trainable) -> dict[str, Any]:
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
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of the wrong shape
        detail = " ".join(str(err).split())[:300]
        raise LatentCotError(f"{Path(path) / 'model.safetensors'}: does not fit method '{info['method']}' ({detail})") from None
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
    file = folder / "trainer_state.safetensors"
    _check_safetensors_header(file)
    try:
        tensors = load_file(file)
        return cast(dict[str, Any], decode_state(json.loads((folder / "trainer_state.json").read_text()), tensors))
    except Exception as err:  # a corrupt file of either half; the state is ours, any flaw is corruption
        raise LatentCotError(f"{folder / 'trainer_state.json'}: corrupt training state ({type(err).__name__})") from None
