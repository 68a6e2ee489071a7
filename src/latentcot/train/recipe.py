"""The language-model recipe: data -> tokenizer -> backbone -> method -> train -> evaluate.

``latentcot train CONFIG [key=value ...]`` calls :func:`main`; so can a Python user. Launch on one
process or many with the same command::

    latentcot train configs/coconut_prosqa.yaml train.lr=3e-4
    torchrun --nproc_per_node 4 -m latentcot.cli train configs/coconut_prosqa.yaml

A run folder describes itself: ``config.yaml`` (the resolved config), ``metrics.jsonl``,
``tb/`` (TensorBoard), ``checkpoints/step-*/`` (Hugging Face folders + latentcot JSON) and
``eval.json``; :func:`load_trained` rebuilds the method from a checkpoint folder alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from latentcot.config import from_dict, save_config, to_dict
from latentcot.data.formats import read_examples
from latentcot.data.generators import generate
from latentcot.data.graph import GraphViews, to_graph_examples
from latentcot.data.paths import data_dir
from latentcot.data.record import ReasoningExample
from latentcot.data.tokenizer import load_tokenizer, train_word_tokenizer
from latentcot.errors import LatentCotError
from latentcot.eval.evaluate import EvalResult, evaluate, format_table, write_result
from latentcot.methods import build_method, method_config
from latentcot.methods.base import Method
from latentcot.models import load_backbone
from latentcot.models.presets import PRESETS
from latentcot.train import checkpoint as ckpt
from latentcot.train.config import TrainConfig  # noqa: F401 - re-exported
from latentcot.train.distributed import init_distributed
from latentcot.train.run_config import DataConfig, EvalConfig, ModelConfig, RunConfig  # noqa: F401 - re-exported
from latentcot.train.trainer import Trainer


def check_paths(cfg: RunConfig) -> None:
    """The config's files and folders, checked when it is loaded (before any model is built).

    Raises:
        LatentCotError: naming the key: a data file that is a directory, FIFO or missing, an
            ``out_dir`` that is a file or not writable, a local model or tokenizer folder that
            does not exist.
    """
    from latentcot.files import check_writable_dir
    from latentcot.models.loading import looks_local

    for key in ("train_file", "eval_file"):
        value = getattr(cfg.data, key)
        if value:
            path = Path(value)
            if not path.is_file() and (path.exists() or path.is_symlink()):
                raise LatentCotError(f"data.{key} '{value}': not a regular file (a directory, FIFO or broken link)")
            path = resolve_data_path(value, cfg.data, key)
            if not path.is_file():
                raise LatentCotError(f"data.{key} '{path}': not a regular file")
    check_writable_dir(cfg.out_dir, "out_dir")
    for key in ("name_or_path", "tokenizer"):
        value = getattr(cfg.model, key)
        if value and value not in PRESETS and looks_local(value) and not Path(value).is_dir():
            raise LatentCotError(f"model.{key} '{value}': no such local folder")


def resolve_data_path(path: str, cfg: DataConfig, key: str) -> Path:
    """An absolute path as is; a relative one as is when it exists, else under the data directory.

    ``key`` names the setting in errors: a config key (``eval_file`` → ``data.eval_file``) or an
    option as typed (``--data``)."""
    where = key if key.startswith("-") else f"data.{key}"
    candidate = Path(path)
    if candidate.is_absolute() or candidate.is_file():
        return candidate
    root = data_dir(cfg.data_dir or None)
    if root is None:
        raise LatentCotError(f"{where} '{path}': not found, and no data directory (set $LATENTCOT_DATA_DIR or data.data_dir)")
    if not (root / candidate).is_file():
        raise LatentCotError(f"{where} '{path}': not found here nor in the data directory {root} (try `latentcot data download`)")
    return root / candidate


def read_run_examples(path: str | Path, cfg: DataConfig, key: str = "--data") -> list[ReasoningExample]:
    """A data file's records as a run with data config ``cfg`` reads them: a relative path not found
    here is looked up in the data directory (as the recipe's file keys are; ``key`` names the setting
    in errors); for ``prosqa_graph`` in graph form (words or graph on disk) and filtered to
    ``max_hops``; otherwise as stored."""
    return _read_records(resolve_data_path(str(path), cfg, key), cfg)


def _read_records(path: Path, cfg: DataConfig) -> list[ReasoningExample]:
    """The records of a resolved data file, in graph form and hop-filtered for ``prosqa_graph``."""
    examples = read_examples(path)
    return to_graph_examples(examples, cfg.max_hops, str(path)) if cfg.task == "prosqa_graph" else examples


def load_examples(cfg: DataConfig, seed: int) -> tuple[list[ReasoningExample], list[ReasoningExample], str]:
    """Training and held-out records, and where the held-out ones came from.

    For ``prosqa_graph`` files are read in either form (words or graph) and turned into graph form,
    and ``max_hops`` filters files and generated records alike.
    """
    graph_task = cfg.task == "prosqa_graph"
    options = {"max_hops": cfg.max_hops, **cfg.generator} if graph_task else cfg.generator

    def read(key: str) -> tuple[list[ReasoningExample], Path]:
        path = resolve_data_path(getattr(cfg, key), cfg, key)
        return _read_records(path, cfg), path

    if cfg.train_file:
        train, _ = read("train_file")
    else:
        train = generate(cfg.task, cfg.train_size, seed, **options)
    if cfg.eval_file:
        held_out, path = read("eval_file")
        source = str(path) + (f" (graph form, at most {cfg.max_hops} hops)" if graph_task and cfg.max_hops else "")
    else:
        seen = {ex.question for ex in train}
        wanted = cfg.eval_size or 500
        held_out = [ex for ex in generate(cfg.task, 2 * wanted, seed + 1, **options) if ex.question not in seen]
        held_out = held_out[:wanted]
        source = f"generated ({cfg.task}, seed {seed + 1}, questions not in the training set)"
    if cfg.eval_size:
        held_out = held_out[: cfg.eval_size]
    return train, held_out, source


def build(cfg: RunConfig, train: list[ReasoningExample], held_out: list[ReasoningExample]) -> Method:
    """Tokenizer, backbone and method for a fresh run."""
    options = dict(cfg.method)
    name = options.pop("name")
    if cfg.model.dropout and (cfg.model.init_from or cfg.model.name_or_path not in PRESETS):
        given = f"model.init_from={cfg.model.init_from}" if cfg.model.init_from else cfg.model.name_or_path
        raise LatentCotError(
            f"model.dropout={cfg.model.dropout}: only a preset built from scratch takes it; {given} keeps the "
            "dropout of its own saved config (set it there, or drop model.dropout)"
        )
    if cfg.model.init_from:  # the trained run's own tokenizer and weights; the method adds its tokens
        start = checkpoint_folder(cfg.model.init_from)
        return build_method(name, method_config(name, options, "method"), load_backbone(start), load_tokenizer(start))
    scratch = cfg.model.name_or_path in PRESETS
    if cfg.model.tokenizer:
        tokenizer = load_tokenizer(cfg.model.tokenizer)
    elif scratch:
        # the vocabulary covers the held-out words too: with nonsense-word tasks an unseen word
        # must still be a token the model can copy (its embedding stays as initialised)
        # graph questions are symbols: whitespace-split, so '|' and '[Q]' are one token each
        tokenizer = train_word_tokenizer([*train, *held_out], split_punctuation=cfg.data.task != "prosqa_graph")
    else:
        tokenizer = load_tokenizer(cfg.model.name_or_path)
    method_cfg = method_config(name, options, where="method")
    if scratch:  # the method adds its special tokens and grows the embeddings (cheap at this size)
        backbone = load_backbone(cfg.model.name_or_path, len(tokenizer), dropout=cfg.model.dropout, max_positions=cfg.model.max_positions)
    else:
        backbone = load_backbone(cfg.model.name_or_path)
    return build_method(name, method_cfg, backbone, tokenizer)


def checkpoint_folder(path: str | Path) -> Path:
    """A checkpoint folder, or a run folder's latest checkpoint."""
    path = ckpt.resolve_checkpoint(path)
    if not (path / "latentcot.json").is_file():
        raise LatentCotError(f"{path}: not a latentcot checkpoint (no latentcot.json)")
    return path


def load_trained(path: str | Path) -> tuple[Method, RunConfig]:
    """Rebuild a trained method from a checkpoint folder (or a run folder: its latest checkpoint).

    Only safetensors and JSON are read; nothing is unpickled.
    """
    path = checkpoint_folder(path)
    info = ckpt.verify_checkpoint(path)  # before transformers opens anything in the folder
    cfg = from_dict(RunConfig, info["config"], where=f"{path}/latentcot.json: config")
    options = dict(cfg.method)
    name = options.pop("name")
    if name == "simcot" and options.get("decoder", "copy") == "copy":
        # the copied step decoder is built by load_state_dict only when the checkpoint holds its
        # weights (step_decoder.safetensors): at inference it is never built for nothing
        options["build_step_decoder"] = False
    tokenizer = load_tokenizer(path)
    try:
        backbone = load_backbone(path)
    except (RuntimeError, KeyError) as err:  # a config.json that does not fit the weights
        raise LatentCotError(f"{path / 'model.safetensors'}: does not fit {path / 'config.json'} "
                             f"({' '.join(str(err).split())[:200]})") from None
    method = build_method(name, method_config(name, options, where="method"), backbone, tokenizer)
    ckpt.load_checkpoint(path, method)
    method.eval()
    return method, cfg


def check_positions(method: Method, cfg: RunConfig, train: list[ReasoningExample],
                    held_out: list[ReasoningExample], world_size: int = 1) -> None:
    """Refuse, before training, a model whose position table is shorter than the run's rows.

    The longest records (by characters) are collated at every curriculum stage the run reaches,
    and the held-out ones at the last stage with room for ``eval.max_new_tokens``.

    Raises:
        LatentCotError: naming ``model.max_positions``, the length needed and where.
    """
    import math

    import torch

    model_cfg = method.backbone.config
    limit = getattr(model_cfg, "n_positions", None) or getattr(model_cfg, "max_position_embeddings", None)
    if not limit:
        return
    per_step = cfg.train.batch_size * cfg.train.grad_accum * world_size
    steps_per_epoch = max(1, len(train) // per_step)
    epochs = math.ceil(cfg.train.max_steps / steps_per_epoch) if cfg.train.max_steps else cfg.train.epochs
    stages = sorted({method.stage_for_epoch(e) for e in range(epochs)})

    def longest(examples: list[ReasoningExample]) -> list[ReasoningExample]:
        def size(ex: ReasoningExample) -> int:
            return len(ex.question) + sum(map(len, ex.steps)) + len(ex.answer) + len(ex.steps)
        return sorted(examples, key=size)[-8:]

    with torch.random.fork_rng():  # a collate that draws random numbers leaves the run's RNG as it was
        need = [(max(int(method.collate(longest(train), stage)["input_ids"].shape[1]) for stage in stages), "training")]
        if held_out:
            width = int(method.collate(longest(held_out), stages[-1])["input_ids"].shape[1])
            need.append((width + cfg.eval.max_new_tokens, "evaluation, with eval.max_new_tokens"))
    length, where = max(need)
    if length > limit:
        raise LatentCotError(f"model.max_positions: the model has {limit} positions but {where} needs {length}; "
                             f"raise model.max_positions (presets) or shorten the data")


def evaluate_run(method: Method, cfg: RunConfig, held_out: list[ReasoningExample]) -> EvalResult:
    latent = cfg.eval.n_latents >= 0 and method.name not in ("nocot", "cot")
    options: dict[str, Any] = {"n_latents": cfg.eval.n_latents} if latent else {}
    return evaluate(method, held_out, cfg.data.task, cfg.eval.batch_size, cfg.eval.max_new_tokens, **options)


def main(cfg: RunConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train the configured method and evaluate it on the held-out set.

    Args:
        cfg: the run config.
        resume: continue the run in ``cfg.out_dir`` from its latest checkpoint.
        overwrite: replace the run already in ``cfg.out_dir`` (its checkpoints, metrics, logs).

    Returns:
        ``{"train": final training metrics, "eval": evaluation summary, "checkpoint": path}``.

    Raises:
        LatentCotError: ``cfg.out_dir`` already holds a run and neither flag is given.
    """
    check_paths(cfg)
    out = Path(cfg.out_dir)
    ckpt.prepare_run_dir(out, resume, overwrite)  # before anything is written into it
    ctx = init_distributed(cfg.seed)
    train, held_out, source = load_examples(cfg.data, cfg.seed)
    method = build(cfg, train, held_out)
    check_positions(method, cfg, train, held_out, ctx.world_size)
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
        print(f"[latentcot] {method.name}: {len(train)} training records, {len(held_out)} held-out from {source}")
    examples: Sequence[ReasoningExample] = train
    if cfg.data.task == "prosqa_graph" and cfg.data.reshuffle:
        examples = GraphViews(train)
    # with train.eval_every, held-out accuracy is logged during training (eval/accuracy in metrics.jsonl)
    eval_fn = (lambda m: {"accuracy": evaluate_run(m, cfg, held_out).accuracy}) if cfg.train.eval_every else None
    trainer = Trainer(method, examples, cfg.train, out, eval_fn=eval_fn, dist=ctx, run_config=to_dict(cfg),
                      checked_run_dir=True)
    metrics = trainer.fit(resume=resume)
    result = evaluate_run(method, cfg, held_out)
    if ctx.is_main:
        write_result(result, out / "eval.json")
        print(format_table([result]))
    ctx.close()
    return {"train": metrics, "eval": result.summary(), "eval_source": source, "checkpoint": metrics.get("checkpoint")}


def summary_json(results: dict[str, Any]) -> str:
    return json.dumps(results, indent=2, default=str)
