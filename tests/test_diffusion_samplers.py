"""Samplers and schedules: exact solution of a Gaussian flow, NFE counting, guidance, schedules."""

import pytest
import torch

from latentcot.diffusion.samplers import euler, heun
from latentcot.diffusion.schedules import SCHEDULES, karras, sigma_to_t, t_to_sigma

M, S = 2.0, 0.5  # data x ~ N(M, S^2 I)


def gaussian_velocity(x_t, t, cond=None):
    """The ideal v(x_t, t) = E[eps - x | x_t] for Gaussian data, in closed form."""
    var_t = (1 - t) ** 2 * S**2 + t**2
    return -M + (t - (1 - t) * S**2) / var_t * (x_t - (1 - t) * M)


def exact_endpoint(x_T):
    return M + S * x_T  # the flow is affine: x_t = (1 - t) M + sigma_t x_1, sigma_0 = S


@pytest.mark.parametrize("sampler,steps,tol", [(euler, 1000, 5e-3), (heun, 100, 1e-3)])
def test_matches_the_exact_solution_of_a_gaussian_flow(sampler, steps, tol):
    x_T = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = sampler(gaussian_velocity, x_T, SCHEDULES["uniform"](steps))
    assert (out.x - exact_endpoint(x_T)).abs().max() < tol
    coarse = euler(gaussian_velocity, x_T, SCHEDULES["uniform"](4))  # and coarse Euler is visibly worse
    assert (coarse.x - exact_endpoint(x_T)).abs().max() > 10 * tol


@pytest.mark.parametrize("steps", [1, 4, 7])
def test_nfe_counting(steps):
    x_T, ts = torch.randn(2, 2), SCHEDULES["uniform"](steps)
    assert euler(gaussian_velocity, x_T, ts).nfe == steps
    assert heun(gaussian_velocity, x_T, ts).nfe == 2 * steps - 1  # no correction at t = 0
    if steps > 1:  # a run that stops short of t = 0 corrects every step
        assert heun(gaussian_velocity, x_T, ts[:-1]).nfe == 2 * (steps - 1)


def test_guidance_formula_and_interval_nfe():
    def v_fn(x_t, t, cond):
        return torch.full_like(x_t, 1.0 if cond is None else float(cond))

    x_T, ts = torch.zeros(3), SCHEDULES["uniform"](4)  # times 1, .75, .5, .25 are evaluated
    out = euler(v_fn, x_T, ts, cond=torch.tensor(3.0), uncond=None, guidance=2.0)
    assert out.nfe == 8 and torch.allclose(out.x, torch.full((3,), -(1 + 2 * (3 - 1)), dtype=out.x.dtype))
    limited = euler(v_fn, x_T, ts, cond=torch.tensor(3.0), guidance=2.0, guidance_interval=(0.5, 1.0))
    assert limited.nfe == 4 + 3  # guidance at t = 1, .75, .5 only
    assert torch.allclose(limited.x, torch.full((3,), -(0.75 * 5 + 0.25 * 3)))


def test_rejects_non_decreasing_timesteps():
    with pytest.raises(ValueError, match="decreasing"):
        euler(gaussian_velocity, torch.zeros(2), [0.0, 0.5, 1.0])


@pytest.mark.parametrize("name", sorted(SCHEDULES))
@pytest.mark.parametrize("steps", [1, 2, 8, 50])
def test_schedules_decrease_from_one_to_zero(name, steps):
    ts = SCHEDULES[name](steps)
    assert ts.shape == (steps + 1,) and ts[0] == 1.0 and ts[-1] == 0.0
    assert (ts[1:] < ts[:-1]).all()


def test_sigma_time_mapping_round_trip():
    sigma = torch.tensor([0.002, 0.5, 1.0, 80.0], dtype=torch.float64)
    torch.testing.assert_close(t_to_sigma(sigma_to_t(sigma)), sigma)
    assert abs(karras(10)[-2].item() - sigma_to_t(torch.tensor(0.002, dtype=torch.float64)).item()) < 1e-12
