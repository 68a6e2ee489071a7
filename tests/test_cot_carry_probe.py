"""bench/cot_carry_probe.py: the written copies of a chain step's carried sum are found and corrupted."""

import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from cot_carry_probe import carry_positions, corrupt  # noqa: E402

EQ, DOT, PLUS = 100, 101, 102
DIGITS = list(range(10))  # token id d is the digit d


def _row() -> list[int]:
    # question "3 + 4 + 5": 3 PLUS 4 PLUS 5, then steps "3 + 4 = 7." and "7 + 5 = 2."
    return [3, PLUS, 4, PLUS, 5] + [3, PLUS, 4, EQ, 7, DOT] + [7, PLUS, 5, EQ, 2, DOT]


def test_positions_name_each_steps_carry_and_result():
    row = _row()
    assert carry_positions(row, EQ, DOT) == [(-1, 9), (11, 15)]
    assert row[9] == 7 and row[11] == 7 and row[15] == 2


def test_corruption_writes_one_other_digit_into_the_named_copies_only():
    ids = torch.tensor([_row(), _row()])
    positions = [carry_positions(r, EQ, DOT) for r in ids.tolist()]
    for mode, changed in (("both", {9, 11}), ("result_only", {9}), ("a_only", {11})):
        out, wrote, true = corrupt(ids, positions, 1, mode, DIGITS, random.Random(0))
        assert true == [7, 7] and all(d != 7 for d in wrote)
        for r in range(2):
            diff = {i for i in range(ids.shape[1]) if out[r, i] != ids[r, i]}
            assert diff == changed
            assert all(int(out[r, i]) == wrote[r] for i in diff)
