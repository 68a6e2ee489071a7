"""EndoCoT: shapes, losses, grounding, T = 0, partial targets, save/load, solve and the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentcot.cli import main as cli_main
from latentcot.config import from_dict, load_config, to_dict
from latentcot.errors import LatentCotError
from latentcot.visual.endocot import CHARS, EOT, EndoCoT, EndoCoTConfig, encode_answers
from latentcot.visual.tasks import maze, sudoku
from latentcot.visual.train import (
    VisualRunConfig,
    answer_tensors,
    batch_of,
    build_model,
    eval_puzzles,
    evaluate,
    load_run,
    main,
    partial_step,
    prepare,
    save_run,
    solve,
    solve_to_files,
    warm_start,
)

TINY = {"reasoner_layers": 1, "reasoner_hidden": 32, "reasoner_heads": 2, "dit_hidden": 32, "dit_depth": 1,
        "dit_heads": 2}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models are slower with several threads on a shared CPU (oversubscription)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(**overrides) -> EndoCoT:
    torch.manual_seed(0)
    return EndoCoT(from_dict(EndoCoTConfig, {**TINY, **overrides}), image_size=16, block=4)


def tiny_batch(T: int, n: int = 8) -> dict[str, torch.Tensor]:
    data = prepare("maze", maze.generate(n, 4, seed=1), T)
    return batch_of(data, torch.arange(n), torch.device("cpu"))


def test_shapes() -> None:
    model, batch = tiny_model(latent_steps=3), tiny_batch(3)
    assert model.thoughts(batch["puzzle"]).shape == (8, 4, 32)  # (batch, T + 1, hidden)
    enc = model.answer_encoding(batch["puzzle"], batch["answer_ids"], batch["answer_lens"])
    assert enc.shape == (8, 32)
    out = model.loss(batch, stage=1)
    assert set(out) == {"loss", "flow", "grounding"} and all(torch.isfinite(v) for v in out.values())
    images = model.generate(batch["puzzle"][:3], steps=2)
    assert images.shape == (3, 3, 16, 16) and images.min() >= 0 and images.max() <= 1


GRID = {"thought": "grid", "conditioning": "cells", "reasoner_attention": "bidirectional"}


@pytest.mark.parametrize(("stage", "options"), [
    (1, {"conditioning": "tokens"}), (2, {"conditioning": "tokens"}), (1, {"conditioning": "adaln"}),
    (2, {"conditioning": "adaln"}), (1, {"conditioning": "adaln", "reasoner_attention": "bidirectional"}),
    (1, GRID), (2, GRID)], ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict) else str(v))
def test_flow_and_grounding_loss_fall_on_a_tiny_batch(stage: int, options: dict) -> None:
    model = tiny_model(latent_steps=2, **options)
    batch = tiny_batch(2, n=4)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(20):
        out = model.loss(batch, stage, generator=torch.Generator().manual_seed(0))  # same t and noise each step
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append((out["flow"].item(), out["grounding"].item()))
    (flow0, ground0), (flow1, ground1) = losses[0], losses[-1]
    assert flow1 < 0.5 * flow0 and ground1 < 0.5 * ground0


def test_stage1_thought_i_sees_only_thoughts_up_to_i() -> None:
    """With token conditioning, the partial of thought i is drawn from thoughts 0..i: changing
    later thoughts leaves the stage-1 loss unchanged, changing an earlier one does not."""
    model, batch = tiny_model(latent_steps=3, conditioning="tokens"), tiny_batch(3, n=6)
    with torch.no_grad():  # adaLN-zero and the zero-init thought entry: perturb so that every input matters
        for p in model.dit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    real = model.thoughts(batch["puzzle"]).detach()
    step = torch.randint(1, 4, (6,), generator=torch.Generator().manual_seed(0))  # what loss() draws first

    def loss_with(thoughts: torch.Tensor) -> float:
        model.thoughts = lambda puzzle: thoughts  # type: ignore[method-assign]
        return model.loss(batch, 1, generator=torch.Generator().manual_seed(0))["flow"].item()

    later = real.clone()
    for n, i in enumerate(step.tolist()):
        later[n, i + 1 :] += 3.0
    earlier = real.clone()
    earlier[:, 0] += 3.0
    assert loss_with(later) == pytest.approx(loss_with(real), rel=1e-6)
    assert abs(loss_with(earlier) - loss_with(real)) > 1e-4  # float noise here is ~1e-7


def test_grounding_is_zero_when_the_final_thought_is_the_answer_encoding() -> None:
    model, batch = tiny_model(latent_steps=2), tiny_batch(2)
    enc = model.answer_encoding(batch["puzzle"], batch["answer_ids"], batch["answer_lens"])
    real = model.thoughts
    assert model.loss(batch, 2)["grounding"].item() > 0
    model.thoughts = lambda puzzle: torch.cat([real(puzzle)[:, :-1], enc[:, None]], 1)  # type: ignore[method-assign]
    assert model.loss(batch, 2)["grounding"].item() == 0.0


def test_answer_encoding_ignores_right_padding() -> None:
    model, batch = tiny_model(), tiny_batch(4)
    ids, lens = encode_answers(["RRD", "RRDLLU"])
    puzzle = batch["puzzle"][:2]
    both = model.answer_encoding(puzzle, ids, lens)
    alone = model.answer_encoding(puzzle[:1], ids[:1, :4], lens[:1])
    torch.testing.assert_close(both[:1], alone)


def test_t0_and_no_reasoner_paths() -> None:
    model, batch = tiny_model(latent_steps=0), tiny_batch(0)
    assert model.thoughts(batch["puzzle"]).shape == (8, 1, 32)
    assert torch.isfinite(model.loss(batch, stage=1)["loss"])
    assert model.generate(batch["puzzle"][:2], steps=2).shape == (2, 3, 16, 16)
    static = tiny_model(reasoner=False)
    assert static.reasoner is None and static.thoughts(batch["puzzle"]) is None
    assert static.loss(batch, stage=2)["grounding"].item() == 0.0


@pytest.mark.parametrize(("task", "size", "T"), [("maze", 6, 4), ("maze", 4, 8), ("sudoku", 4, 3)])
def test_partial_targets_equal_render_partial(task: str, size: int, T: int) -> None:
    module = {"maze": maze, "sudoku": sudoku}[task]
    puzzles = module.generate(6, size, seed=2)
    data = prepare(task, puzzles, T)
    for n, p in enumerate(puzzles):
        for i in range(1, T + 1):
            shown = torch.where(data["order"][n] <= i, data["solution"][n], data["puzzle"][n]).float().numpy()
            # float16 storage: Sudoku's grey (0.6) is off by 1e-4, everything else is exact
            np.testing.assert_allclose(shown, p.render_partial(partial_step(i, T, p.num_steps)), atol=1e-3, rtol=0)


def test_config_and_weights_round_trip(tmp_path) -> None:
    cfg = from_dict(VisualRunConfig, {"data": {"size": 4}, "model": {**TINY, "latent_steps": 2}})
    torch.manual_seed(0)
    model = build_model(cfg)
    save_run(model, cfg, tmp_path)
    loaded, cfg2 = load_run(tmp_path)
    assert to_dict(cfg2) == to_dict(cfg)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    puzzle = torch.from_numpy(maze.generate(2, 4, seed=3)[0].render_puzzle())[None]
    torch.testing.assert_close(model.eval().generate(puzzle, steps=2), loaded.generate(puzzle, steps=2))


def test_bad_config_keys_raise() -> None:
    with pytest.raises(LatentCotError, match="latent_steps"):
        load_config(VisualRunConfig, None, ["model.latent_step=3"])
    with pytest.raises(LatentCotError, match="conditioning"):
        load_config(VisualRunConfig, None, ["model.conditioning=crossattn"])
    with pytest.raises(LatentCotError, match="task"):
        load_config(VisualRunConfig, None, ["data.task=chess"])
    with pytest.raises(LatentCotError, match="not an EndoCoT run"):
        load_run("/nonexistent-run")


def test_solve_writes_files_and_a_checked_answer(tmp_path) -> None:
    model, puzzle = tiny_model(latent_steps=1), maze.generate(1, 4, seed=4)[0]
    result = solve_to_files(model, "maze", puzzle, tmp_path, steps=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["answer.png", "puzzle.png", "truth.png"]
    assert result["truth"] == puzzle.answer_text()
    path = maze.from_answer_text(puzzle, result["answer"])
    assert result["solved"] == maze.check(puzzle, path)  # the pipeline, not accuracy


def test_cli_train_eval_solve(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    args = [f"out_dir={run}", "device=cpu", "data.train_size=16", "data.eval_size=4", "train.batch_size=4",
            "train.stage1_steps=2", "train.stage2_steps=2", "sample_steps=2"] + [f"model.{k}={v}" for k, v in TINY.items()]
    assert cli_main(["visual", "train", *args]) == 0
    assert (run / "model.safetensors").is_file() and (run / "eval.json").is_file()
    assert cli_main(["visual", "eval", str(run), "--n", "3", "--latent-steps", "6"]) == 0
    assert cli_main(["visual", "solve", str(run), "--index", "1", "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert '"n": 3, "latent_steps": 6' in out and "answer:" in out and (tmp_path / "s" / "answer.png").is_file()
    assert cli_main(["visual", "solve", str(tmp_path / "missing")]) == 2


def test_trained_on_4x4_mazes_beats_chance(tmp_path) -> None:
    """About a minute on one core (1200 steps of the static baseline): the trained model solves
    more held-out 4x4 mazes than the same model untrained (measured: 0.11 vs 0.0)."""
    cfg = load_config(VisualRunConfig, None, [f"out_dir={tmp_path}", "device=cpu", "data.train_size=3000",
                                               "data.eval_size=200", "model.reasoner=false", "train.stage1_steps=400",
                                               "train.stage2_steps=800"])
    torch.manual_seed(cfg.seed)
    _, _, untrained = solve(build_model(cfg), "maze", eval_puzzles(cfg), cfg.sample_steps, cfg.seed)
    assert main(cfg, log=None)["solved"] > np.mean(untrained) + 0.03


def test_shuffled_thoughts_draw_each_puzzle_from_the_next_ones_thoughts() -> None:
    model, batch = tiny_model(latent_steps=2), tiny_batch(2, n=3)
    with torch.no_grad():
        for p in model.dit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    puzzle = batch["puzzle"]
    shuffled = model.generate(puzzle, steps=2, shuffle_thoughts=True)
    assert (shuffled - model.generate(puzzle, steps=2)).abs().max() > 1e-4  # the thoughts matter here
    real = model.thoughts
    model.thoughts = lambda p: real(p)[[2, 0, 1]]  # type: ignore[method-assign]
    torch.testing.assert_close(shuffled, model.generate(puzzle, steps=2))


@pytest.mark.parametrize(("readout", "T"), [("answer", 1), ("steps", 2)])
def test_readout_learns_the_answers_and_evaluate_reports_it(readout: str, T: int) -> None:
    model = tiny_model(latent_steps=T, readout_weight=1.0, readout=readout, grounding_weight=0.0, conditioning="tokens")
    puzzles = maze.generate(4, 4, seed=5)
    batch = batch_of(prepare("maze", puzzles, T), torch.arange(4), torch.device("cpu"))
    assert model.readout_correct(model.thoughts(batch["puzzle"]), batch).sum() == 0
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(120):
        out = model.loss(batch, stage=2, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["readout"].item() < 0.1
    assert model.readout_correct(model.thoughts(batch["puzzle"]), batch).all()
    result = evaluate(model.eval(), "maze", puzzles, steps=2)
    assert result["readout_exact"] == 1.0 and result["n_eval"] == 4
    assert set(result) == {"solved", "n_eval", "solved_shuffled_thoughts", "readout_exact"}


@pytest.mark.parametrize(("task", "T"), [("maze", 3), ("maze", 8), ("sudoku", 3)])
def test_step_texts_split_the_answer_at_the_partials(task: str, T: int) -> None:
    """Thought i's step text takes partial i - 1 to partial i, so the steps join to the answer's
    moves (maze) or to the empty cells' digits in fill order (Sudoku)."""
    module = {"maze": maze, "sudoku": sudoku}[task]
    puzzles = module.generate(5, 4, seed=6)
    step_ids = answer_tensors(puzzles, T)["step_ids"]
    assert step_ids.shape[:2] == (5, T)
    for p, rows in zip(puzzles, step_ids):
        text = "".join(CHARS[t] for t in rows.flatten().tolist() if t < len(CHARS))
        whole = p.answer_text() if task == "maze" else "".join(
            d for d, clue in zip(p.answer_text(), p.clues.ravel()) if clue == 0)  # row-major fill order
        assert text == whole and (rows == EOT).sum(1).tolist() == [1] * T


def test_runs_saved_before_the_conditioning_option_load_as_adaln(tmp_path) -> None:
    cfg = from_dict(VisualRunConfig, {"data": {"size": 4}, "model": {**TINY, "conditioning": "adaln"}})
    torch.manual_seed(0)
    save_run(build_model(cfg), cfg, tmp_path)
    text = (tmp_path / "config.yaml").read_text()
    assert "conditioning: adaln" in text
    old = "".join(line for line in text.splitlines(keepends=True) if "conditioning:" not in line)
    (tmp_path / "config.yaml").write_text(old)  # as a run saved before the option wrote it
    model, loaded = load_run(tmp_path)
    assert loaded.model.conditioning == "adaln" and model.dit.c_embedder is not None


def test_no_reasoner_stage1_draws_the_full_solution() -> None:
    """Without thoughts nothing tells the DiT which partial is asked for: stage 1 equals stage 2."""
    model, batch = tiny_model(reasoner=False, latent_steps=3), tiny_batch(3)
    with torch.no_grad():
        for p in model.dit.parameters():
            p.add_(0.1 * torch.randn_like(p))
    stage1 = model.loss(batch, 1, generator=torch.Generator().manual_seed(0))["flow"]
    stage2 = model.loss(batch, 2, generator=torch.Generator().manual_seed(0))["flow"]
    assert stage1.item() == stage2.item()


def test_flow_weight_zero_trains_the_reasoner_alone() -> None:
    model = tiny_model(latent_steps=2, readout_weight=1.0, grounding_weight=0.0, flow_weight=0.0)
    batch = tiny_batch(2, n=4)
    out = model.loss(batch, stage=1)
    out["loss"].backward()
    assert out["flow"].item() == 0.0 and out["loss"].item() == pytest.approx(out["readout"].item())
    assert all(p.grad is None for p in model.dit.parameters())
    assert model.reasoner is not None and all(p.grad is not None for p in model.readout.parameters())


def test_grid_thoughts_shapes_and_a_bidirectional_read_of_the_cells() -> None:
    model, batch = tiny_model(latent_steps=3, **GRID), tiny_batch(3)
    thoughts = model.thoughts(batch["puzzle"])
    assert thoughts.shape == (8, 4, 16, 32)  # (batch, T + 1, cells, hidden)
    out = model.loss(batch, stage=1)
    assert set(out) == {"loss", "flow", "grounding"} and all(torch.isfinite(v) for v in out.values())
    assert model.generate(batch["puzzle"][:3], steps=2).shape == (3, 3, 16, 16)
    # the last cell (bottom right) reaches the first cell's very first thought only when the cells
    # attend both ways
    changed = batch["puzzle"].clone()
    changed[:, :, 12:, 12:] = 1 - changed[:, :, 12:, 12:]
    for attention, differs in (("bidirectional", True), ("causal", False)):
        model = tiny_model(latent_steps=1, **{**GRID, "reasoner_attention": attention})
        first = model.thoughts(batch["puzzle"])[:, 0, 0]
        assert ((model.thoughts(changed)[:, 0, 0] - first).abs().max() > 1e-4) == differs


def test_neighbour_attention_carries_a_cell_one_step_further_per_pass() -> None:
    """With neighbours attention (1 layer) thought k at a cell depends on the cells within k + 1
    grid steps only: the bottom-right cell of a 4x4 grid, 6 steps from the top-left one, first
    reaches it in thought 5 (the 6th pass)."""
    model, batch = tiny_model(latent_steps=5, **{**GRID, "reasoner_attention": "neighbours"}), tiny_batch(5)
    puzzle = batch["puzzle"].requires_grad_()
    thoughts = model.thoughts(puzzle)[:, :, 0]  # (batch, T + 1, hidden) at the top-left cell
    # a gradient, not a difference of outputs: at random init a change 6 steps away is below float32's
    # resolution; a random direction, not a plain sum (a LayerNorm's outputs sum to a constant)
    direction = torch.randn(thoughts.shape[-1])
    reach = [torch.autograd.grad(thoughts[:, k] @ direction, puzzle, torch.ones(len(puzzle)), retain_graph=True)[0]
             [:, :, 12:, 12:].abs().max() for k in range(6)]
    assert max(reach[:5]) == 0 and reach[5] > 0
    with pytest.raises(LatentCotError, match="neighbours needs thought=grid"):
        EndoCoTConfig(reasoner_attention="neighbours")


def test_grid_thought_i_is_the_reasoner_pass_over_the_cells_plus_thought_i_minus_1() -> None:
    model, batch = tiny_model(latent_steps=2, **GRID), tiny_batch(2, n=3)
    thoughts = model.thoughts(batch["puzzle"])
    cells = model._grid_input(batch["puzzle"])
    attn = model._grid_mask(cells)
    torch.testing.assert_close(thoughts[:, 0], model._grid_pass(cells, attn))
    torch.testing.assert_close(thoughts[:, 2], model._grid_pass(cells + thoughts[:, 1], attn))


def test_grid_grounding_is_zero_when_the_final_thought_reads_as_the_solution() -> None:
    model, batch = tiny_model(latent_steps=2, **GRID), tiny_batch(2)
    assert model.loss(batch, 2)["grounding"].item() > 0
    enc = model.solution_encoding(batch["solution"])
    real = model.thoughts
    model.thoughts = lambda puzzle: torch.cat([real(puzzle)[:, :-1], enc[:, None]], 1)  # type: ignore[method-assign]
    assert model.loss(batch, 2)["grounding"].item() == 0.0


def test_grid_thoughts_reach_the_dit_per_cell() -> None:
    """Each cell's thought enters its own patch token: the DiT's output depends on the thoughts
    (and the per-cell entry starts at zero, so an untrained model draws the same without them)."""
    model, batch = tiny_model(latent_steps=1, **GRID), tiny_batch(1, n=2)
    puzzle, thoughts = batch["puzzle"], model.thoughts(batch["puzzle"])
    with torch.no_grad():  # adaLN-zero: perturb so that every input matters, all but the per-cell entry
        for name, p in model.dit.named_parameters():
            if not name.startswith("cell_embedder"):
                p.add_(0.1 * torch.randn_like(p))
    torch.testing.assert_close(model.draw(puzzle, thoughts, 2), model.draw(puzzle, torch.zeros_like(thoughts), 2))
    with torch.no_grad():
        model.dit.cell_embedder.weight.normal_()
    assert (model.draw(puzzle, thoughts, 2) - model.draw(puzzle, torch.zeros_like(thoughts), 2)).abs().max() > 1e-3


def test_grid_readout_images_put_each_cell_back_in_its_place() -> None:
    """With an identity readout, thoughts equal to the cells' pixel blocks read out the image itself."""
    from latentcot.visual.endocot import cell_tokens

    model = tiny_model(latent_steps=1, readout_weight=1.0, reasoner_hidden=48, reasoner_heads=2, **GRID)
    with torch.no_grad():
        model.readout.weight.copy_(torch.eye(48))
        model.readout.bias.zero_()
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(model.readout_images(cell_tokens(images, 4)), images)
    both = model.readout_images(torch.stack([cell_tokens(images, 4)] * 3, 1))  # (batch, thoughts, ...)
    assert both.shape == (2, 3, 3, 16, 16) and torch.equal(both[:, 1], images)


def test_grid_readout_learns_the_solutions_and_evaluate_reports_it() -> None:
    model = tiny_model(latent_steps=2, readout_weight=1.0, grounding_weight=0.0, flow_weight=0.0, **GRID)
    puzzles = maze.generate(4, 4, seed=5)
    batch = batch_of(prepare("maze", puzzles, 2), torch.arange(4), torch.device("cpu"))
    assert evaluate(model.eval(), "maze", puzzles, steps=1)["readout_solved"] == 0.0
    opt = torch.optim.Adam(model.train().parameters(), lr=5e-3)
    for _ in range(200):
        out = model.loss(batch, stage=1)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["readout"].item() < 0.05  # from ~1 (pixels in [-1, 1])
    result = evaluate(model.eval(), "maze", puzzles, steps=1)
    assert result["readout_solved"] == 1.0 and "readout_exact" not in result


@pytest.mark.parametrize(("thought", "conditioning"), [("grid", "adaln"), ("grid", "tokens"), ("vector", "cells")])
def test_grid_thoughts_and_cell_conditioning_go_together(thought: str, conditioning: str) -> None:
    with pytest.raises(LatentCotError, match="conditioning=cells"):
        EndoCoTConfig(thought=thought, conditioning=conditioning)


def test_grid_run_round_trips(tmp_path) -> None:
    cfg = from_dict(VisualRunConfig, {"data": {"size": 4}, "model": {**TINY, **GRID, "latent_steps": 2}})
    torch.manual_seed(0)
    model = build_model(cfg)
    with torch.no_grad():
        model.dit.cell_embedder.weight.normal_()
    save_run(model, cfg, tmp_path)
    loaded, _ = load_run(tmp_path)
    puzzle = tiny_batch(2, n=2)["puzzle"]
    torch.testing.assert_close(loaded.generate(puzzle, steps=2), model.eval().generate(puzzle, steps=2))


def test_init_from_starts_a_run_from_a_run_folders_weights(tmp_path) -> None:
    spec = {"data": {"size": 4}, "model": {**TINY, **GRID, "latent_steps": 2}}
    torch.manual_seed(0)
    trained = build_model(from_dict(VisualRunConfig, spec))
    save_run(trained, from_dict(VisualRunConfig, spec), tmp_path / "first")
    cfg = from_dict(VisualRunConfig, {**spec, "init_from": str(tmp_path / "first")})
    torch.manual_seed(1)
    model = build_model(cfg)
    assert any((a - b).abs().max() > 0 for a, b in zip(model.parameters(), trained.parameters()))
    warm_start(model, cfg)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), trained.parameters()))
    other = from_dict(VisualRunConfig, {**spec, "model": {**spec["model"], "latent_steps": 3},
                                        "init_from": str(tmp_path / "first")})
    with pytest.raises(LatentCotError, match=r"model.latent_steps \(2 there, 3 here\)"):
        warm_start(build_model(other), other)
    with pytest.raises(LatentCotError, match="not an EndoCoT run"):
        warm_start(model, from_dict(VisualRunConfig, {**spec, "init_from": str(tmp_path / "none")}))


def test_a_looped_reasoner_thinks_longer_at_test_time() -> None:
    model, puzzle = tiny_model(latent_steps=2, **GRID), tiny_batch(2)["puzzle"]
    trained = model.thoughts(puzzle)
    model.set_latent_steps(5)
    longer = model.thoughts(puzzle)
    assert longer.shape[1] == 6  # T + 1
    torch.testing.assert_close(longer[:, :3], trained)  # the same loop, run further
    assert model.generate(puzzle[:2], steps=2).shape == (2, 3, 16, 16)
    with pytest.raises(LatentCotError, match="latent_steps must be 0 or more"):
        model.set_latent_steps(-1)
    with pytest.raises(LatentCotError, match="one slot per thought"):
        tiny_model(latent_steps=2, conditioning="tokens").set_latent_steps(3)
    with pytest.raises(LatentCotError, match="no reasoner"):
        tiny_model(reasoner=False).set_latent_steps(3)
    with pytest.raises(LatentCotError, match="past the reasoner's"):
        tiny_model(latent_steps=2).set_latent_steps(100)
