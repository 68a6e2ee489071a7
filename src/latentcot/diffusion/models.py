"""Denoisers: an MLP for low-dimensional toys (JiT's 5-layer ReLU MLP) and a small DiT for images.

Both have the signature ``forward(x_t, t, cond=None)`` with ``t`` of shape (batch,) in [0, 1] and
return a tensor shaped like ``x_t``; what that tensor means (x, eps or v) is decided by
:class:`latentcot.diffusion.formulation.FlowMatching`, not by the network.

DiT follows Peebles & Xie, "Scalable Diffusion Models with Transformers" (2023,
https://arxiv.org/abs/2212.09748): patchify, transformer blocks with adaLN-zero conditioning on
the time embedding plus an optional condition vector, a final adaLN layer, unpatchify. A DiT
built with ``context_dim`` also takes a sequence of condition tokens that join the image tokens
in every block's self-attention (the paper's "in-context conditioning"; the joint attention of
MMDiT-style models such as SD3 and Qwen-Image) and are dropped before the output layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from latentcot.errors import LatentCotError


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Sinusoidal features of ``t`` (batch,) -> (batch, dim); t in [0, 1] is scaled by 1000 so the
    frequencies cover the range as they do for DDPM's integer steps."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class MLPDenoiser(nn.Module):
    """JiT's toy network: ``depth`` Linear layers with ReLU between, on ``[x_t, emb(t), cond]``.

    Args:
        dim: data dimension D.
        hidden: width of the hidden layers (JiT: 256).
        depth: number of Linear layers (JiT: 5).
        time_dim: size of the sinusoidal time features.
        cond_dim: size of the optional condition vector (0: unconditional).
    """

    def __init__(self, dim: int, hidden: int = 256, depth: int = 5, time_dim: int = 32, cond_dim: int = 0) -> None:
        super().__init__()
        self.config = {"dim": dim, "hidden": hidden, "depth": depth, "time_dim": time_dim, "cond_dim": cond_dim}
        self.dim, self.time_dim, self.cond_dim = dim, time_dim, cond_dim
        widths = [dim + time_dim + cond_dim] + [hidden] * (depth - 1) + [dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < depth - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        parts = [x_t, timestep_embedding(t, self.time_dim).to(x_t.dtype)]
        if self.cond_dim:
            parts.append(cond if cond is not None else x_t.new_zeros(x_t.shape[0], self.cond_dim))
        return self.net(torch.cat(parts, dim=-1))


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN: ``x·(1 + scale) + shift`` with per-sample (batch, hidden) shift and scale."""
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """Pre-norm transformer block whose norms and residual gates are set by the conditioning c."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(hidden, int(hidden * mlp_ratio)), nn.GELU(approximate="tanh"),
                                 nn.Linear(int(hidden * mlp_ratio), hidden))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def attention(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Self-attention over all tokens; ``mask`` (batch, 1, 1, tokens) bool, False = a key nobody attends to."""
        b, n, h = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, h // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (batch, heads, tokens, head_dim)
        return self.proj(out.transpose(1, 2).reshape(b, n, h))

    def forward(self, x: Tensor, c: Tensor, mask: Tensor | None = None) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1[:, None] * self.attention(modulate(self.norm1(x), shift1, scale1), mask)
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    """adaLN then a linear map from each token to its patch of pixels."""

    def __init__(self, hidden: int, patch_size: int, out_channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


def sincos_pos_embed_2d(hidden: int, grid: int) -> Tensor:
    """Fixed 2-D sine-cosine position embedding, (grid*grid, hidden), as in DiT / MAE."""
    quarter = hidden // 4
    omega = 1.0 / 10_000 ** (torch.arange(quarter, dtype=torch.float64) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64), indexing="ij")
    out = [f(pos.reshape(-1, 1) * omega) for pos in (ys, xs) for f in (torch.sin, torch.cos)]
    emb = torch.cat(out, dim=1).float()
    return F.pad(emb, (0, hidden - emb.shape[1]))


class DiT(nn.Module):
    """A small Diffusion Transformer: (batch, C, H, W) -> (batch, C, H, W).

    Args:
        image_size: H = W of the input.
        patch_size: side of a square patch; image_size must be a multiple of it.
        in_channels: C.
        hidden: token width.
        depth: number of DiT blocks.
        heads: attention heads (hidden must be divisible by heads).
        cond_dim: size of the optional condition vector (e.g. a one-hot class, or a latent
            thought); 0 for an unconditional model. A missing ``cond`` is the zero vector, which
            is also the "null" condition for classifier-free guidance.
        context_dim: size of optional condition *tokens* (0: none). ``forward(..., context=(batch,
            m, context_dim))`` projects them to ``hidden``, adds a learned position per slot (up to
            ``max_context``), and lets them join the image tokens in every block's self-attention;
            ``context_mask`` (batch, m) bool hides slots (False) from every query.
        max_context: most condition tokens a call may pass.
    """

    def __init__(self, image_size: int = 8, patch_size: int = 2, in_channels: int = 1, hidden: int = 128,
                 depth: int = 4, heads: int = 4, cond_dim: int = 0, mlp_ratio: float = 4.0, context_dim: int = 0,
                 max_context: int = 64) -> None:
        super().__init__()
        if image_size % patch_size or hidden % heads:
            raise ValueError(f"image_size {image_size} must divide by patch_size {patch_size}, hidden {hidden} by heads {heads}")
        self.config = {"image_size": image_size, "patch_size": patch_size, "in_channels": in_channels, "hidden": hidden,
                       "depth": depth, "heads": heads, "cond_dim": cond_dim, "mlp_ratio": mlp_ratio,
                       "context_dim": context_dim, "max_context": max_context}
        self.image_size, self.patch_size, self.in_channels = image_size, patch_size, in_channels
        self.hidden, self.cond_dim = hidden, cond_dim
        self.grid = image_size // patch_size
        self.x_embedder = nn.Conv2d(in_channels, hidden, kernel_size=patch_size, stride=patch_size)  # patchify
        self.register_buffer("pos_embed", sincos_pos_embed_2d(hidden, self.grid)[None], persistent=False)
        self.t_embedder = nn.Sequential(nn.Linear(256, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.c_embedder = nn.Linear(cond_dim, hidden) if cond_dim else None
        self.ctx_embedder = nn.Linear(context_dim, hidden) if context_dim else None
        self.ctx_pos = nn.Parameter(torch.zeros(1, max_context, hidden)) if context_dim else None
        self.blocks = nn.ModuleList(DiTBlock(hidden, heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(hidden, patch_size, in_channels)
        initialize_dit_weights(self)

    def unpatchify(self, tokens: Tensor) -> Tensor:
        """(batch, grid*grid, p*p*C) -> (batch, C, H, W)."""
        b, p, g, c = tokens.shape[0], self.patch_size, self.grid, self.in_channels
        x = tokens.reshape(b, g, g, p, p, c)
        return torch.einsum("bhwpqc->bchpwq", x).reshape(b, c, g * p, g * p)

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None, context: Tensor | None = None,
                context_mask: Tensor | None = None, token_cond: Tensor | None = None) -> Tensor:
        """``token_cond`` (batch, patches, hidden), optional, is added to the patch tokens (a
        condition aligned with the image, one vector per patch, as ControlNet adds its features)."""
        x = self.x_embedder(x_t).flatten(2).transpose(1, 2) + self.pos_embed  # (batch, tokens, hidden)
        if token_cond is not None:
            if token_cond.shape[1:] != x.shape[1:]:
                raise LatentCotError(f"token_cond has shape {tuple(token_cond.shape[1:])} per example, the patch "
                                     f"tokens {tuple(x.shape[1:])}")
            x = x + token_cond.to(x.dtype)
        c = self.t_embedder(timestep_embedding(t, 256).to(x.dtype))  # (batch, hidden)
        if self.c_embedder is not None and cond is not None:
            c = c + self.c_embedder(cond)
        image_tokens, mask = x.shape[1], None
        if context is not None:
            if self.ctx_embedder is None or self.ctx_pos is None:
                raise LatentCotError("this DiT was built without context_dim; it takes no context tokens")
            if context.shape[1] > self.ctx_pos.shape[1]:
                raise LatentCotError(f"{context.shape[1]} context tokens, but the DiT was built for max_context={self.ctx_pos.shape[1]}")
            x = torch.cat([x, self.ctx_embedder(context.to(x.dtype)) + self.ctx_pos[:, : context.shape[1]]], 1)
            if context_mask is not None:  # image tokens are always visible
                keep = torch.cat([context_mask.new_ones(x.shape[0], image_tokens), context_mask.bool()], 1)
                mask = keep[:, None, None, :]
        for block in self.blocks:
            x = block(x, c, mask)
        return self.unpatchify(self.final_layer(x[:, :image_tokens], c))


def initialize_dit_weights(model: DiT) -> None:
    """DiT's initialisation: Xavier for linears, then adaLN-zero: every block's modulation and the
    final layer start at zero, so each block is the identity and the output is 0 at init."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    w = model.x_embedder.weight
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    nn.init.normal_(_linear(model.t_embedder[0]).weight, std=0.02)
    nn.init.normal_(_linear(model.t_embedder[2]).weight, std=0.02)
    if model.ctx_pos is not None:
        nn.init.normal_(model.ctx_pos, std=0.02)
    zero_init_adaln(model)


def _linear(module: nn.Module) -> nn.Linear:
    """A ``nn.Sequential`` entry built as ``nn.Linear`` (indexing a Sequential is typed ``Module``)."""
    return cast(nn.Linear, module)


def zero_init_adaln(model: DiT) -> None:
    """adaLN-zero (DiT §3.2): zero the modulation layers and the output projection."""
    for block in cast(Iterable[DiTBlock], model.blocks):  # a ModuleList of DiTBlocks
        nn.init.zeros_(_linear(block.adaLN_modulation[-1]).weight)
        nn.init.zeros_(_linear(block.adaLN_modulation[-1]).bias)
    nn.init.zeros_(_linear(model.final_layer.adaLN_modulation[-1]).weight)
    nn.init.zeros_(_linear(model.final_layer.adaLN_modulation[-1]).bias)
    nn.init.zeros_(model.final_layer.linear.weight)
    nn.init.zeros_(model.final_layer.linear.bias)


def build_dit(**kwargs) -> DiT:
    """The fully parameterised builder the presets call."""
    return DiT(**kwargs)


# preset name -> builder; image_size / patch_size / in_channels / cond_dim pass through
DIT_MODELS: dict[str, Callable[..., DiT]] = {
    "dit-tiny": lambda **kw: build_dit(hidden=64, depth=2, heads=2, **kw),
    "dit-small": lambda **kw: build_dit(hidden=128, depth=4, heads=4, **kw),
    "dit-base": lambda **kw: build_dit(hidden=384, depth=12, heads=6, **kw),
}


ARCHITECTURES: dict[str, type[nn.Module]] = {"mlp": MLPDenoiser, "dit": DiT}


def save_denoiser(path: str | Path, model: MLPDenoiser | DiT, flow: dict, extra: dict[str, Any] | None = None,
                  tensors: dict[str, Tensor] | None = None) -> Path:
    """Write a checkpoint folder: ``model.safetensors``, ``extra.safetensors`` (named non-parameter
    tensors such as a toy's projection) and ``config.json`` (architecture, its arguments, the
    :class:`FlowMatching` settings, anything in ``extra``). No pickle."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arch = next(name for name, cls in ARCHITECTURES.items() if type(model) is cls)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))
    save_file({k: v.contiguous() for k, v in (tensors or {}).items()} or {"_": torch.zeros(0)}, str(path / "extra.safetensors"))
    config = {"architecture": arch, "model": model.config, "flow": flow, **(extra or {})}
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return path


def load_denoiser(path: str | Path) -> tuple[nn.Module, dict[str, Any], dict[str, Tensor]]:
    """Rebuild a model from a :func:`save_denoiser` folder: (model in eval mode, config, extra tensors)."""
    path = Path(path)
    config_file = path / "config.json"
    if not config_file.is_file() or not (path / "model.safetensors").is_file():
        raise LatentCotError(f"{path}: not a diffusion checkpoint (expected config.json and model.safetensors)")
    config = json.loads(config_file.read_text())
    if config.get("architecture") not in ARCHITECTURES:
        raise LatentCotError(f"{config_file}: architecture must be one of {sorted(ARCHITECTURES)}, got {config.get('architecture')!r}")
    model = ARCHITECTURES[config["architecture"]](**config["model"])
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    extra = {k: v for k, v in load_file(str(path / "extra.safetensors")).items() if k != "_"}
    return model.eval(), config, extra
