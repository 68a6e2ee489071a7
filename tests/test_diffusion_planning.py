"""CoTj planning: the DP equals brute force, DNA of a known flow, adaptive k; the JiT toy gap; the CLI."""

import itertools
import json

import pytest
import torch

from latentcot.cli import main as cli_main
from latentcot.diffusion.planning import (
    adaptive_steps,
    cotj_cost,
    diffusion_dna,
    path_costs,
    plan_path,
    plan_schedule,
)
from latentcot.diffusion.toy import run_toy


def brute_force(cost, k):
    g = cost.shape[0]
    best = float("inf")
    for inner in itertools.combinations(range(1, g - 1), k - 1):
        path = (0, *inner, g - 1)
        best = min(best, sum(float(cost[i, j]) for i, j in zip(path[:-1], path[1:])))
    return best


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_dp_planner_equals_brute_force(k):
    g = torch.Generator().manual_seed(k)
    grid = torch.linspace(1, 0, 9, dtype=torch.float64)
    for cost in (cotj_cost(torch.rand(9, generator=g, dtype=torch.float64), grid),
                 torch.rand(9, 9, generator=g, dtype=torch.float64).triu(1) + torch.full((9, 9), float("inf")).tril()):
        path, total = plan_path(cost, k)
        assert len(path) == k + 1 and path[0] == 0 and path[-1] == 8
        assert total == pytest.approx(brute_force(cost, k))
        assert path_costs(cost, k)[-1].item() == pytest.approx(total)


def test_planned_schedule_is_decreasing_and_follows_the_difficulty():
    grid = torch.linspace(1, 0, 51, dtype=torch.float64)
    dna = torch.where(grid < 0.3, 100.0, 1.0).double()  # hard near the data end
    ts = plan_schedule(dna, grid, 6)
    assert ts[0] == 1 and ts[-1] == 0 and (ts[1:] < ts[:-1]).all()
    assert (ts < 0.3).sum() >= 4  # most steps spent where the DNA is high
    assert 1 <= adaptive_steps(cotj_cost(dna, grid)) <= 50


def test_dna_of_a_straight_flow_is_zero_and_of_a_curved_flow_is_not():
    x_T = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(1, 0, 11, dtype=torch.float64)
    straight = diffusion_dna(lambda x, t, c: torch.ones_like(x), x_T, grid)  # constant velocity: Euler exact
    assert straight.dna.abs().max() < 1e-20
    curved = diffusion_dna(lambda x, t, c: -x / (1.0 + t), x_T, grid, groups=torch.arange(32) % 2)
    assert (curved.dna > 1e-6).all() and set(curved.per_condition) == {0, 1}
    assert curved.plan(4, cost="local").shape == (5,)


def test_jit_toy_x_prediction_beats_eps_and_v_off_the_subspace():
    torch.manual_seed(0)
    res = {t: run_toy(16, t, steps=300, hidden=64, n_samples=300, sample_steps=30)[0] for t in ("x", "eps", "v")}
    assert res["x"].off_subspace < 0.5 * min(res["eps"].off_subspace, res["v"].off_subspace)
    assert res["x"].energy < res["eps"].energy


def test_cli_toy_then_plan_in_process(tmp_path, capsys):
    ckpt = tmp_path / "toy"
    rc = cli_main(["diffusion", "toy", "--dim", "4", "--target", "x", "--steps", "50", "--hidden", "32",
                   "--samples", "64", "--out", str(ckpt)])
    assert rc == 0 and (ckpt / "model.safetensors").is_file()
    assert json.loads((ckpt / "config.json").read_text())["flow"]["target"] == "x"
    rc = cli_main(["diffusion", "plan", str(ckpt), "--nfe", "5", "--grid", "21", "--samples", "32",
                   "--out", str(tmp_path / "dna.png")])
    assert rc == 0 and (tmp_path / "dna.png").is_file()
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("timesteps")][-1]
    ts = [float(v) for v in line.split(":")[1].split()]
    assert len(ts) == 6 and ts[0] == 1.0 and ts[-1] == 0.0 and ts == sorted(ts, reverse=True)
    assert cli_main(["diffusion", "plan", str(tmp_path / "missing"), "--nfe", "4"]) == 2
