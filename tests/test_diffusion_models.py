"""Denoisers: shapes, adaLN-zero identity at init, gradients reach the zero-initialised layers, context tokens."""

import pytest
import torch

from latentcot.diffusion.models import DIT_MODELS, DiT, MLPDenoiser
from latentcot.errors import LatentCotError


def tiny_dit(cond_dim=10):
    return DIT_MODELS["dit-tiny"](image_size=8, patch_size=2, in_channels=3, cond_dim=cond_dim)


def test_dit_output_shape_with_and_without_condition():
    torch.manual_seed(0)
    model = tiny_dit()
    x_t, t = torch.randn(4, 3, 8, 8), torch.rand(4)
    assert model(x_t, t).shape == (4, 3, 8, 8)
    assert model(x_t, t, torch.eye(10)[:4]).shape == (4, 3, 8, 8)


def test_adaln_zero_identity_at_init():
    torch.manual_seed(0)
    model = tiny_dit()
    tokens, c = torch.randn(2, 16, model.hidden), torch.randn(2, model.hidden)
    for block in model.blocks:
        assert torch.equal(block(tokens, c), tokens)
    out = model(torch.randn(2, 3, 8, 8), torch.rand(2), torch.eye(10)[:2])
    assert torch.equal(out, torch.zeros_like(out))


def test_one_step_moves_the_zero_initialised_output():
    torch.manual_seed(0)
    model = tiny_dit(cond_dim=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x_t, target = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    (model(x_t, torch.rand(2)) - target).pow(2).mean().backward()
    opt.step()
    assert model(x_t, torch.rand(2)).abs().max() > 0


def test_unpatchify_inverts_patch_layout():
    model = DiT(image_size=8, patch_size=2, in_channels=3, hidden=32, depth=1, heads=2)
    img = torch.randn(2, 3, 8, 8)
    # image -> (batch, tokens, p*p*C) in the layout unpatchify reads
    tokens = img.reshape(2, 3, 4, 2, 4, 2).permute(0, 2, 4, 3, 5, 1).reshape(2, 16, 12)
    assert torch.equal(model.unpatchify(tokens), img)


def test_mlp_denoiser_shape_and_depth():
    net = MLPDenoiser(16, hidden=256, depth=5, cond_dim=3)
    assert sum(isinstance(m, torch.nn.Linear) for m in net.modules()) == 5
    assert net(torch.randn(7, 16), torch.rand(7), torch.randn(7, 3)).shape == (7, 16)


def trained_like_context_dit() -> DiT:
    """A DiT with context tokens whose zero-initialised layers are randomised, so every input matters."""
    torch.manual_seed(0)
    model = DiT(image_size=8, patch_size=2, in_channels=3, hidden=32, depth=2, heads=2, context_dim=6, max_context=4)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_context_tokens_condition_the_output_and_masked_slots_are_ignored():
    model = trained_like_context_dit()
    x_t, t, ctx = torch.randn(2, 3, 8, 8), torch.rand(2), torch.randn(2, 3, 6)
    out = model(x_t, t, context=ctx)
    assert out.shape == (2, 3, 8, 8)
    assert (model(x_t, t, context=ctx + 1) - out).abs().max() > 1e-3  # the tokens matter
    keep = torch.tensor([[True, False, False], [True, True, False]])
    masked = model(x_t, t, context=ctx, context_mask=keep)
    changed = ctx.clone()
    changed[0, 1:], changed[1, 2] = 5.0, -5.0  # only the hidden slots
    torch.testing.assert_close(model(x_t, t, context=changed, context_mask=keep), masked)
    # hiding slots equals not passing them (slot positions are absolute)
    torch.testing.assert_close(masked[:1], model(x_t[:1], t[:1], context=ctx[:1, :1]))
    torch.testing.assert_close(masked[1:], model(x_t[1:], t[1:], context=ctx[1:, :2]))


def test_context_tokens_need_a_context_dit():
    x_t, t = torch.randn(1, 3, 8, 8), torch.rand(1)
    with pytest.raises(LatentCotError, match="context_dim"):
        tiny_dit()(x_t, t, context=torch.randn(1, 2, 6))
    with pytest.raises(LatentCotError, match="max_context=4"):
        trained_like_context_dit()(x_t, t, context=torch.randn(1, 5, 6))
