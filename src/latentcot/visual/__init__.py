"""latentcot.visual: visual puzzles with exactly checkable answers (:mod:`latentcot.visual.tasks`:
mazes, Sudoku) and EndoCoT (Dai et al. 2026, https://arxiv.org/abs/2603.12252)."""
