"""Visual puzzles with exactly checkable answers (EndoCoT, https://arxiv.org/abs/2603.12252).

Each task module offers the same small interface: ``generate(n, size, seed) -> list[Puzzle]``;
a ``Puzzle`` with ``render_puzzle()``, ``render_solution()``, ``render_partial(i)``,
``num_steps``, ``solution`` and ``answer_text()``; and module functions ``parse(image)``
(solution image -> symbolic answer), ``check(puzzle, answer)``, ``answer_text(answer)`` and
``from_answer_text(puzzle, text)``. Images are ``(3, H, W)`` float32 in [0, 1].
"""

from types import ModuleType

from latentcot.visual.tasks import maze, sudoku

# task name -> module implementing the interface above
TASKS: dict[str, ModuleType] = {"maze": maze, "sudoku": sudoku}
