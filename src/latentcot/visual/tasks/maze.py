"""Maze puzzles for EndoCoT (Dai et al. 2026, https://arxiv.org/abs/2603.12252), at tiny scale.

A maze is a *perfect* maze on ``size x size`` cells (a spanning tree of the grid: exactly one
simple path between any two cells), carved by a randomized depth-first search with a numpy RNG.
The answer is the unique path from the start cell to the goal cell, as a list of ``(row, col)``
cells or as a move string (``U D L R``, e.g. ``"RRDDL"``).

Image layout (see :mod:`latentcot.visual.tasks.render`): blocks of ``BLOCK = 4`` pixels, a
1-pixel wall line on each block's top and left, a 3x3 interior per cell; ``H = W = 4 * size``
(4x4 -> 16 px, 8x8 -> 32 px, 32x32 -> 128 px). Walls black, corridors white, start interior
green, goal interior red. The solution image paints the interiors of the path's inner cells
blue and every *link* between consecutive path cells (the 3 wall-line pixels between them,
which are open corridor) blue too; ``render_partial(i)`` draws the first ``i`` moves.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import cast

import numpy as np

from latentcot.errors import LatentCotError
from latentcot.visual.tasks import render

BLOCK = 4
MOVES = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}
Cell = tuple[int, int]


@dataclass(eq=False)
class Puzzle:
    """One maze: its passages, start, goal and the (unique) solution path.

    Attributes:
        size: cells per side.
        open_east: ``(size, size)`` bool, True where cell ``(r, c)`` opens onto ``(r, c+1)``.
        open_south: ``(size, size)`` bool, True where cell ``(r, c)`` opens onto ``(r+1, c)``.
        start: start cell.
        goal: goal cell.
        solution: the path of cells from start to goal (BFS).
    """

    size: int
    open_east: np.ndarray
    open_south: np.ndarray
    start: Cell
    goal: Cell
    solution: list[Cell]

    @property
    def num_steps(self) -> int:
        """Moves in the solution (the partial images run over ``i = 0 .. num_steps``)."""
        return len(self.solution) - 1

    def is_open(self, a: Cell, b: Cell) -> bool:
        """True when ``a`` and ``b`` are grid neighbours with no wall between them."""
        (r, c), (r2, c2) = sorted((a, b))
        inside = all(0 <= v < self.size for v in (r, c, r2, c2))
        if not inside or abs(r - r2) + abs(c - c2) != 1:
            return False
        return bool(self.open_east[r, c] if r == r2 else self.open_south[r, c])

    def neighbours(self, cell: Cell) -> list[Cell]:
        """Cells reachable from ``cell`` in one move."""
        r, c = cell
        return [(r + dr, c + dc) for dr, dc in MOVES.values() if self.is_open(cell, (r + dr, c + dc))]

    def render_puzzle(self) -> np.ndarray:
        """The puzzle image ``(3, 4*size, 4*size)``: walls, start (green) and goal (red)."""
        return self.render_partial(0)

    def render_solution(self) -> np.ndarray:
        """The solution image: the puzzle with the whole path drawn in blue."""
        return self.render_partial(self.num_steps)

    def render_partial(self, i: int) -> np.ndarray:
        """The puzzle with the path drawn up to step ``i`` (``0 <= i <= num_steps``): the inner
        cells ``solution[1 .. i]`` and the links between ``solution[0 .. i]`` (stage-1 targets)."""
        image = render.blank(self.size, BLOCK)
        for r, c in zip(*np.nonzero(self.open_east[:, :-1])):
            render.paint(image, slice(r * BLOCK + 1, (r + 1) * BLOCK), slice((c + 1) * BLOCK, (c + 1) * BLOCK + 1), render.WHITE)
        for r, c in zip(*np.nonzero(self.open_south[:-1])):
            render.paint(image, slice((r + 1) * BLOCK, (r + 1) * BLOCK + 1), slice(c * BLOCK + 1, (c + 1) * BLOCK), render.WHITE)
        render.paint(image, *render.interior(*self.start, BLOCK), render.GREEN)
        render.paint(image, *render.interior(*self.goal, BLOCK), render.RED)
        for a, b in zip(self.solution[:i], self.solution[1 : i + 1]):
            render.paint(image, *_link(a, b), render.BLUE)
            if b != self.goal:
                render.paint(image, *render.interior(*b, BLOCK), render.BLUE)
        return image

    def answer_text(self) -> str:
        """The solution as a move string, e.g. ``"RRDDL"``."""
        return answer_text(self.solution)

    def step_text(self, start: int, stop: int) -> str:
        """The moves that take ``render_partial(start)`` to ``render_partial(stop)``."""
        return answer_text(self.solution[start : stop + 1])


def _link(a: Cell, b: Cell) -> tuple[slice, slice]:
    """Pixels of the wall line between neighbouring cells ``a`` and ``b``."""
    (r, c), (r2, c2) = sorted((a, b))
    if r == r2:  # b is east of a: the left wall column of b
        return slice(r * BLOCK + 1, (r + 1) * BLOCK), slice(c2 * BLOCK, c2 * BLOCK + 1)
    return slice(r2 * BLOCK, r2 * BLOCK + 1), slice(c * BLOCK + 1, (c + 1) * BLOCK)


def _carve(size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Passages of a perfect maze by randomized depth-first search (recursive backtracker)."""
    open_east = np.zeros((size, size), dtype=bool)
    open_south = np.zeros((size, size), dtype=bool)
    visited = np.zeros((size, size), dtype=bool)
    first = (int(rng.integers(size)), int(rng.integers(size)))
    visited[first] = True
    stack = [first]
    while stack:
        r, c = stack[-1]
        fresh = [(r + dr, c + dc) for dr, dc in MOVES.values()
                 if 0 <= r + dr < size and 0 <= c + dc < size and not visited[r + dr, c + dc]]
        if not fresh:
            stack.pop()
            continue
        nr, nc = fresh[int(rng.integers(len(fresh)))]
        if nr == r:
            open_east[r, min(c, nc)] = True
        else:
            open_south[min(r, nr), c] = True
        visited[nr, nc] = True
        stack.append((nr, nc))
    return open_east, open_south


def _bfs(puzzle: Puzzle, start: Cell) -> dict[Cell, Cell | None]:
    """Breadth-first search parents from ``start`` over the open passages."""
    parent: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for nxt in puzzle.neighbours(cell):
            if nxt not in parent:
                parent[nxt] = cell
                queue.append(nxt)
    return parent


def make_puzzle(size: int, rng: np.random.Generator) -> Puzzle:
    """One maze: carve, pick a random start, pick a goal at least ``size`` moves away, solve."""
    open_east, open_south = _carve(size, rng)
    start = (int(rng.integers(size)), int(rng.integers(size)))
    puzzle = Puzzle(size, open_east, open_south, start, start, [start])
    parent = _bfs(puzzle, start)
    depth = {start: 0}
    for cell, up in parent.items():  # BFS order: a parent's depth is known before its children's
        if up is not None:
            depth[cell] = depth[up] + 1
    # on an even n x n grid every cell has one at Manhattan (so maze) distance >= n
    far = sorted(cell for cell, d in depth.items() if d >= min(size, max(depth.values())))
    puzzle.goal = far[int(rng.integers(len(far)))]
    path = [puzzle.goal]
    while (up := parent[path[-1]]) is not None:
        path.append(up)
    puzzle.solution = path[::-1]
    return puzzle


def generate(n: int, size: int, seed: int) -> list[Puzzle]:
    """``n`` random mazes of ``size x size`` cells; the same seed gives the same mazes.

    Args:
        n: number of puzzles.
        size: cells per side (>= 2).
        seed: the seed.

    Returns:
        The puzzles, each with its BFS solution.
    """
    if size < 2:
        raise LatentCotError(f"maze size: need at least 2 cells per side, got {size}")
    rng = np.random.default_rng(seed)
    return [make_puzzle(size, rng) for _ in range(n)]


def answer_text(path: list[Cell]) -> str:
    """A path of cells as a move string (``U D L R``); a jump that is not one move is ``?``."""
    inverse = {v: k for k, v in MOVES.items()}
    return "".join(inverse.get((b[0] - a[0], b[1] - a[1]), "?") for a, b in zip(path, path[1:]))


def from_answer_text(puzzle: Puzzle, text: str) -> list[Cell]:
    """The path of cells that a move string walks from the puzzle's start (not yet checked).

    Raises:
        LatentCotError: a character other than U, D, L, R (spaces are ignored).
    """
    path = [puzzle.start]
    for k, move in enumerate(text.replace(" ", "")):
        if move not in MOVES:
            raise LatentCotError(f"maze answer text: move {k} is {move!r}, expected one of U D L R")
        dr, dc = MOVES[move]
        path.append((path[-1][0] + dr, path[-1][1] + dc))
    return path


def check(puzzle: Puzzle, path: list[Cell]) -> bool:
    """True when ``path`` joins start to goal, one move at a time, never through a wall and never
    revisiting a cell (in a perfect maze that is exactly the unique solution)."""
    return (
        len(path) > 0
        and tuple(path[0]) == puzzle.start
        and tuple(path[-1]) == puzzle.goal
        and len(set(map(tuple, path))) == len(path)
        and all(puzzle.is_open(cast(Cell, tuple(a)), cast(Cell, tuple(b))) for a, b in zip(path, path[1:]))
    )


def parse(image: np.ndarray) -> list[Cell]:
    """Read the drawn path back from a (possibly noisy) maze solution or partial image.

    Start = the greenest cell interior, goal = the reddest; a cell is on the path when its
    interior is blue (``B - (R+G)/2 > 0.5``, a mean over 9 pixels, so robust to noise). From the
    start the parser steps to the unvisited neighbouring path cell (or goal) whose link pixels
    are the most blue (a drawn link beats a wall line); it enters the goal only over a drawn
    link (blue and not white, so a partial path that ends beside the goal stops there), and
    stops when no neighbour is on the path. Walls are not consulted: a path drawn through a
    wall is read as drawn, and :func:`check` rejects it.

    Args:
        image: ``(3, 4n, 4n)`` float image in [0, 1].

    Returns:
        The path of cells from the start (just ``[start]`` for an empty drawing).
    """
    size = render.check_image(image, BLOCK, "maze")
    image = np.asarray(image, dtype=np.float32)
    red, green, blue = render.cell_interiors(image, BLOCK).mean(axis=(3, 4))  # each (size, size)
    start_at = np.unravel_index(np.argmax(green - (red + blue) / 2), green.shape)
    redness = red - (green + blue) / 2
    redness[start_at] = -np.inf
    goal_at = np.unravel_index(np.argmax(redness), red.shape)
    start, goal = (int(start_at[0]), int(start_at[1])), (int(goal_at[0]), int(goal_at[1]))
    on_path = blue - (red + green) / 2 > 0.5
    on_path[goal] = True
    on_path[start] = False

    path = [start]
    while path[-1] != goal:
        r, c = path[-1]
        candidates = [(r + dr, c + dc) for dr, dc in MOVES.values()]
        candidates = [cell for cell in candidates if 0 <= cell[0] < size and 0 <= cell[1] < size
                      and on_path[cell] and cell not in path]
        if not candidates:
            break
        # (3, 3) link pixels per candidate -> mean R, G, B of each link
        links = np.stack([image[:, *_link(path[-1], cell)].mean(axis=(1, 2)) for cell in candidates])
        best = int(np.argmax(links[:, 2]))  # a blue link beats a black wall
        # a drawn link is blue AND not white: this is what stops a partial path next to the goal
        if candidates[best] == goal and min(links[best, 2], 1 - links[best, :2].mean()) < 0.5:
            break
        path.append(candidates[best])
    return path
