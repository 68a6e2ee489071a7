"""The config loader: YAML over defaults, dotted overrides over YAML, one-line errors."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from latentcot.config import describe, from_dict, load_config, merge_overrides, option, save_config, to_dict
from latentcot.errors import LatentCotError


@dataclass
class Optim:
    lr: float = option(1e-3, "learning rate")
    betas: list[float] = option([0.9, 0.95], "AdamW betas")
    schedule: Literal["cosine", "linear"] = option("cosine", "lr schedule")

    def __post_init__(self):
        if self.lr <= 0:
            raise LatentCotError(f"lr must be positive, got {self.lr}")


@dataclass
class Run:
    seed: int = option(0, "seed")
    name: str | None = option(None, "run name")
    optim: Optim = field(default_factory=Optim)


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 3\noptim:\n  lr: 0.01\n")
    cfg = load_config(Run, path, ["optim.lr=3e-4", "optim.schedule=linear", "name=abc"])
    assert cfg.seed == 3 and cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.optim.schedule == "linear" and cfg.name == "abc"
    assert cfg.optim.betas == [0.9, 0.95]


def test_int_is_accepted_for_float_but_not_the_reverse():
    assert from_dict(Optim, {"lr": 1}).lr == 1.0
    with pytest.raises(LatentCotError, match=r"config: seed: expected an integer"):
        from_dict(Run, {"seed": 0.5})


def test_misspelt_key_names_closest(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lrr: 0.1\n")
    with pytest.raises(LatentCotError) as err:
        load_config(Run, path)
    msg = str(err.value)
    assert str(path) in msg and "optim" in msg and "'lrr'" in msg and "did you mean 'lr'" in msg
    assert "\n" not in msg


def test_wrong_literal_and_rule_errors():
    with pytest.raises(LatentCotError, match="schedule: must be one of 'cosine', 'linear'"):
        from_dict(Run, {"optim": {"schedule": "step"}})
    with pytest.raises(LatentCotError, match="lr must be positive"):
        load_config(Run, None, ["optim.lr=-1"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(LatentCotError, match="config file not found"):
        load_config(Run, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2\n")
    with pytest.raises(LatentCotError, match="invalid YAML"):
        load_config(Run, bad)


def test_override_syntax_errors():
    with pytest.raises(LatentCotError, match="expected KEY=VALUE"):
        merge_overrides({}, ["seed"])
    with pytest.raises(LatentCotError, match="'seed' is not a section"):
        merge_overrides({"seed": 1}, ["seed.x=2"])


def test_save_and_load_round_trip(tmp_path):
    cfg = load_config(Run, None, ["seed=7", "optim.betas=[0.8, 0.99]"])
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(Run, tmp_path / "c.yaml")
    assert to_dict(again) == to_dict(cfg)


def test_describe_lists_every_leaf_with_help():
    keys = {key: help for key, _, help in describe(Run)}
    assert set(keys) == {"seed", "name", "optim.lr", "optim.betas", "optim.schedule"}
    assert keys["optim.lr"] == "learning rate"


def test_a_derived_key_is_refused_where_it_would_be_ignored(tmp_path):
    """RunConfig sets train.seed from seed: overriding it, or a YAML where they disagree, is an error
    naming the key; a saved run's config run again with seed=… takes the new seed in both."""
    from latentcot.train.run_config import RunConfig

    with pytest.raises(LatentCotError, match="override 'train.seed'.*give seed="):
        load_config(RunConfig, None, ["train.seed=5"])
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\ntrain:\n  seed: 2\n")
    with pytest.raises(LatentCotError, match="run.yaml: train.seed is 2 but seed is 1"):
        load_config(RunConfig, path)
    save_config(load_config(RunConfig, None, ["seed=3"]), path)
    assert load_config(RunConfig, path).train.seed == 3
    again = load_config(RunConfig, path, ["seed=4"])
    assert (again.seed, again.train.seed) == (4, 4)
