"""Sudoku puzzles (4x4, and 9x9) for EndoCoT (Dai et al. 2026, https://arxiv.org/abs/2603.12252).

A ``size x size`` Sudoku (``size = box**2``: 4 or 9) is generated from a random full grid
(randomised backtracking) by removing clues in random order while the puzzle keeps a unique
solution (solutions counted by a small backtracking solver, stopped at 2). The answer is the
full digit grid, or as text its digits row-major (``"1234341221434321"``).

Image layout (see :mod:`latentcot.visual.tasks.render`): blocks of ``BLOCK = 8`` pixels, a
1-pixel grid line on each block's top and left (grey inside a box, black on box borders) and a
7x7 interior per cell holding a hand-drawn 5x5 pixel glyph (one pixel of margin); clues in
black ink, filled-in digits in blue. ``H = W = 8 * size`` (4x4 -> 32 px, 9x9 -> 72 px).
``render_partial(i)`` fills the first ``i`` empty cells (row-major).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from latentcot.errors import LatentCotError
from latentcot.visual.tasks import render

BLOCK = 8
# hand-designed 5x5 glyphs; every two differ in at least 4 pixels (tests pin this), so nearest-
# template matching survives pixel noise
GLYPHS = {
    1: [".##..", "..#..", "..#..", "..#..", ".###."],
    2: ["####.", "....#", ".###.", "#....", "#####"],
    3: ["####.", "....#", "..##.", "....#", "####."],
    4: ["#..#.", "#..#.", "#####", "...#.", "...#."],
    5: ["#####", "#....", "####.", "....#", "####."],
    6: ["..##.", ".#...", "####.", "#...#", ".###."],
    7: ["#####", "....#", "...#.", "..#..", "..#.."],
    8: [".###.", "#...#", ".###.", "#...#", ".###."],
    9: [".###.", "#...#", ".####", "...#.", ".##.."],
}


def glyph_templates(size: int) -> np.ndarray:
    """Ink templates over a cell interior, ``(size + 1, 7, 7)``: index 0 is the empty cell,
    index ``d`` the glyph of digit ``d`` (1 = ink)."""
    templates = np.zeros((size + 1, BLOCK - 1, BLOCK - 1), dtype=np.float32)
    for d in range(1, size + 1):
        templates[d, 1:6, 1:6] = [[ch == "#" for ch in row] for row in GLYPHS[d]]
    return templates


@dataclass(eq=False)
class Puzzle:
    """One Sudoku.

    Attributes:
        size: digits per row (4 or 9); boxes are ``sqrt(size)`` on a side.
        clues: ``(size, size)`` int, the given digits, 0 where empty.
        solution: ``(size, size)`` int, the unique solution.
    """

    size: int
    clues: np.ndarray
    solution: np.ndarray

    @property
    def empty_cells(self) -> list[tuple[int, int]]:
        """The cells to fill, row-major (the order of the partial images)."""
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(self.clues == 0))]

    @property
    def num_steps(self) -> int:
        """Cells to fill (the partial images run over ``i = 0 .. num_steps``)."""
        return int((self.clues == 0).sum())

    def render_puzzle(self) -> np.ndarray:
        """The puzzle image ``(3, 8*size, 8*size)``: the grid and the clues in black."""
        return self.render_partial(0)

    def render_solution(self) -> np.ndarray:
        """The solution image: the clues in black, every other cell filled in blue."""
        return self.render_partial(self.num_steps)

    def render_partial(self, i: int) -> np.ndarray:
        """The puzzle with its first ``i`` empty cells (row-major) filled in blue."""
        filled = np.zeros_like(self.clues)
        for r, c in self.empty_cells[:i]:
            filled[r, c] = self.solution[r, c]
        return draw(self.clues, filled)

    def answer_text(self) -> str:
        """The solution's digits, row-major."""
        return answer_text(self.solution)

    def step_text(self, start: int, stop: int) -> str:
        """The digits that take ``render_partial(start)`` to ``render_partial(stop)``, in fill order."""
        return "".join(str(int(self.solution[r, c])) for r, c in self.empty_cells[start:stop])


def draw(clues: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """A Sudoku image with ``clues`` in black ink and ``filled`` digits in blue (0 = blank)."""
    size = clues.shape[0]
    box = math.isqrt(size)
    image = render.blank(size, BLOCK, line=render.GREY)
    image[:, :: box * BLOCK, :] = 0.0  # box borders in black
    image[:, :, :: box * BLOCK] = 0.0
    templates = glyph_templates(size).astype(bool)
    for grid, colour in ((clues, render.BLACK), (filled, render.BLUE)):
        for r, c in zip(*np.nonzero(grid)):
            rows, cols = render.interior(int(r), int(c), BLOCK)
            cell = image[:, rows, cols]  # a view: painting it paints the image
            cell[:, templates[grid[r, c]]] = np.asarray(colour, dtype=np.float32)[:, None]
    return image


def count_solutions(grid: np.ndarray, limit: int = 2) -> int:
    """Solutions of a (partial) grid, counted by backtracking up to ``limit``."""
    size = grid.shape[0]
    box = math.isqrt(size)
    full = (1 << (size + 1)) - 2  # bits 1..size
    # used digits as bitmasks per row, column and box (bit d = digit d)
    rows, cols, boxes = [0] * size, [0] * size, [0] * size
    empty = []
    for r in range(size):
        for c in range(size):
            d, b = int(grid[r, c]), (r // box) * box + c // box
            if d:
                rows[r], cols[c], boxes[b] = rows[r] | 1 << d, cols[c] | 1 << d, boxes[b] | 1 << d
            else:
                empty.append((r, c, b))

    def solve() -> int:
        if not empty:
            return 1
        # branch on the cell with the fewest options (fails fast on dead ends)
        k = min(range(len(empty)), key=lambda i: (full & ~(rows[empty[i][0]] | cols[empty[i][1]] | boxes[empty[i][2]])).bit_count())
        r, c, b = empty.pop(k)
        free = full & ~(rows[r] | cols[c] | boxes[b])
        total = 0
        while free and total < limit:
            bit = free & -free
            free ^= bit
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
            total += solve()
            rows[r] ^= bit
            cols[c] ^= bit
            boxes[b] ^= bit
        empty.insert(k, (r, c, b))
        return total

    return solve()


def _full_grid(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random complete grid: backtracking that tries digits in a random order."""
    box = math.isqrt(size)
    grid = np.zeros((size, size), dtype=np.int64)

    def fill(k: int) -> bool:
        if k == size * size:
            return True
        r, c = divmod(k, size)
        b_r, b_c = r - r % box, c - c % box
        for d in rng.permutation(size) + 1:
            if d in grid[r] or d in grid[:, c] or d in grid[b_r : b_r + box, b_c : b_c + box]:
                continue
            grid[r, c] = d
            if fill(k + 1):
                return True
        grid[r, c] = 0
        return False

    fill(0)
    return grid


def make_puzzle(size: int, rng: np.random.Generator, clues: int | None = None) -> Puzzle:
    """One puzzle: a random full grid, then clues removed in random order while the solution
    stays unique, until ``clues`` remain (None: until no clue can go)."""
    solution = _full_grid(size, rng)
    grid = solution.copy()
    for k in rng.permutation(size * size):
        if clues is not None and int((grid > 0).sum()) <= clues:
            break
        r, c = divmod(int(k), size)
        digit, grid[r, c] = grid[r, c], 0
        if count_solutions(grid) != 1:
            grid[r, c] = digit
    return Puzzle(size, grid, solution)


def generate(n: int, size: int, seed: int, clues: int | None = None) -> list[Puzzle]:
    """``n`` random Sudoku puzzles with a unique solution; the same seed gives the same puzzles.

    Args:
        n: number of puzzles.
        size: 4 or 9.
        seed: the seed.
        clues: stop removing clues when this many remain (None: as few as the greedy removal
            reaches, about 5 for 4x4 and 24 for 9x9).

    Returns:
        The puzzles.
    """
    if size not in (4, 9):
        raise LatentCotError(f"sudoku size: expected 4 or 9, got {size}")
    rng = np.random.default_rng(seed)
    return [make_puzzle(size, rng, clues) for _ in range(n)]


def answer_text(grid: np.ndarray) -> str:
    """A digit grid as text: its digits row-major (0 for an empty cell)."""
    return "".join(str(int(d)) for d in np.asarray(grid).ravel())


def from_answer_text(puzzle: Puzzle, text: str) -> np.ndarray:
    """The digit grid written by ``text`` (whitespace ignored), not yet checked.

    Raises:
        LatentCotError: a character that is not a digit, or not ``size**2`` digits.
    """
    digits = "".join(text.split())
    if not digits.isdigit() or len(digits) != puzzle.size**2:
        raise LatentCotError(
            f"sudoku answer text: expected {puzzle.size ** 2} digits, got {len(digits)} characters {digits[:20]!r}"
        )
    return np.array([int(d) for d in digits], dtype=np.int64).reshape(puzzle.size, puzzle.size)


def check(puzzle: Puzzle, grid: np.ndarray) -> bool:
    """True when ``grid`` is a full valid Sudoku (every row, column and box holds ``1..size``
    once) that keeps every clue of the puzzle."""
    grid = np.asarray(grid)
    size, box = puzzle.size, math.isqrt(puzzle.size)
    if grid.shape != (size, size):
        return False
    boxes = grid.reshape(box, box, box, box).transpose(0, 2, 1, 3).reshape(size, size)
    want = set(range(1, size + 1))
    units = list(grid) + list(grid.T) + list(boxes)
    given = puzzle.clues > 0
    return all(set(unit.tolist()) == want for unit in units) and bool((grid[given] == puzzle.clues[given]).all())


def parse(image: np.ndarray) -> np.ndarray:
    """Read the digit grid from a (possibly noisy) Sudoku image by nearest-template matching.

    Each cell interior's ink (``1 - (R+G)/2``: black and blue ink alike) is compared with the
    empty template and the glyphs of ``1..size`` in squared distance; the nearest wins.

    Args:
        image: ``(3, 8*size, 8*size)`` float image in [0, 1], size 4 or 9.

    Returns:
        ``(size, size)`` int grid, 0 where the cell is read as empty.
    """
    size = render.check_image(image, BLOCK, "sudoku")
    if size not in (4, 9):
        raise LatentCotError(f"sudoku image: {size} cells per side, expected 4 or 9")
    cells = render.cell_interiors(np.asarray(image, dtype=np.float32), BLOCK)  # (3, n, n, 7, 7)
    ink = 1.0 - (cells[0] + cells[1]) / 2
    templates = glyph_templates(size)  # (size + 1, 7, 7)
    dist = ((ink[:, :, None] - templates[None, None]) ** 2).sum(axis=(3, 4))  # (n, n, size + 1)
    return dist.argmin(axis=-1).astype(np.int64)
