"""EndoCoT at tiny scale: a reasoner thinks in latent steps, a DiT draws the answer image.

EndoCoT (Dai et al. 2026, https://arxiv.org/abs/2603.12252) puts a latent chain of thought in
front of a diffusion model. Here:

- **Reasoner**: a tiny Hugging Face causal LM (the GPT-2 preset) reads the puzzle as one token
  per cell (each cell's pixel block through a linear embedder, like a ViT patch), then ``<bot>``,
  then runs the shared latent loop (:func:`latentcot.latent.loop.think`) for ``T`` continuous
  thoughts: each thought is the last hidden state fed back as the next input (Coconut). Thought
  ``i`` is the output at the ``i``-th latent position; thought 0 is the output at ``<bot>``, the
  only "thought" when ``T = 0``. With ``reasoner_attention="bidirectional"`` the cells attend to
  each other in both directions (a prefix LM); the thoughts stay causal.
- **Grid thoughts** (``thought="grid"``, not in the paper): a thought is a vector *per cell*. The
  reasoner reads the cells (plus fixed 2-D places) and each latent step reads them again with
  every cell's previous output added (Coconut's feedback, per cell: a weight-tied looped
  transformer over the grid); ``conditioning="cells"`` adds each cell's thought to that cell's
  DiT patch token. With ``reasoner_attention="neighbours"`` each cell attends only to itself and
  its 4 grid neighbours (one cell further per layer and step: message passing, how mazes are
  solved), and :meth:`EndoCoT.set_latent_steps` lets the loop run longer at test time. Grounding
  then targets the reasoner's reading of the solution image, and the optional readout maps each
  cell's vector to its pixels.
- **Denoiser**: :class:`PuzzleDiT`, the diffusion core's DiT with the puzzle image concatenated
  to ``x_t`` as 3 extra input channels (the model copies walls and marks from it, pixel-aligned).
  The thoughts reach it in one of two ways (``conditioning``):

  - ``adaln`` (default): thought ``i`` alone is the adaLN condition vector (DiT's class-conditioning
    route: one global vector added to the time embedding that sets every block's norms and gates).
    The whole answer must pass through one vector that modulates every token alike.
  - ``tokens``: the thought trajectory ``0..i`` enters as ``i + 1`` extra tokens that join the
    image tokens in every block's self-attention (in-context / joint attention, as the MMDiT of
    Qwen-Image, EndoCoT's DiT, reads its MLLM's hidden states); later thoughts are masked out.
    Every image token can read every thought, and each thought can carry a different part of the
    answer.

  adaLN is the default because it scored higher with the paper's recipe in every side-by-side
  run we have (docs/results/endocot.md); neither makes the DiT use what the thoughts say there.

  It predicts ``x`` (JiT) via :class:`FlowMatching`; the loss is plain MSE on ``x`` by default
  (``loss_space="v"`` gives JiT's v-loss, whose 1/t² weight spends the model on low-noise detail).
- **Terminal grounding**: ``MSE(final thought, enc(answer)) / Var_batch(enc)`` where ``enc`` is the reasoner's own
  last hidden state after reading ``cells <bot> answer-text <eot>``, taken under stop-gradient
  (the target must not move towards the thought, or both collapse to a constant).
- **Stages**: stage 1 draws, from thought ``i``, the partial solution after
  ``round(i·num_steps/T)`` steps (one random ``i`` per example and step); stage 2 draws the
  full solution from the final thought only (with ``tokens``: from all thoughts).

Images enter as (batch, 3, H, W) in [0, 1] and are mapped to [-1, 1] for diffusion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from latentcot.config import option
from latentcot.diffusion.formulation import FlowMatching
from latentcot.diffusion.models import DiT, sincos_pos_embed_2d
from latentcot.diffusion.samplers import euler
from latentcot.diffusion.schedules import uniform
from latentcot.errors import LatentCotError
from latentcot.latent.loop import attention_mask_4d, attention_mask_from, think
from latentcot.models.presets import build_causal_lm

# answer-text characters of every task (maze moves, Sudoku digits) and the reasoner's markers
CHARS = "UDLR0123456789"
BOT, EOT, PAD = len(CHARS), len(CHARS) + 1, len(CHARS) + 2
VOCAB_SIZE = len(CHARS) + 3


@dataclass
class EndoCoTConfig:
    """The model: reasoner, DiT, flow matching and loss weights."""

    reasoner: bool = option(True, "use the latent reasoner; false = the same DiT with static (no) conditioning")
    latent_steps: int = option(4, "T, continuous thoughts before drawing (0: the reasoner's <bot> output only; "
                              "grid: its first pass over the cells only)")
    reasoner_layers: int = option(2, "GPT-2 blocks of the reasoner")
    reasoner_hidden: int = option(64, "reasoner width (also the thought size)")
    reasoner_heads: int = option(2, "reasoner attention heads")
    reasoner_attention: str = option("causal", "how the reasoner reads the cells: causal (a plain causal LM, raster "
                                     "order), bidirectional (the cells see each other, a prefix LM) or neighbours "
                                     "(grid thoughts only: each cell sees itself and its 4 grid neighbours, so every "
                                     "layer of every pass carries information one cell further, as a maze is walked)")
    dit_hidden: int = option(64, "DiT token width")
    dit_depth: int = option(4, "DiT blocks")
    dit_heads: int = option(2, "DiT attention heads")
    target: str = option("x", "what the DiT predicts: x (JiT), eps or v")
    loss_space: str = option("target", "target: MSE on the prediction (equal weight at every t, so the coarse "
                             "layout decided at high noise counts as much as detail); v: JiT's v-space loss")
    t_sampling: str = option("logit_normal", "training times: uniform, or logit_normal (sigmoid(N(t_mu, 1)))")
    t_mu: float = option(0.8, "logit-normal mean; > 0 favours high noise, where the layout is decided (JiT: 0.8)")
    flow_weight: float = option(1.0, "weight of the DiT's flow-matching loss; 0 trains only the reasoner (with a "
                                "readout: a probe of what the reasoner alone can learn)")
    grounding_weight: float = option(1.0, "weight of MSE(final thought, answer encoding; grid: the reasoner's "
                                     "reading of the solution image); 0 disables grounding")
    readout_weight: float = option(0.0, "weight of a cross-entropy readout of answer text (moves or digits, by "
                                   "position) from the thoughts (grid: an MSE readout of each cell's pixels); 0 "
                                   "disables it")
    readout: str = option("steps", "what the readout asks: steps (thought i reads out the moves/digits of its own "
                          "step, SIM-CoT's step-level supervision) or answer (the final thought reads out the "
                          "whole answer); with T = 0 always answer")
    conditioning: str = option("adaln", "how thoughts reach the DiT: adaln (thought i is the adaLN condition vector), "
                               "tokens (thoughts 0..i join the image tokens in self-attention) or cells (grid "
                               "thoughts only: each cell's vector of thought i is added to that cell's patch token)")
    thought: str = option("vector", "what a thought is: vector (one vector, the last hidden state fed back through "
                          "the shared latent loop, as Coconut) or grid (one vector per cell: the reasoner re-reads "
                          "the cells every step with each cell's previous output added, a looped transformer; "
                          "needs conditioning=cells)")

    def __post_init__(self) -> None:
        if self.latent_steps < 0:
            raise LatentCotError(f"latent_steps must be 0 or more, got {self.latent_steps}")
        if self.target not in ("x", "eps", "v"):
            raise LatentCotError(f"target must be x, eps or v, got {self.target!r}")
        if self.t_sampling not in ("uniform", "logit_normal"):
            raise LatentCotError(f"t_sampling must be uniform or logit_normal, got {self.t_sampling!r}")
        if self.loss_space not in ("target", "v"):
            raise LatentCotError(f"loss_space must be target or v, got {self.loss_space!r}")
        if self.reasoner_hidden % self.reasoner_heads or self.dit_hidden % self.dit_heads:
            raise LatentCotError("reasoner_hidden / dit_hidden must be divisible by their heads")
        if self.reasoner_attention not in ("causal", "bidirectional", "neighbours"):
            raise LatentCotError("reasoner_attention must be causal, bidirectional or neighbours, got "
                                 f"{self.reasoner_attention!r}")
        if self.conditioning not in ("tokens", "adaln", "cells"):
            raise LatentCotError(f"conditioning must be adaln, tokens or cells, got {self.conditioning!r}")
        if self.thought not in ("vector", "grid"):
            raise LatentCotError(f"thought must be vector or grid, got {self.thought!r}")
        if (self.thought == "grid") != (self.conditioning == "cells"):
            raise LatentCotError(f"thought={self.thought} with conditioning={self.conditioning}: grid thoughts (one "
                                 "vector per cell) reach the DiT through conditioning=cells, and only they can")
        if self.reasoner_attention == "neighbours" and self.thought != "grid":
            raise LatentCotError("reasoner_attention=neighbours needs thought=grid (a cell's neighbours are cells; "
                                 "vector thoughts are not)")
        if self.readout not in ("steps", "answer"):
            raise LatentCotError(f"readout must be steps or answer, got {self.readout!r}")
        if self.flow_weight < 0:
            raise LatentCotError(f"flow_weight must be >= 0, got {self.flow_weight}")
        if self.readout_weight < 0:
            raise LatentCotError(f"readout_weight must be >= 0, got {self.readout_weight}")
        if self.grounding_weight < 0:
            raise LatentCotError(f"grounding_weight must be >= 0, got {self.grounding_weight}")


class PuzzleDiT(DiT):
    """The core DiT with the puzzle image as 3 extra input channels: ``[x_t, puzzle] -> 3 channels``.

    Args:
        image_size, patch_size, hidden, depth, heads: as :class:`DiT` (patch = one puzzle cell).
        cond_dim: size of the thought vector for adaLN conditioning (0: none).
        context_dim, max_context: size and most number of thought tokens (0: none).
        cell_dim: size of a per-cell thought vector, projected and added to its cell's patch token
            (0: none).
    """

    def __init__(self, image_size: int, patch_size: int, hidden: int, depth: int, heads: int, cond_dim: int,
                 context_dim: int = 0, max_context: int = 64, cell_dim: int = 0) -> None:
        super().__init__(image_size, patch_size, 3, hidden, depth, heads, cond_dim, context_dim=context_dim,
                         max_context=max_context)
        self.cell_embedder = nn.Linear(cell_dim, hidden) if cell_dim else None
        embedder = nn.Conv2d(6, hidden, kernel_size=patch_size, stride=patch_size)
        nn.init.xavier_uniform_(embedder.weight.view(hidden, -1))  # as DiT: Xavier on the flattened kernel
        nn.init.zeros_(embedder.bias)  # type: ignore[arg-type]
        self.x_embedder = embedder

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None, context: Tensor | None = None,
                context_mask: Tensor | None = None, puzzle: Tensor | None = None,
                cells: Tensor | None = None) -> Tensor:
        """As :meth:`DiT.forward`, with the ``puzzle`` image (required) and optional per-cell
        thoughts ``cells`` (batch, cells, cell_dim)."""
        assert puzzle is not None, "PuzzleDiT draws a solution for a puzzle"
        token_cond = None
        if cells is not None:
            if self.cell_embedder is None:
                raise LatentCotError("this PuzzleDiT was built with cell_dim=0; it takes no per-cell thoughts")
            token_cond = self.cell_embedder(cells)
        return super().forward(torch.cat([x_t, puzzle], 1), t, cond, context, context_mask, token_cond)


def cell_tokens(images: Tensor, block: int) -> Tensor:
    """(batch, 3, H, W) -> (batch, cells, 3·block²): one flattened pixel block per cell, row-major."""
    return F.unfold(images, kernel_size=block, stride=block).transpose(1, 2)


def encode_answers(texts: list[str]) -> tuple[Tensor, Tensor]:
    """Answer texts -> (ids (batch, longest + 1) right-padded with PAD, each ending in EOT; lengths)."""
    unknown = {ch for text in texts for ch in text} - set(CHARS)
    if unknown:
        raise LatentCotError(f"answer text: characters {sorted(unknown)} are not in {CHARS!r}")
    rows = [[CHARS.index(ch) for ch in text] + [EOT] for text in texts]
    longest = max(len(r) for r in rows)
    ids = torch.full((len(rows), longest), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    return ids, torch.tensor([len(r) for r in rows])


def partial_target(batch: dict[str, Tensor], step: Tensor) -> Tensor:
    """The partial solution drawn from thought ``step``: ``where(order <= step, solution, puzzle)``
    (see :meth:`EndoCoT.loss` for ``order``). ``step`` (batch,) gives (batch, 3, H, W); ``step``
    (batch, k) gives k partials each, (batch, k, 3, H, W)."""
    order, solution, puzzle = batch["order"], batch["solution"], batch["puzzle"]
    extra = (1,) * (step.dim() - 1)  # the k axis, when there is one
    shown = order.view(order.shape[0], *extra, 1, *order.shape[1:]) <= step[..., None, None, None]
    return torch.where(shown, solution.view(solution.shape[0], *extra, *solution.shape[1:]),
                       puzzle.view(puzzle.shape[0], *extra, *puzzle.shape[1:]))


class EndoCoT(nn.Module):
    """Reasoner + PuzzleDiT (+ terminal grounding), trained with :meth:`loss`, sampled with :meth:`generate`.

    Args:
        cfg: the model config.
        image_size: puzzle image side in pixels.
        block: pixels per cell side (the DiT patch and the reasoner's cell token).
    """

    near: Tensor  # reasoner_attention=neighbours: (cells, cells) bool, a cell and its 4 grid neighbours

    def __init__(self, cfg: EndoCoTConfig, image_size: int, block: int) -> None:
        super().__init__()
        self.cfg, self.block = cfg, block
        self.cells = cells = (image_size // block) ** 2
        # leading reasoner columns read bidirectionally: the cells, or none
        self.full_prefix = cells if cfg.reasoner_attention != "causal" else 0
        grid = cfg.thought == "grid"
        self.reasoner, self.readout = None, None
        if cfg.reasoner:
            positions = cells + 8 if grid else 2 * cells + cfg.latent_steps + 8
            self.reasoner = build_causal_lm("gpt2", VOCAB_SIZE, cfg.reasoner_layers, cfg.reasoner_hidden,
                                            cfg.reasoner_heads, max_positions=positions)
            self.cell_embed = nn.Linear(3 * block * block, cfg.reasoner_hidden)
            if grid:  # the cells' 2-D places (fixed, as the DiT's), on top of GPT-2's learned raster positions
                side = image_size // block
                self.register_buffer("cell_pos", sincos_pos_embed_2d(cfg.reasoner_hidden, side), persistent=False)
            if cfg.reasoner_attention == "neighbours":  # (cells, cells): a cell sees itself and its 4 neighbours
                row, col = torch.arange(cells) // side, torch.arange(cells) % side
                near = (row[:, None] - row[None]).abs() + (col[:, None] - col[None]).abs() <= 1
                self.register_buffer("near", near, persistent=False)
            # the longest answer: a maze path visits each cell at most once (cells - 1 moves), a Sudoku
            # has one digit per cell; + <eot>
            self.answer_slots = cells + 1
            if cfg.readout_weight > 0:  # grid: each cell's pixels; vector: answer text, by position
                self.readout = nn.Linear(cfg.reasoner_hidden, 3 * block * block if grid
                                         else self.answer_slots * VOCAB_SIZE)
        on = cfg.reasoner
        self.dit = PuzzleDiT(image_size, block, cfg.dit_hidden, cfg.dit_depth, cfg.dit_heads,
                             cfg.reasoner_hidden if on and cfg.conditioning == "adaln" else 0,
                             context_dim=cfg.reasoner_hidden if on and cfg.conditioning == "tokens" else 0,
                             max_context=cfg.latent_steps + 1,
                             cell_dim=cfg.reasoner_hidden if on and cfg.conditioning == "cells" else 0)
        # zero-init the thought's entry (adaLN-zero / ControlNet spirit): at first the DiT sees no thought
        # content, and the thought's unit-scale features do not swamp it while the reasoner is still random
        for entry in (self.dit.c_embedder, self.dit.ctx_embedder, self.dit.cell_embedder):
            if entry is not None:
                nn.init.zeros_(entry.weight)
        self.flow = FlowMatching(target=cfg.target, loss_space=cfg.loss_space,  # type: ignore[arg-type]
                                 t_sampling=cfg.t_sampling, mu=cfg.t_mu)  # type: ignore[arg-type]

    def set_latent_steps(self, T: int) -> None:
        """Think for ``T`` latent steps from now on, e.g. longer at test time than in training (a
        looped reasoner's passes share their weights, so any T runs). Raises when the model cannot
        take ``T``: no reasoner, ``tokens`` conditioning past its trained slots, or vector thoughts
        past the reasoner's position table."""
        if self.reasoner is None:
            raise LatentCotError("latent steps: this model has no reasoner (model.reasoner=false)")
        if self.cfg.conditioning == "tokens" and T > self.cfg.latent_steps:
            raise LatentCotError(f"latent steps: conditioning=tokens learned one slot per thought for T = "
                                 f"{self.cfg.latent_steps}; it cannot take T = {T}")
        positions = self.reasoner.config.max_position_embeddings
        if self.cfg.thought == "vector" and self.cells + 1 + T > positions:
            raise LatentCotError(f"latent steps: T = {T} runs past the reasoner's {positions} positions")
        self.cfg = replace(self.cfg, latent_steps=T)  # validates T >= 0

    def _prefix(self, puzzle: Tensor) -> Tensor:
        """``cells <bot>`` as input embeddings, (batch, cells + 1, hidden)."""
        assert self.reasoner is not None
        cells = self.cell_embed(cell_tokens(puzzle, self.block))
        bot = self.reasoner.get_input_embeddings()(torch.full((puzzle.shape[0], 1), BOT, device=puzzle.device))
        return torch.cat([cells, bot], 1)

    def thoughts(self, puzzle: Tensor) -> Tensor | None:
        """The thought trajectory, (batch, T + 1, hidden) (grid: (batch, T + 1, cells, hidden)):
        index 0 at ``<bot>`` (grid: the first pass over the cells), index T the final thought; None
        without a reasoner. Puzzle images in [0, 1]."""
        if self.reasoner is None:
            return None
        if self.cfg.thought == "grid":
            cells = self._grid_input(puzzle)
            attn = self._grid_mask(cells)
            state = self._grid_pass(cells, attn)
            trajectory = [state]
            for _ in range(self.cfg.latent_steps):  # Coconut's feedback, per cell: last outputs become inputs
                state = self._grid_pass(cells + state, attn)
                trajectory.append(state)
            return torch.stack(trajectory, 1)
        prefix = self._prefix(puzzle)
        mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=puzzle.device)
        out = think(self.reasoner, prefix, mask, self.cfg.latent_steps, full_prefix=self.full_prefix)
        return out.hidden_states[:, prefix.shape[1] - 1 :]  # (batch, T + 1, hidden)

    def _grid_input(self, images: Tensor) -> Tensor:
        """Cell embeddings with their 2-D places, (batch, cells, hidden)."""
        return self.cell_embed(cell_tokens(images, self.block)) + self.cell_pos

    def _grid_mask(self, inputs: Tensor) -> Tensor:
        """The reasoner's attention mask over a grid of cell inputs (the same for every pass)."""
        assert self.reasoner is not None
        if self.cfg.reasoner_attention == "neighbours":
            return attention_mask_from(self.reasoner, self.near[None, None].expand(inputs.shape[0], 1, -1, -1),
                                       inputs.dtype, "reasoner_attention=neighbours")
        mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=inputs.device)
        return attention_mask_4d(self.reasoner, mask, inputs.shape[1], inputs.dtype, self.full_prefix)

    def _grid_pass(self, inputs: Tensor, attn: Tensor) -> Tensor:
        """One pass of the reasoner over a grid of cell inputs -> its last hidden states, same shape."""
        assert self.reasoner is not None
        return self.reasoner.base_model(inputs_embeds=inputs, attention_mask=attn).last_hidden_state

    @torch.no_grad()
    def answer_encoding(self, puzzle: Tensor, answer_ids: Tensor, answer_lens: Tensor) -> Tensor:
        """enc(answer): the reasoner's last hidden state over ``cells <bot> answer <eot>``, (batch, hidden).
        Right padding needs no mask: a causal model's earlier positions never see it."""
        assert self.reasoner is not None
        embeds = torch.cat([self._prefix(puzzle), self.reasoner.get_input_embeddings()(answer_ids)], 1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
        attn = attention_mask_4d(self.reasoner, mask, embeds.shape[1], embeds.dtype, self.full_prefix)
        h = self.reasoner.base_model(inputs_embeds=embeds, attention_mask=attn).last_hidden_state
        last = self.cells + answer_lens.to(h.device)  # index of <eot>
        return h[torch.arange(h.shape[0], device=h.device), last]

    @torch.no_grad()
    def solution_encoding(self, solution: Tensor) -> Tensor:
        """Grid thoughts' grounding target: the reasoner's first pass over the *solution* image's
        cells, (batch, cells, hidden) (a grid has no place for answer text; the drawn answer is the
        answer as the reasoner reads it)."""
        cells = self._grid_input(solution)
        return self._grid_pass(cells, self._grid_mask(cells))

    def _net(self, puzzle: Tensor, thoughts: Tensor | None, upto: Tensor | None = None):  # noqa: ANN202
        """The FlowMatching ``net(x_t, t, cond)`` for these puzzles; with ``tokens`` conditioning the
        thoughts ``0..upto`` (all when ``upto`` is None) ride along as context tokens."""
        if thoughts is not None and self.cfg.conditioning == "cells":
            return lambda x_t, t, cond: self.dit(x_t, t, puzzle=puzzle * 2 - 1, cells=cond)
        if thoughts is None or self.cfg.conditioning != "tokens":
            return lambda x_t, t, cond: self.dit(x_t, t, cond, puzzle=puzzle * 2 - 1)
        mask = None if upto is None else torch.arange(thoughts.shape[1], device=thoughts.device)[None] <= upto[:, None]
        return lambda x_t, t, cond: self.dit(x_t, t, cond, context=thoughts, context_mask=mask, puzzle=puzzle * 2 - 1)

    def _cond(self, thoughts: Tensor | None, step: Tensor) -> Tensor | None:
        """The adaLN (or per-cell) condition: thought ``step`` per example (None with tokens or without
        a reasoner)."""
        if thoughts is None or self.cfg.conditioning == "tokens":
            return None
        return thoughts[torch.arange(thoughts.shape[0], device=thoughts.device), step]

    def loss(self, batch: dict[str, Tensor], stage: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Flow-matching loss (+ grounding) on a batch.

        Args:
            batch: ``puzzle``, ``solution`` (batch, 3, H, W) in [0, 1]; ``order`` (batch, H, W) long,
                the first thought index whose partial target shows each pixel as in the solution
                (T + 1 where it never differs from the puzzle); ``answer_ids``, ``answer_lens``.
            stage: 1 (thought i draws partial i) or 2 (final thought draws the solution); without a
                reasoner both draw the full solution.
            generator: RNG for t, noise and the thought index.

        Returns:
            dict with ``loss`` (total), ``flow`` and ``grounding`` (0 when off), scalars.
        """
        puzzle, solution = batch["puzzle"], batch["solution"]
        n, T = puzzle.shape[0], self.cfg.latent_steps
        thoughts = self.thoughts(puzzle)
        step = torch.full((n,), T, device=puzzle.device)
        # thought i -> the partial solution of i/T of the way; with no reasoner there is no thought to
        # say which partial is asked for, so the static baseline always draws the full solution
        if stage == 1 and T > 0 and thoughts is not None:
            step = torch.randint(1, T + 1, (n,), device=puzzle.device, generator=generator)
        target = partial_target(batch, step)
        if self.cfg.flow_weight > 0:
            flow = self.flow.loss(self._net(puzzle, thoughts, step), target * 2 - 1, self._cond(thoughts, step),
                                  generator=generator)
        else:  # a probe of the reasoner alone: the DiT is not trained (nor run)
            flow = puzzle.new_zeros(())
        grounding = flow.new_zeros(())
        if thoughts is not None and self.cfg.grounding_weight > 0:
            enc = (self.solution_encoding(solution) if self.cfg.thought == "grid"
                   else self.answer_encoding(puzzle, batch["answer_ids"], batch["answer_lens"]))
            # terminal thought grounding: MSE, relative to how much answer encodings differ in the batch
            # (raw hidden states of different answers sit close together, so a raw MSE is ~1e-3)
            grounding = (thoughts[:, -1] - enc).pow(2).mean() / (enc.var(0).mean() + 1e-6)
        out = {"loss": self.cfg.flow_weight * flow + self.cfg.grounding_weight * grounding, "flow": flow,
               "grounding": grounding}
        if thoughts is not None and self.readout is not None:
            out["readout"] = self._readout_loss(thoughts, batch)
            out["loss"] = out["loss"] + self.cfg.readout_weight * out["readout"]
        return out

    def _readout_logits(self, thoughts: Tensor, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """(logits (..., positions, vocab), target ids (..., positions)): per step from thoughts 1..T
        (``step_ids``) or the whole answer from the final thought (``answer_ids``)."""
        assert self.readout is not None and self.cfg.thought == "vector", "a text readout needs vector thoughts"
        if self.cfg.readout == "steps" and self.cfg.latent_steps > 0:
            ids, thought = batch["step_ids"], thoughts[:, 1:]
        else:
            ids, thought = batch["answer_ids"], thoughts[:, -1]
        logits = self.readout(thought).view(*thought.shape[:-1], self.answer_slots, VOCAB_SIZE)
        return logits[..., : ids.shape[-1], :], ids

    def readout_images(self, thoughts: Tensor) -> Tensor:
        """Grid thoughts (..., cells, hidden) -> the readout's image (..., 3, H, W) in [-1, 1]: each
        cell's vector reads out that cell's pixel block."""
        assert self.readout is not None and self.cfg.thought == "grid", "a grid readout needs thought=grid, readout_weight > 0"
        lead, cells = thoughts.shape[:-2], thoughts.shape[-2]
        side = math.isqrt(cells) * self.block
        patches = self.readout(thoughts).reshape(-1, cells, self.readout.out_features).transpose(1, 2)
        return F.fold(patches, (side, side), kernel_size=self.block, stride=self.block).view(*lead, 3, side, side)

    def _readout_loss(self, thoughts: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Vector thoughts: cross-entropy of the answer-text readout (see :meth:`_readout_logits`).
        Grid thoughts: MSE of the pixel readout, thought i against partial solution i (``steps``;
        all of them at once), or the final thought against the solution (``answer``, and T = 0)."""
        if self.cfg.thought == "vector":
            logits, ids = self._readout_logits(thoughts, batch)
            return F.cross_entropy(logits.flatten(0, -2), ids.masked_fill(ids == PAD, -100).flatten())
        T = self.cfg.latent_steps
        if self.cfg.readout == "steps" and T > 0:
            steps = torch.arange(1, T + 1, device=thoughts.device).expand(thoughts.shape[0], T)
            return F.mse_loss(self.readout_images(thoughts[:, 1:]), partial_target(batch, steps) * 2 - 1)
        return F.mse_loss(self.readout_images(thoughts[:, -1]), batch["solution"] * 2 - 1)

    @torch.no_grad()
    def readout_correct(self, thoughts: Tensor, batch: dict[str, Tensor]) -> Tensor:
        """Per puzzle, whether the readout's argmax from ``thoughts`` (see :meth:`thoughts`) gives
        every answer character (through each ``<eot>``) of ``batch``'s ``step_ids`` or
        ``answer_ids``, (batch,) bool."""
        logits, ids = self._readout_logits(thoughts, batch)
        return ((logits.argmax(-1) == ids) | (ids == PAD)).flatten(1).all(1)

    @torch.no_grad()
    def thought_maps(self, puzzle: Tensor, thoughts: Tensor) -> Tensor:
        """Each thought as a map over the puzzle's cells, (batch, T + 1, cells), row-major.

        Grid thoughts: the norm of what each cell's thought adds to that cell's patch token in the
        DiT (``conditioning=cells``): where thought i pushes the drawing, and how hard. Vector
        thoughts: the cosine similarity of the thought with each cell's input embedding (the
        reasoner's reading of that cell's pixels): which cells the one vector resembles.

        Args:
            puzzle: (batch, 3, H, W) in [0, 1].
            thoughts: as :meth:`thoughts` returns them for ``puzzle``.
        """
        if self.cfg.thought == "grid":
            assert self.dit.cell_embedder is not None
            return self.dit.cell_embedder(thoughts).norm(dim=-1)
        cells = self.cell_embed(cell_tokens(puzzle, self.block))  # (batch, cells, hidden)
        return F.cosine_similarity(thoughts[:, :, None], cells[:, None], dim=-1)

    @torch.no_grad()
    def generate(self, puzzle: Tensor, steps: int = 10, seed: int = 0, shuffle_thoughts: bool = False) -> Tensor:
        """Draw solution images: think, then ``steps`` Euler steps from noise (t = 1) to t = 0.

        Args:
            puzzle: (batch, 3, H, W) in [0, 1].
            steps: sampler steps (NFE).
            seed: noise seed.
            shuffle_thoughts: an ablation: each puzzle is drawn with the *next* puzzle's thoughts
                (rolled by one in the batch). If the solved rate does not drop, the DiT does not use
                what the reasoner thought (it needs a batch of at least 2).

        Returns:
            (batch, 3, H, W) images in [0, 1].
        """
        thoughts = self.thoughts(puzzle)
        if shuffle_thoughts and thoughts is not None:
            thoughts = thoughts.roll(1, dims=0)
        return self.draw(puzzle, thoughts, steps, seed)

    @torch.no_grad()
    def draw(self, puzzle: Tensor, thoughts: Tensor | None, steps: int = 10, seed: int = 0) -> Tensor:
        """:meth:`generate` from given thoughts (as :meth:`thoughts` returns them; None without a
        reasoner), so one reasoner pass can serve several drawings."""
        cond = self._cond(thoughts, torch.full((puzzle.shape[0],), self.cfg.latent_steps, device=puzzle.device))
        g = torch.Generator(device=puzzle.device).manual_seed(seed)
        x_T = torch.randn(puzzle.shape, generator=g, device=puzzle.device)
        sample = euler(self.flow.velocity_fn(self._net(puzzle, thoughts)), x_T, uniform(steps), cond=cond)
        return ((sample.x + 1) / 2).clamp(0, 1)
