"""bench/stage_switch.py: a checkpoint scored on each stage's layout, and branches resumed from it."""

import sys
from pathlib import Path

import pytest
import torch

from latentcot.config import load_config
from latentcot.eval.report import read_metrics
from latentcot.train.recipe import RunConfig
from latentcot.train.recipe import main as run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from stage_switch import before_update, branch  # noqa: E402

pytestmark = pytest.mark.recipe
torch.set_num_threads(1)


def _simcot_run(out: Path) -> Path:
    """A tiny SIM-CoT (on Coconut) run on 3-number chains, one stage per epoch, every step logged."""
    cfg = load_config(RunConfig, None, [
        "data.task=chain", "data.generator={length: 3}", "data.train_size=32", "data.eval_size=4",
        "model.name_or_path=micro", "train.batch_size=8", "train.epochs=3", "train.log_every=1",
        "train.save_every=4", "train.keep_last=5", "eval.max_new_tokens=6", f"out_dir={out}",
        "method={name: simcot, base: coconut, base_options: {max_latent_stage: 2, epochs_per_stage: 1}}",
    ])  # fmt: skip
    run(cfg)
    return out


def test_a_branch_without_overrides_logs_what_the_run_logged_and_an_override_changes_it(tmp_path):
    source = _simcot_run(tmp_path / "run")
    start = source / "checkpoints" / "step-000004"  # the end of stage 0 (4 steps per epoch)
    logged = {r["step"]: r for r in read_metrics(source) if "loss" in r}
    same = branch(start, "same", [], steps=5, log_every=1, work=tmp_path / "branches", threads=1)
    assert [r["step"] for r in same] == [6, 7, 8, 9]  # step 5's row (its window began before the checkpoint) left out
    for row in same:
        for key in ("loss", "answer_loss", "step_loss", "lr"):
            assert row[key] == logged[row["step"]][key], (row["step"], key)
    slower = branch(start, "slower", ["train.lr=1e-5"], steps=5, log_every=1, work=tmp_path / "branches", threads=1)
    assert all(row["lr"] < logged[row["step"]]["lr"] for row in slower)
    assert slower[-1]["loss"] != logged[slower[-1]["step"]]["loss"]


def test_each_stage_scores_the_same_rows_in_its_own_layout(tmp_path):
    source = _simcot_run(tmp_path / "run")
    rows = before_update(source / "checkpoints" / "step-000004", [0, 1, 2], batches=2, batch_size=4, seed=0)
    assert [r["stage"] for r in rows] == [0, 1, 2]
    assert rows[0]["step_loss"] == 0.0  # no thought at stage 0: nothing for the decoder to write
    assert rows[1]["step_loss"] > 0 and rows[2]["step_loss"] > 0
    again = before_update(source / "checkpoints" / "step-000004", [2], batches=2, batch_size=4, seed=0)
    assert again[0] == rows[2]  # the same rows, the same numbers
