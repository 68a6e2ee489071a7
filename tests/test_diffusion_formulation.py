"""Flow-matching formulation: interpolation endpoints, exact conversions, a loss that falls."""

import pytest
import torch

from latentcot.diffusion.formulation import TARGETS, FlowMatching, convert, interpolate, velocity
from latentcot.diffusion.models import MLPDenoiser


def test_interpolation_endpoints_and_velocity():
    x, eps = torch.randn(4, 3), torch.randn(4, 3)
    assert torch.equal(interpolate(x, eps, 0.0), x)
    assert torch.equal(interpolate(x, eps, 1.0), eps)
    t = torch.tensor([0.1, 0.4, 0.6, 0.9])
    h = 1e-4  # dx_t/dt by central difference equals v = eps - x
    fd = (interpolate(x, eps, t + h) - interpolate(x, eps, t - h)) / (2 * h)
    torch.testing.assert_close(fd, velocity(x, eps), atol=1e-2, rtol=0)


@pytest.mark.parametrize("source", TARGETS)
def test_conversions_are_exact_inverses(source):
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randn(6, 5, generator=g, dtype=torch.float64)
    t = torch.rand(6, generator=g, dtype=torch.float64) * 0.9 + 0.05
    x_t = interpolate(x, eps, t)
    truth = {"x": x, "eps": eps, "v": velocity(x, eps)}
    out = convert(truth[source], source, x_t, t)
    for key in TARGETS:
        torch.testing.assert_close(out[key], truth[key])
        back = convert(out[key], key, x_t, t)  # and from every other target back again
        torch.testing.assert_close(back[source], truth[source])


def test_division_by_t_is_clipped():
    x_t, x_pred = torch.ones(2, 3), torch.zeros(2, 3)
    v = convert(x_pred, "x", x_t, torch.zeros(2), t_eps=0.05)["v"]
    assert torch.isfinite(v).all() and torch.allclose(v, torch.full_like(v, 20.0))


def test_logit_normal_time_sampling_median():
    fm = FlowMatching(t_sampling="logit_normal", mu=0.8, sigma=0.8)
    t = fm.sample_t(20_000, generator=torch.Generator().manual_seed(0))
    assert t.min() > 0 and t.max() < 1
    assert abs(t.median().item() - torch.sigmoid(torch.tensor(0.8)).item()) < 0.02


@pytest.mark.parametrize("target,loss_space", [("x", "v"), ("eps", "v"), ("v", "target"), ("x", "target")])
def test_loss_falls_on_a_toy(target, loss_space):
    torch.manual_seed(0)
    data = torch.randn(256, 2) * 0.3 + torch.tensor([1.0, -1.0])
    net = MLPDenoiser(2, hidden=64, depth=3)
    fm = FlowMatching(target=target, loss_space=loss_space)

    def eval_loss():
        with torch.no_grad():
            return fm.loss(net, data, generator=torch.Generator().manual_seed(1)).item()

    before = eval_loss()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        fm.loss(net, data).backward()
        opt.step()
    assert eval_loss() < 0.7 * before


def test_bad_target_raises():
    with pytest.raises(ValueError, match="target"):
        FlowMatching(target="score")
