"""Kill -9 during training and checkpoint writes, resume, same final weights (slow: ~1 min;
`pytest -m slow tests/test_kill_resume.py`; the 20-kill version is `python bench/kill_resume.py`)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_and_resumed_run_ends_with_identical_weights(tmp_path):
    from kill_resume import main

    result = main(["--kills", "4", "--during-write", "2", "--steps", "30", "--work", str(tmp_path / "work"),
                   "--out", str(tmp_path / "kill_resume.json")])
    assert result["kills"] == 4 and result["kills_during_checkpoint_write"] >= 1
    assert result["final_weights_bit_identical"] and result["metrics_each_step_once"]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_and_resumed_endocot_run_ends_with_identical_weights(tmp_path):
    from kill_resume import main

    result = main(["--model", "endocot", "--kills", "3", "--during-write", "1", "--steps", "24",
                   "--work", str(tmp_path / "work"), "--out", str(tmp_path / "kill_resume.json")])
    assert result["model"] == "endocot" and result["kills"] == 3
    assert result["final_weights_bit_identical"] and result["metrics_each_step_once"]
