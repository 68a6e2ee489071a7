"""Visual puzzle tasks (mazes, Sudoku): generators, renderers, parsers, checkers, answer text."""

import itertools

import numpy as np
import pytest

from latentcot.errors import LatentCotError
from latentcot.visual.tasks import TASKS, maze, render, sudoku

MAZE_SIZES = [4, 6, 8, 12]


@pytest.fixture(scope="module")
def mazes():
    return {size: maze.generate(30, size, seed=size) for size in MAZE_SIZES}


@pytest.fixture(scope="module")
def sudokus():
    return sudoku.generate(30, 4, seed=0)


def _is_perfect(p: maze.Puzzle) -> bool:
    """A spanning tree of the grid: size*size - 1 passages and every cell reachable."""
    edges = int(p.open_east[:, :-1].sum() + p.open_south[:-1].sum())
    reached = maze._bfs(p, (0, 0))
    return edges == p.size**2 - 1 and len(reached) == p.size**2 and not p.open_east[:, -1].any()


def test_registry_has_both_tasks():
    for module in TASKS.values():
        for name in ("generate", "parse", "check", "answer_text", "from_answer_text"):
            assert callable(getattr(module, name))


@pytest.mark.parametrize("name,size", [("maze", 6), ("sudoku", 4)])
def test_generator_is_deterministic_per_seed(name, size):
    task = TASKS[name]
    a, b, c = (task.generate(5, size, seed) for seed in (3, 3, 4))
    text = lambda ps: [p.answer_text() + str(p.render_puzzle().sum()) for p in ps]  # noqa: E731
    assert text(a) == text(b)
    assert text(a) != text(c)


@pytest.mark.parametrize("size", MAZE_SIZES)
def test_mazes_are_perfect_and_bfs_path_checks(mazes, size):
    for p in mazes[size]:
        assert _is_perfect(p)
        assert p.solution[0] == p.start and p.solution[-1] == p.goal
        assert p.num_steps >= size  # goal at least `size` moves from start
        assert maze.check(p, p.solution)
        assert p.render_puzzle().shape == (3, 4 * size, 4 * size)


@pytest.mark.parametrize("size", MAZE_SIZES)
@pytest.mark.parametrize("sigma,blur", [(0.0, 0.0), (0.15, 0.0), (0.1, 0.5)])
def test_maze_render_parse_round_trip(mazes, size, sigma, blur):
    for k, p in enumerate(mazes[size]):
        image = render.corrupt(p.render_solution(), sigma, blur, seed=k) if sigma else p.render_solution()
        assert maze.parse(image) == p.solution


@pytest.mark.parametrize("size", [4, 8])
def test_maze_partials_are_consistent(mazes, size):
    for p in mazes[size][:10]:
        assert np.array_equal(p.render_partial(0), p.render_puzzle())
        assert np.array_equal(p.render_partial(p.num_steps), p.render_solution())
        previous = p.render_partial(0)
        for i in range(p.num_steps + 1):
            image = p.render_partial(i)
            assert maze.parse(image) == p.solution[: i + 1]
            assert maze.parse(render.corrupt(image, 0.15, seed=i)) == p.solution[: i + 1]
            # each step only adds blue (one link and at most one cell); nothing else changes
            changed = (image != previous).any(axis=0)
            assert (image[:, changed] == np.array(render.BLUE)[:, None]).all()
            assert changed.sum() == (0 if i == 0 else 3 if i == p.num_steps else 12)
            previous = image


def test_maze_checker_rejects_corrupted_paths(mazes):
    for p in mazes[8]:
        path = p.solution
        assert not maze.check(p, path[:-1])  # stops short of the goal
        assert not maze.check(p, path[1:])  # does not begin at the start
        assert not maze.check(p, path[:2] + path[3:])  # disconnected: skips a cell
        assert not maze.check(p, path[:2] + [path[1], path[2]] + path[3:])  # revisits a cell
        # a step into a grid neighbour behind a wall
        walled = [(a, b) for a in path[:-1] for b in _grid_neighbours(a, p.size) if not p.is_open(a, b)]
        a, b = walled[0]
        cut = path.index(a)
        assert not maze.check(p, path[: cut + 1] + [b] + path[cut + 1 :])
        assert not maze.check(p, [p.start, (p.start[0] + 20, p.start[1])])  # off the grid


def _grid_neighbours(cell, size):
    r, c = cell
    return [(r + dr, c + dc) for dr, dc in maze.MOVES.values() if 0 <= r + dr < size and 0 <= c + dc < size]


def test_maze_parser_reads_a_path_through_a_wall_and_checker_rejects_it(mazes):
    p = next(p for p in mazes[6] if p.num_steps >= 6)
    image = p.render_puzzle()
    a = p.start
    b = next(b for b in _grid_neighbours(a, p.size) if not p.is_open(a, b) and b != p.goal)
    render.paint(image, *maze._link(a, b), render.BLUE)  # draw across the wall
    render.paint(image, *render.interior(*b, maze.BLOCK), render.BLUE)
    parsed = maze.parse(image)
    assert parsed == [a, b]
    assert not maze.check(p, parsed)


def test_maze_answer_text_round_trip(mazes):
    for p in mazes[8]:
        text = p.answer_text()
        assert set(text) <= set("UDLR") and len(text) == p.num_steps
        assert maze.from_answer_text(p, text) == p.solution
    with pytest.raises(LatentCotError, match="move 2"):
        maze.from_answer_text(mazes[8][0], "RRX")


def test_glyphs_are_far_apart():
    templates = sudoku.glyph_templates(9)
    for a, b in itertools.combinations(range(10), 2):
        assert (templates[a] != templates[b]).sum() >= 4


def test_solver_counts_all_4x4_grids():
    # there are exactly 288 complete 4x4 Sudoku grids
    assert sudoku.count_solutions(np.zeros((4, 4), dtype=np.int64), limit=10**6) == 288


def test_sudoku_has_unique_solution_and_checks(sudokus):
    for p in sudokus:
        assert sudoku.count_solutions(p.clues) == 1
        assert sudoku.check(p, p.solution)
        given = p.clues > 0
        assert (p.solution[given] == p.clues[given]).all()
        assert p.num_steps == 16 - given.sum() > 0


@pytest.mark.parametrize("sigma,blur", [(0.0, 0.0), (0.15, 0.0), (0.15, 0.5)])
def test_sudoku_render_parse_round_trip(sudokus, sigma, blur):
    for k, p in enumerate(sudokus):
        for image, want in ((p.render_solution(), p.solution), (p.render_puzzle(), p.clues)):
            noisy = render.corrupt(image, sigma, blur, seed=k) if sigma else image
            assert np.array_equal(sudoku.parse(noisy), want)


def test_sudoku_9x9_round_trip_and_unique():
    for k, p in enumerate(sudoku.generate(2, 9, seed=1, clues=40)):
        assert sudoku.count_solutions(p.clues) == 1 and sudoku.check(p, p.solution)
        assert p.render_solution().shape == (3, 72, 72)
        assert np.array_equal(sudoku.parse(render.corrupt(p.render_solution(), 0.15, seed=k)), p.solution)


def test_sudoku_partials_are_consistent(sudokus):
    for p in sudokus[:10]:
        assert np.array_equal(p.render_partial(0), p.render_puzzle())
        assert np.array_equal(p.render_partial(p.num_steps), p.render_solution())
        for i in range(p.num_steps + 1):
            want = p.clues.copy()
            for r, c in p.empty_cells[:i]:
                want[r, c] = p.solution[r, c]
            assert np.array_equal(sudoku.parse(p.render_partial(i)), want)


def test_sudoku_checker_rejects_corrupted_grids(sudokus):
    for p in sudokus:
        dup = p.solution.copy()
        r, c = p.empty_cells[0]
        dup[r, c] = dup[r, (c + 1) % 4]  # a duplicate in the row
        assert not sudoku.check(p, dup)
        # swapping two digits everywhere keeps the grid valid, but changes a clue
        swapped = p.solution.copy()
        d1, d2 = int(p.clues[p.clues > 0][0]), 1 + int(p.clues[p.clues > 0][0]) % 4
        swapped[p.solution == d1], swapped[p.solution == d2] = d2, d1
        assert sudoku.check(sudoku.Puzzle(4, np.zeros_like(p.clues), swapped), swapped)
        assert not sudoku.check(p, swapped)
        assert not sudoku.check(p, p.clues)  # unfilled
        assert not sudoku.check(p, p.solution[:3])  # wrong shape


def test_sudoku_answer_text_round_trip(sudokus):
    for p in sudokus:
        text = p.answer_text()
        assert len(text) == 16 and set(text) <= set("1234")
        assert np.array_equal(sudoku.from_answer_text(p, text), p.solution)
    with pytest.raises(LatentCotError, match="expected 16 digits"):
        sudoku.from_answer_text(sudokus[0], "123")


def test_parsers_reject_wrong_shapes():
    with pytest.raises(LatentCotError, match="maze image"):
        maze.parse(np.zeros((3, 17, 17)))
    with pytest.raises(LatentCotError, match="sudoku image"):
        sudoku.parse(np.zeros((1, 32, 32)))
