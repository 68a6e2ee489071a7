"""The language-model run's config: the YAML sections of ``latentcot train`` as dataclasses.

Kept free of torch and transformers (the method's options are checked through
:func:`latentcot.methods.method_config`, imported only when a config is built), so that
``latentcot train --help`` lists every key without loading a model library.
:mod:`latentcot.train.recipe` re-exports these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from latentcot.config import option
from latentcot.data.generators import GENERATORS
from latentcot.errors import LatentCotError
from latentcot.models.presets import PRESET_NAMES
from latentcot.train.config import TrainConfig


@dataclass
class DataConfig:
    task: str = option("prosqa", "task family: generator name and answer rule (multiplication, prosqa, prontoqa, arithmetic, chain)")
    train_file: str = option("", "read training records from this file instead of generating them")
    train_size: int = option(20000, "records generated for training (seeded by the run seed)")
    generator: dict[str, Any] = option({}, "generator options, e.g. {digits: 4} for multiplication")
    eval_file: str = option("", "held-out file (absolute, or relative to the data dir); '' generates one")
    eval_size: int = option(500, "records evaluated (generated ones, or the first of eval_file); 0 = all")
    data_dir: str = option("", "data directory ('' = $LATENTCOT_DATA_DIR or ../shared/data)")
    max_hops: int = option(0, "prosqa_graph: keep questions of at most this many hops, generated and read alike (0 = all)")
    reshuffle: bool = option(
        True, "prosqa_graph: draw a fresh edge order, candidate order and shortest path each time a "
        "training record is read (the reference reshuffles every epoch)"
    )

    def __post_init__(self) -> None:
        if not self.train_file and self.task not in GENERATORS:
            raise LatentCotError(f"task '{self.task}': no generator (valid: {', '.join(GENERATORS)}); set data.train_file")
        if self.train_size < 1 or self.eval_size < 0:
            raise LatentCotError("train_size must be >= 1 and eval_size >= 0")
        if self.max_hops < 0:
            raise LatentCotError(f"data.max_hops: must be 0 (all) or more, got {self.max_hops}")


@dataclass
class ModelConfig:
    name_or_path: str = option("tiny", f"a preset ({', '.join(PRESET_NAMES)}) or a Hugging Face model name/folder")
    tokenizer: str = option("", "tokenizer name/folder; '' = word-level trained on the data for presets, the model's own otherwise")
    dropout: float = option(0.0, "dropout for presets built from scratch (refused with init_from or a Hugging Face model: they keep their own)")
    max_positions: int = option(1024, "longest sequence for presets")
    init_from: str = option(
        "", "start from the backbone and tokenizer of a trained run (its folder or a checkpoint folder), e.g. a "
        "CoT run before Coconut with method.start_stage=1; '' = name_or_path"
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise LatentCotError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.max_positions < 8:
            raise LatentCotError(f"max_positions must be at least 8, got {self.max_positions}")


@dataclass
class EvalConfig:
    batch_size: int = option(64, "questions per generation batch")
    max_new_tokens: int = option(64, "generation budget per question")
    n_latents: int = option(-1, "continuous thoughts at inference (-1 = the method's default)")

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise LatentCotError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_latents < -1:
            raise LatentCotError(f"n_latents must be -1 (the method's default) or more, got {self.n_latents}")


@dataclass
class RunConfig:
    """A whole language-model run; YAML sections map to these fields."""

    derived_keys: ClassVar[dict[str, str]] = {"train.seed": "seed"}  # set in __post_init__; load_config refuses them
    out_dir: str = option("runs/default", "run folder (checkpoints, metrics, eval results)")
    seed: int = option(0, "one seed for data generation, initialisation, data order and sampling")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: dict[str, Any] = option({"name": "coconut"}, "method name and its options, e.g. {name: coconut, c_thought: 2}")
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        self.method_options()  # fail at load time on a bad method section
        self.train.seed = self.seed

    def method_options(self) -> Any:
        """The typed config of the chosen method."""
        options = dict(self.method)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise LatentCotError("method: needs 'name' (e.g. method: {name: coconut})")
        from latentcot.methods import method_config  # imports torch: only when a config is built

        return method_config(name, options, where="method")
