"""Answer extraction per dataset family."""

import pytest

from latentcot.errors import LatentCotError
from latentcot.eval.answers import is_correct, normalise_answer


@pytest.mark.parametrize(
    "task,predicted,gold,expected",
    [
        ("prosqa", "Tom is a lempus .", "Tom is a lempus.", True),
        ("prosqa", "tom is a  lempus. extra", "Tom is a lempus.", True),
        ("prosqa", "Tom is a scrompus .", "Tom is a lempus.", False),
        ("prontoqa", "True", "True", True),
        ("prontoqa", "False .", "True", False),
        ("multiplication", "5 5 6 0 8 2 0 1", "5 5 6 0 8 2 0 1", True),
        ("multiplication", "5 5 6 0 8 2 0", "5 5 6 0 8 2 0 1", False),
        ("gsm8k", "300", "300", True),
        ("gsm8k", "1,200.0 dollars", "1200", True),
        ("gsm8k", "", "12", False),
        ("arithmetic", "-4", "-4", True),
    ],
)
def test_is_correct(task, predicted, gold, expected):
    assert is_correct(task, predicted, gold) is expected


def test_empty_gold_is_never_matched():
    assert not is_correct("gsm8k", "", "")


def test_unknown_task_is_named():
    with pytest.raises(LatentCotError, match="unknown task 'chess'"):
        normalise_answer("chess", "e4")
