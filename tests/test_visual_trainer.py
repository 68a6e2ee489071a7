"""EndoCoT through the one trainer: the same numbers as its own loop had, bit for bit; an exact
resume; the run-folder rules of `latentcot train` (refuse / --resume / --overwrite); checkpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from latentcot.cli import main as cli_main
from latentcot.config import load_config
from latentcot.errors import LatentCotError
from latentcot.eval.viewer import is_endocot_run
from latentcot.train import checkpoint as ckpt
from latentcot.visual.endocot import EndoCoT
from latentcot.visual.tasks import TASKS
from latentcot.visual.train import (
    TrainableEndoCoT,
    VisualRunConfig,
    VisualTrainConfig,
    build_model,
    load_run,
    main,
    prepare,
    save_run,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

TINY = {"reasoner_layers": 1, "reasoner_hidden": 32, "reasoner_heads": 2, "dit_hidden": 32, "dit_depth": 1,
        "dit_heads": 2}
# 3 + 5 steps: the stage switch inside the run; a warm-up of 5 whose fractions are not exact in binary,
# so the order the lr's product is rounded in matters (base lr x factor, as LambdaLR takes it, differs
# from the old loop's lr x ramp x cosine in steps 2 and 3); weight decay on
GRID = {"thought": "grid", "conditioning": "cells", "reasoner_attention": "neighbours", "grounding_weight": 0,
        "readout_weight": 1}
RUN = ["device=cpu", "data.train_size=16", "data.eval_size=2", "sample_steps=1", "train.batch_size=4",
       "train.stage1_steps=3", "train.stage2_steps=5", "train.warmup_steps=5", "train.weight_decay=0.01",
       "train.log_every=1"] + [f"model.{k}={v}" for k, v in TINY.items()]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(out: Path, *extra: str) -> VisualRunConfig:
    return load_config(VisualRunConfig, None, [f"out_dir={out}", *RUN, *extra])


def metric_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def old_train(model: EndoCoT, data: dict[str, torch.Tensor], cfg: VisualTrainConfig, seed: int) -> list[dict]:
    """EndoCoT's own loop before it moved into the trainer, frozen in bench/visual_trainer_overhead.py
    (which times the two): every step's stage, lr and unrounded losses."""
    from visual_trainer_overhead import former_loop

    return former_loop(model, data, cfg, seed, record=True)


@pytest.mark.parametrize("model", [{}, GRID], ids=["vector-adaln-grounding", "grid-neighbours-readout"])
def test_the_trainer_reproduces_the_old_loop_bit_for_bit(tmp_path: Path, model: dict) -> None:
    cfg = config(tmp_path / "new", *[f"model.{k}={v}" for k, v in model.items()])
    torch.manual_seed(cfg.seed)  # what the old main did before preparing the data and building the model
    data = prepare(cfg.data.task, TASKS[cfg.data.task].generate(cfg.data.train_size, cfg.data.size, cfg.seed),
                   cfg.model.latent_steps)
    reference = build_model(cfg)
    old = old_train(reference, data, cfg.train, cfg.seed)

    main(cfg, log=None)
    rows = metric_rows(tmp_path / "new")
    assert [r["step"] for r in rows] == list(range(1, 9)) and [r["stage"] for r in rows] == [1, 1, 1] + [2] * 5
    for key in old[0]:  # stage, lr, loss, flow, grounding (+ readout): every step, exactly
        assert [r[key] for r in rows] == [s[key] for s in old], key
    trained, _ = load_run(tmp_path / "new")  # the final model.safetensors
    assert same_weights(trained, reference)
    assert not same_weights(trained, build_model(cfg))  # training moved them


class Crash(RuntimeError):
    pass


def test_a_run_killed_mid_way_resumes_to_the_same_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = [f"out_dir={tmp_path / 'whole'}", *RUN, "train.save_every=2", "train.keep_last=0"]
    assert cli_main(["visual", "train", *args]) == 0
    whole, _ = load_run(tmp_path / "whole")
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "whole")] == [
        "step-000002", "step-000004", "step-000006", "step-000008"]

    args = [f"out_dir={tmp_path / 'killed'}", *RUN, "train.save_every=2", "train.keep_last=0"]
    forward, calls = TrainableEndoCoT.forward, []

    def crash_in_step_6(self: TrainableEndoCoT, batch: dict) -> object:
        calls.append(1)
        if len(calls) == 6:
            raise Crash("killed")
        return forward(self, batch)

    monkeypatch.setattr(TrainableEndoCoT, "forward", crash_in_step_6)
    with pytest.raises(Crash):
        cli_main(["visual", "train", *args])
    monkeypatch.setattr(TrainableEndoCoT, "forward", forward)
    assert ckpt.latest_checkpoint(tmp_path / "killed").name == "step-000004"
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    # the unfinished run is still usable: it loads its latest checkpoint, the whole run's step 4
    partial, _ = load_run(tmp_path / "killed")
    at_step_4 = load_file(ckpt.latest_checkpoint(tmp_path / "whole").parent / "step-000004" / "model.safetensors")
    assert all(torch.equal(v, at_step_4[k]) for k, v in partial.state_dict().items() if k in at_step_4)
    assert not same_weights(partial, whole)

    assert cli_main(["visual", "train", *args]) == 2  # the folder holds a run: refused, untouched
    assert ckpt.latest_checkpoint(tmp_path / "killed").name == "step-000004"
    torch.manual_seed(1234)  # nothing carried over but the checkpoint
    assert cli_main(["visual", "train", *args, "--resume"]) == 0
    resumed, _ = load_run(tmp_path / "killed")
    assert same_weights(resumed, whole)
    timing = ("examples_per_s",)
    assert [{k: v for k, v in r.items() if k not in timing} for r in metric_rows(tmp_path / "killed")] == \
        [{k: v for k, v in r.items() if k not in timing} for r in metric_rows(tmp_path / "whole")]  # each step once
    assert is_endocot_run(tmp_path / "killed")  # checkpoints/ beside it: still a visual run to the viewer

    # --resume of a finished run trains no further; --overwrite trains it again, to the same weights
    assert cli_main(["visual", "train", *args, "--resume"]) == 0
    assert same_weights(load_run(tmp_path / "killed")[0], whole)
    assert cli_main(["visual", "train", *args, "--overwrite"]) == 0
    assert same_weights(load_run(tmp_path / "killed")[0], whole)
    assert len(metric_rows(tmp_path / "killed")) == 8


def test_a_run_folder_from_before_checkpoints_loads_and_is_not_resumed(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    torch.manual_seed(0)
    model = build_model(cfg)
    save_run(model, cfg, tmp_path)  # the old layout: config.yaml, model.safetensors, metrics.jsonl, eval.json
    (tmp_path / "metrics.jsonl").write_text('{"step": 7, "stage": 2, "seconds": 0.1, "loss": 0.5}\n')
    (tmp_path / "eval.json").write_text('{"solved": 0.0}\n')
    assert same_weights(load_run(tmp_path)[0], model) and is_endocot_run(tmp_path)
    with pytest.raises(LatentCotError, match="already holds a run"):
        main(cfg, log=None)
    with pytest.raises(LatentCotError, match="nothing to resume from"):
        main(cfg, log=None, resume=True)
    assert same_weights(load_run(tmp_path)[0], model)  # left as it was


def test_trainer_keys_are_checked_when_the_config_is_loaded(tmp_path: Path) -> None:
    with pytest.raises(LatentCotError, match="train.save_every must be 0 or more"):
        config(tmp_path, "train.save_every=-1")
    with pytest.raises(LatentCotError, match="train.weight_decay"):
        config(tmp_path, "train.weight_decay=-1")
    assert config(tmp_path, "train.warmup_steps=100").train.trainer_config(0).max_steps == 8  # a long ramp is fine
