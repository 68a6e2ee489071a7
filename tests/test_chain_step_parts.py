"""bench/chain_step_parts.py: a decoded running-sum step split into its parts and counted per group."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from chain_step_parts import parts, tally  # noqa: E402


def test_a_step_splits_into_its_three_numbers_and_anything_else_is_none():
    assert parts("9 + 4 = 3.") == (9, 4, 3)
    assert parts(" 12 + 7 = 19 ") == (12, 7, 19)
    assert parts("### 3") is None
    assert parts("9 + = 3.") is None


def test_tally_tells_a_lost_carried_sum_from_a_lost_place():
    targets = [["1 + 2 = 3.", "3 + 4 = 7.", "### 7"]] * 2
    decoded = [
        ["1 + 2 = 3.", "8 + 4 = 2.", "### 7"],  # group 2: the carried sum's parity lost (8 = 3 + 5), the next number kept
        ["1 + 2 = 3.", "3 + 5 = 9.", "x"],  # group 2: the next number wrong, the sum kept, 3 + 5 != 9
    ]
    rows = tally(decoded, targets)
    assert [r["group"] for r in rows] == [1, 2]  # the answer group has no step to split
    first, second = rows
    assert first == pytest.approx({"group": 1, "n": 2, "well_formed": 1.0, "carried_sum": 1.0, "carried_mod2": 1.0,
                                   "carried_mod5": 1.0, "next_number": 1.0, "consistent": 1.0, "result": 1.0,
                                   "exact": 1.0})
    assert second["carried_sum"] == 0.5 and second["next_number"] == 0.5
    assert second["carried_mod5"] == 1.0 and second["carried_mod2"] == 0.5  # 8 is 3 mod 5, not mod 2
    assert second["consistent"] == 0.5  # 8 + 4 = 2 is (mod 10), 3 + 5 = 9 is not
    assert second["result"] == 0.0 and second["exact"] == 0.0
