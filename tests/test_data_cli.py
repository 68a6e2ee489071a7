"""`latentcot data` in-process: generate, validate (all problems, exit code), convert, stats, download."""

import json

from latentcot.cli import main
from latentcot.data.formats import read_examples
from latentcot.data.generators import CHECKERS


def test_generate_each_format_then_validate(tmp_path, capsys):
    for task, ext, flags in [("multiplication", "txt", ["--digits", "5"]), ("prosqa", "json", []),
                             ("prontoqa", "jsonl", []), ("arithmetic", "txt", ["--max-steps", "2"]),
                             ("chain", "jsonl", ["--length", "6", "--stride", "2"])]:
        out = tmp_path / f"{task}.{ext}"
        assert main(["data", "generate", task, "--n", "30", "--seed", "1", "--out", str(out), *flags]) == 0
        examples = read_examples(out)
        assert len(examples) == 30 and all(CHECKERS[task](ex) for ex in examples)
        assert main(["data", "validate", str(out)]) == 0
    assert read_examples(tmp_path / "multiplication.txt")[0].question.count(" ") == 2 * 5
    assert max(len(ex.steps) for ex in read_examples(tmp_path / "arithmetic.txt")) <= 2
    assert [s.count("+") for s in read_examples(tmp_path / "chain.jsonl")[0].steps] == [2, 2, 1]


def test_validate_reports_all_problems_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "bad.txt"
    bad.write_text("q||<<1+1=2>> #### 2\nbroken line\nq||x #### \n")
    good = tmp_path / "good.txt"
    good.write_text("q||<<1+1=2>> #### 2\n")
    assert main(["data", "validate", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}: line 2: field 'line'" in out and f"{bad}: line 3: field 'answer'" in out
    assert f"{good}: ok" in out


def test_convert_round_trip(tmp_path):
    src = tmp_path / "a.json"
    assert main(["data", "generate", "prosqa", "--n", "10", "--out", str(src)]) == 0
    assert main(["data", "convert", str(src), str(tmp_path / "b.jsonl")]) == 0
    assert main(["data", "convert", str(tmp_path / "b.jsonl"), str(tmp_path / "c.json")]) == 0
    assert (tmp_path / "c.json").read_bytes() == src.read_bytes()


def test_stats_json(tmp_path, capsys):
    src = tmp_path / "m.txt"
    main(["data", "generate", "multiplication", "--n", "20", "--digits", "3", "--out", str(src)])
    capsys.readouterr()
    assert main(["data", "stats", str(src), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["records"] == 20 and stats["steps"]["histogram"] == {"3": 20}


def test_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing.json")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["data", "generate", "multiplication", "--n", "1", "--digits", "0", "--out", str(tmp_path / "x.txt")]) == 2


def test_download_fails_fast_and_clearly_offline(tmp_path, capsys, monkeypatch):
    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["data", "download", "--dest", str(tmp_path), "--timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot download https://raw.githubusercontent.com/" in err and "offline" in err
    assert not any(tmp_path.rglob("*.json"))
