"""Generators: determinism, checkers that prove every answer (and reject corrupted ones), and
agreement with the real validation files on measurable statistics."""

import dataclasses

import pytest

from latentcot.data.formats import read_examples
from latentcot.data.generators import CHECKERS, REAL_FILES, generate
from latentcot.data.generators.multiplication import format_multiplication, operands
from latentcot.data.paths import real_file
from latentcot.data.stats import answer_format, dataset_stats, vocabulary
from latentcot.errors import LatentCotError

TASKS = {"multiplication": {"digits": 4}, "prosqa": {}, "prontoqa": {}, "arithmetic": {}, "chain": {}}


def _real(task, **options):
    rel = REAL_FILES[task].format(**options)
    path = real_file(rel)
    if path is None:
        pytest.skip(f"real data file {rel} not in the data directory (set LATENTCOT_DATA_DIR)")
    return read_examples(path)


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_records_other_seed_other_records(task):
    a = generate(task, 50, seed=3, **TASKS[task])
    assert a == generate(task, 50, seed=3, **TASKS[task])
    assert a != generate(task, 50, seed=4, **TASKS[task])


@pytest.mark.parametrize("task", TASKS)
def test_checker_proves_every_generated_answer(task):
    examples = generate(task, 500, seed=0, **TASKS[task])
    assert all(CHECKERS[task](ex) for ex in examples)


@pytest.mark.parametrize("task", TASKS)
def test_checker_rejects_corrupted_records(task):
    examples = generate(task, 100, seed=1, **TASKS[task])
    wrong_answer = {"True": "False", "False": "True"}
    for ex in examples:
        if task == "prontoqa":
            bad = wrong_answer[ex.answer]
        elif task == "prosqa":
            other = ex.meta["idx_to_symbol"][ex.meta["neg_target"]]
            bad = f"{ex.question.split('Is ')[-1].split()[0]} is a {other}."
        else:
            bad = ex.answer[:-1] + str((int(ex.answer[-1]) + 1) % 10)
        assert not CHECKERS[task](dataclasses.replace(ex, answer=bad))
        if len(ex.steps) > 1 and task != "prontoqa":
            assert not CHECKERS[task](dataclasses.replace(ex, steps=ex.steps[:-2] + ex.steps[-1:]))


@pytest.mark.parametrize("task", ["prosqa", "prontoqa"])
def test_checker_accepts_every_real_record(task):
    real = _real(task)
    assert all(CHECKERS[task](ex) for ex in real)


@pytest.mark.parametrize("digits", [4, 5, 7, 9, 11])
def test_multiplication_reproduces_real_lines_exactly(digits):
    real = _real("multiplication", digits=digits)
    assert all(format_multiplication(*operands(ex)) == ex for ex in real)
    assert all(CHECKERS["multiplication"](ex) for ex in real)


def _compare(real, generated):
    return dataset_stats(real), dataset_stats(generated), vocabulary(real), vocabulary(generated)


@pytest.mark.parametrize("digits", [4, 7])
def test_multiplication_statistics_match_real(digits):
    r, g, vr, vg = _compare(_real("multiplication", digits=digits), generate("multiplication", 1000, 0, digits=digits))
    assert g["steps"]["histogram"] == {str(digits): 1000} and r["steps"]["histogram"] == {str(digits): 1000}
    assert vg == vr  # the ten digits, '*', nothing else
    for key in ("question_words", "answer_words"):
        assert g[key] == r[key]
    assert abs(g["step_words"]["mean"] - r["step_words"]["mean"]) <= 0.05 * r["step_words"]["mean"]
    assert g["answer_formats"] == r["answer_formats"] == {"digit sequence": 1.0}


def test_prosqa_statistics_match_real():
    """Tolerances: mean steps within 0.15, each step-count share within 6 points, question
    length within 10%, vocabulary: every real word is generated and nothing else."""
    r, g, vr, vg = _compare(_real("prosqa"), generate("prosqa", 2000, 0))
    assert abs(g["steps"]["mean"] - r["steps"]["mean"]) <= 0.15
    assert (g["steps"]["min"], g["steps"]["max"]) == (r["steps"]["min"], r["steps"]["max"]) == (3, 6)
    for k in set(r["steps"]["histogram"]) | set(g["steps"]["histogram"]):
        share = [s["steps"]["histogram"].get(k, 0) / s["records"] for s in (r, g)]
        assert abs(share[0] - share[1]) <= 0.06, k
    assert abs(g["question_words"]["mean"] - r["question_words"]["mean"]) <= 0.10 * r["question_words"]["mean"]
    assert vg == vr
    assert g["answer_formats"] == r["answer_formats"] == {"sentence": 1.0}
    real_nodes = [len(ex.meta["idx_to_symbol"]) for ex in _real("prosqa")]
    gen_nodes = [len(ex.meta["idx_to_symbol"]) for ex in generate("prosqa", 500, 0)]
    assert abs(sum(gen_nodes) / 500 - sum(real_nodes) / len(real_nodes)) <= 1.5


def test_prontoqa_statistics_match_real():
    """Tolerances: exactly 6 steps, question length within 3%, vocabulary overlap >= 95% of the
    real words and nothing outside them, both answers between 40% and 60%."""
    r, g, vr, vg = _compare(_real("prontoqa"), generate("prontoqa", 2000, 0))
    assert g["steps"]["histogram"] == {"6": 2000}
    assert abs(g["question_words"]["mean"] - r["question_words"]["mean"]) <= 0.03 * r["question_words"]["mean"]
    assert len(vr & vg) >= 0.95 * len(vr) and vg <= vr
    assert g["answer_formats"] == r["answer_formats"] == {"true/false": 1.0}
    share_true = sum(ex.answer == "True" for ex in generate("prontoqa", 2000, 0)) / 2000
    assert 0.4 <= share_true <= 0.6


def test_arithmetic_looks_like_gsm8k_aug():
    """Same step syntax and integer answers as GSM8k-Aug; 1-4 steps (the real file has 0-8, mean 3.15)."""
    real = _real("arithmetic")
    generated = generate("arithmetic", 1000, 0)
    assert {answer_format(ex.answer) for ex in generated} == {answer_format(ex.answer) for ex in real} == {"integer"}
    assert all(s.startswith("<<") and s.endswith(">>") and "=" in s for ex in generated for s in ex.steps)
    g = dataset_stats(generated)
    assert (g["steps"]["min"], g["steps"]["max"]) == (1, 4) and 2.0 <= g["steps"]["mean"] <= 3.0


def test_unknown_task_and_option_are_clear_errors():
    with pytest.raises(LatentCotError, match="unknown task 'sudoku'"):
        generate("sudoku", 1, 0)
    with pytest.raises(LatentCotError, match="unknown option 'digits'"):
        generate("prosqa", 1, 0, digits=3)
    with pytest.raises(LatentCotError, match="digits must be at least 1"):
        generate("multiplication", 1, 0, digits=0)


def test_chain_steps_are_the_running_sums_and_round_trip_in_every_format(tmp_path):
    from latentcot.data.formats import write_examples

    examples = generate("chain", 200, seed=5, length=6, modulus=7)
    ex = examples[0]
    terms = [int(t) for t in ex.question.removesuffix(" (mod 7)").split(" + ")]
    assert len(terms) == 6 and len(ex.steps) == 5
    assert ex.answer == str(sum(terms) % 7)
    assert ex.steps[0] == f"{terms[0]} + {terms[1]} = {(terms[0] + terms[1]) % 7}."
    for suffix in (".txt", ".json", ".jsonl"):
        path = tmp_path / f"chain{suffix}"
        write_examples(examples, path)
        assert [(e.question, e.steps, e.answer) for e in read_examples(path)] == [
            (e.question, e.steps, e.answer) for e in examples
        ]


def test_chain_stride_groups_additions_and_keeps_questions_and_answers():
    plain = generate("chain", 50, seed=3, length=8)
    grouped = generate("chain", 50, seed=3, length=8, stride=2)
    assert [(e.question, e.answer) for e in grouped] == [(e.question, e.answer) for e in plain]
    for p, g in zip(plain, grouped):
        # steps 2, 4, 6 and 7 of the plain chain end on the values of the grouped one's four steps
        assert len(g.steps) == 4 and g.steps[-1].count("+") == 1
        assert [s.split("= ")[1] for s in g.steps] == [plain_step.split("= ")[1] for plain_step in
                                                        (p.steps[1], p.steps[3], p.steps[5], p.steps[6])]
        assert g.steps[0] == " + ".join(g.question.split(" (")[0].split(" + ")[:3]) + " = " + p.steps[1].split("= ")[1]
        assert CHECKERS["chain"](g) and CHECKERS["chain"](p)
    wrong = grouped[0]
    wrong.steps[1] = wrong.steps[1].replace("= ", "= 1")
    assert not CHECKERS["chain"](wrong)


def test_chain_rejects_bad_options():
    with pytest.raises(LatentCotError, match="length"):
        generate("chain", 1, 0, length=1)
    with pytest.raises(LatentCotError, match="modulus"):
        generate("chain", 1, 0, modulus=1)
    with pytest.raises(LatentCotError, match="stride"):
        generate("chain", 1, 0, stride=0)
