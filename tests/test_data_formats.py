"""Readers/writers: byte-exact round trips on the real files, and validation that names every problem."""

import pytest

from latentcot.data.formats import detect_format, format_examples, read_examples, write_examples
from latentcot.data.paths import real_file
from latentcot.data.record import ReasoningExample
from latentcot.data.validate import validate_file
from latentcot.errors import LatentCotError

REAL = [
    "prosqa/prosqa_valid.json",
    "prontoqa/prontoqa_valid.json",
    "gsm8k_aug/gsm_valid.json",
    "gsm8k_aug/valid.txt",
    "gsm8k_aug/train_no_aug.txt",
    *(f"multiplication/stepwise/{n}_by_{n}_mult/valid.txt" for n in (4, 5, 7, 9, 11)),
    *(f"multiplication/icot_kd/{n}_by_{n}_mult/valid.txt" for n in (4, 5)),
]


def _real(rel):
    path = real_file(rel)
    if path is None:
        pytest.skip(f"real data file {rel} not in the data directory (set LATENTCOT_DATA_DIR)")
    return path


@pytest.mark.parametrize("rel", REAL)
def test_real_file_round_trip_is_byte_exact(rel, tmp_path):
    path = _real(rel)
    examples = read_examples(path)
    out = tmp_path / path.name
    write_examples(examples, out)
    assert out.read_bytes() == path.read_bytes()
    # through JSONL and back loses nothing either
    write_examples(examples, tmp_path / "x.jsonl")
    again = read_examples(tmp_path / "x.jsonl")
    assert again == examples
    assert format_examples(again, detect_format(path)).encode() == path.read_bytes()


def test_real_steps_are_split_as_documented():
    gsm = read_examples(_real("gsm8k_aug/valid.txt"))
    assert gsm[0].steps == ["<<4-2=2>>", "<<2/.5=4>>", "<<12/4=3>>", "<<100*3=300>>"]
    mult = read_examples(_real("multiplication/stepwise/4_by_4_mult/valid.txt"))
    assert mult[0].steps[1] == "0 0 6 4 9 0 ( 5 5 1 1 1 1 )" and len(mult[0].steps) == 4
    prosqa = read_examples(_real("prosqa/prosqa_valid.json"))
    assert list(prosqa[0].meta)[:5] == ["idx_to_symbol", "edges", "root", "target", "neg_target"]


def test_icot_text_converts_to_coconut_json_as_coconut_does():
    """valid.txt and gsm_valid.json hold the same records, except that Coconut's split gives [""]
    where a line has no steps, where we give []."""
    text = read_examples(_real("gsm8k_aug/valid.txt"))
    coconut = read_examples(_real("gsm8k_aug/gsm_valid.json"))
    differ = [i for i, (a, b) in enumerate(zip(text, coconut)) if a != b]
    assert len(text) == len(coconut) == 500
    assert all(text[i].steps == [] and coconut[i].steps == [""] for i in differ) and len(differ) == 6


def test_detect_format_from_content(tmp_path):
    for fmt, text in {"json": '[{"question": "q", "steps": [], "answer": "a"}]',
                      "jsonl": '{"question": "q", "steps": [], "answer": "a", "meta": {}}\n',
                      "icot": "q||s #### a\n"}.items():
        path = tmp_path / f"data_{fmt}.dat"
        path.write_text(text)
        assert detect_format(path) == fmt
        assert read_examples(path) == [ReasoningExample("q", ["s"] if fmt == "icot" else [], "a")]


def test_icot_multiplication_separator_and_odd_steps_round_trip(tmp_path):
    examples = [ReasoningExample("1 2 * 3 4", ["3 6 0", "0 4 8 0"], "3 0 9 0"),
                ReasoningExample("q", ["Step one.", "Then 2 + 3 = 5."], "5"),
                ReasoningExample("q", ["1 +2", "3"], "x", {"_step_separator": " + "})]
    write_examples(examples, tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_text().splitlines()[0] == "1 2 * 3 4||3 6 0 + 0 4 8 0 #### 3 0 9 0"
    assert read_examples(tmp_path / "a.txt") == examples


def test_validation_reports_every_problem_with_file_record_field(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("good question||<<1+1=2>> #### 2\nno separator here #### 1\nq||steps without answer\n"
                   "||<<1+1=2>> #### 2\nq||<<1+1=2>> #### \n")
    problems = validate_file(bad)
    assert [(p.record, p.field) for p in problems] == [(2, "line"), (3, "line"), (4, "question"), (5, "answer")]
    assert all(p.file == str(bad) for p in problems)
    with pytest.raises(LatentCotError, match=r"bad\.txt: line 2: field 'line': malformed: no '\|\|'.*3 more"):
        read_examples(bad)


def test_validation_of_json_records_and_graph_fields(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": "q", "steps": ["a"], "answer": "x"}, {"steps": "a", "answer": 3},'
                   ' {"question": "q", "steps": ["a", 2], "answer": "", "idx_to_symbol": ["A", "b"],'
                   ' "edges": [[0, 1], [0, 5]], "root": 0, "target": 7}]')
    found = {(p.record, p.field) for p in validate_file(bad)}
    assert found == {(2, "question"), (2, "steps"), (2, "answer"), (3, "steps[1]"), (3, "answer"),
                     (3, "edges[1]"), (3, "target")}
    with pytest.raises(LatentCotError, match=r"bad\.json: record 2: field 'question': missing"):
        read_examples(bad)


def test_invalid_json_names_line_and_column(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": "q",\n  "steps": [], "answer": }]')
    (problem,) = validate_file(bad)
    assert problem.field == "json" and "line 2 col" in problem.message
    lines = tmp_path / "bad.jsonl"
    lines.write_text('{"question": "q", "steps": [], "answer": "a", "meta": {}}\n{oops\n'
                     '{"question": "q", "steps": [], "answer": "a", "extra": 1}\n')
    assert [(p.record, p.field) for p in validate_file(lines)] == [(2, "json"), (3, "extra")]


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(LatentCotError, match="file not found"):
        read_examples(tmp_path / "nope.json")
    with pytest.raises(LatentCotError, match="output format"):
        write_examples([], tmp_path / "x.csv")
