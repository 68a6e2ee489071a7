"""Visual puzzles with exactly checkable answers (EndoCoT, https://arxiv.org/abs/2603.12252).

Each task module offers the same small interface: ``generate(n, size, seed) -> list[Puzzle]``;
a ``Puzzle`` with ``render_puzzle()``, ``render_solution()``, ``render_partial(i)``,
``num_steps``, ``solution`` and ``answer_text()``; and module functions ``parse(image)``
(solution image -> symbolic answer), ``check(puzzle, answer)``, ``answer_text(answer)`` and
``from_answer_text(puzzle, text)``. Images are ``(3, H, W)`` float32 in [0, 1].
"""

from types import ModuleType

from latentcot.visual.tasks import maze, render, sudoku

# task name -> module implementing the interface above
TASKS: dict[str, ModuleType] = {"maze": maze, "sudoku": sudoku}


def parse_accuracy(name: str, size: int, sigma: float, blur: float = 0.0, n: int = 200, seed: int = 123) -> float:
    """Fraction of ``n`` solution images still parsed and checked as solved after
    :func:`render.corrupt` (blur, then Gaussian noise ``sigma``): the parser's noise tolerance.

    Args:
        name: a key of :data:`TASKS`.
        size: puzzle size.
        sigma: noise std.
        blur: blur std in pixels.
        n: number of puzzles.
        seed: generator seed (image ``k`` is corrupted with seed ``k``).

    Returns:
        The solved fraction in [0, 1].
    """
    task = TASKS[name]
    puzzles = task.generate(n, size, seed)
    solved = sum(
        bool(task.check(p, task.parse(render.corrupt(p.render_solution(), sigma, blur, seed=k))))
        for k, p in enumerate(puzzles)
    )
    return solved / n
