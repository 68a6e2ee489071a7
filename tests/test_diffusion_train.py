"""Denoisers train through the one Trainer: the toy's recipe, checkpoints, exact resume, refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from latentcot.cli import main as cli_main
from latentcot.diffusion.formulation import FlowMatching
from latentcot.diffusion.models import MLPDenoiser, load_denoiser
from latentcot.diffusion.toy import projection, spiral
from latentcot.diffusion.train import DenoiserBatches, train_denoiser
from latentcot.errors import LatentCotError
from latentcot.train import checkpoint as ckpt

TOY = ["diffusion", "toy", "--dim", "4", "--target", "x", "--steps", "12", "--hidden", "16", "--depth", "3",
       "--samples", "32", "--sample-steps", "5"]


def metric_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "examples_per_s"} for r in rows]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_denoiser(folder)[0].state_dict()


def test_the_trainer_runs_the_toys_recipe_adam_and_one_cosine_to_zero(tmp_path: Path) -> None:
    """Same batches, same noise: the trainer's run equals a hand-written Adam + cosine loop."""
    torch.manual_seed(0)
    P = projection(4, 0)
    flow = FlowMatching(target="x")
    net = MLPDenoiser(4, hidden=16, depth=3)
    reference = MLPDenoiser(4, hidden=16, depth=3)
    reference.load_state_dict(net.state_dict())

    def sample(n: int, g: torch.Generator) -> tuple[torch.Tensor, None]:
        return spiral(n, g) @ P.T, None

    steps = 10
    result = train_denoiser(net, flow, sample, steps, batch=8, lr=1e-2, run_dir=tmp_path / "run", log_every=1)

    stream = DenoiserBatches(sample, 8, seed=0)  # the same generators, drawn the same way
    opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 1e-2 * 0.5 * (1.0 + math.cos(math.pi * step / steps))
        batch = stream.next_batch(0)
        loss = flow.loss(reference, batch["x"], batch["cond"], batch["generator"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    rows = metric_rows(tmp_path / "run")
    assert [r["loss"] for r in rows] == pytest.approx(losses, rel=1e-5)
    assert rows[-1]["lr"] == pytest.approx(1e-2 * 0.5 * (1 + math.cos(math.pi * 9 / 10)))
    for a, b in zip(net.state_dict().values(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert result["step"] == steps and Path(result["checkpoint"]).name == "step-000010"


def test_a_killed_toy_run_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli_main([*TOY, "--save-every", "4", "--out", str(whole)]) == 0
    assert [p.name for p in ckpt.list_checkpoints(whole / "train")] == ["step-000008", "step-000012"]  # keep_last 2

    real_save = ckpt.save_checkpoint
    calls = {"n": 0}

    def dies_at_the_second_save(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed while writing step 8")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", dies_at_the_second_save)
    assert cli_main([*TOY, "--save-every", "4", "--out", str(killed)]) == 130  # as Ctrl-C or a kill ends it
    monkeypatch.setattr(ckpt, "save_checkpoint", real_save)
    assert [p.name for p in ckpt.list_checkpoints(killed / "train")] == ["step-000004"]
    assert not (killed / "model.safetensors").exists()

    assert cli_main([*TOY, "--save-every", "4", "--out", str(killed)]) == 2  # never mixes two runs
    assert "already holds a run" in capsys.readouterr().err
    assert cli_main([*TOY, "--save-every", "4", "--out", str(killed), "--resume"]) == 0
    for key, value in weights(whole).items():
        assert torch.equal(value, weights(killed)[key]), key
    assert metric_rows(killed / "train") == metric_rows(whole / "train")  # each step logged once
    report = json.loads((killed / "config.json").read_text())["result"]
    assert report == json.loads((whole / "config.json").read_text())["result"]

    assert cli_main([*TOY, "--save-every", "4", "--out", str(killed), "--overwrite"]) == 0  # again, from scratch
    for key, value in weights(whole).items():
        assert torch.equal(value, weights(killed)[key]), key


def test_a_diverging_toy_run_stops_and_keeps_its_last_good_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net, flow = MLPDenoiser(4, hidden=16, depth=3), FlowMatching(target="x")

    calls = {"n": 0}

    def counted(n: int, g: torch.Generator) -> tuple[torch.Tensor, None]:
        calls["n"] += 1
        x = torch.randn(n, 4, generator=g)
        return (x if calls["n"] < 7 else x * float("nan")), None  # bad data from step 7 on

    with pytest.raises(LatentCotError, match=r"step 7: loss nan.*last good checkpoint is .*step-000004"):
        train_denoiser(net, flow, counted, 12, batch=8, run_dir=tmp_path / "run", save_every=4)
