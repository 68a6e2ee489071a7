"""The language-model recipe and CLI end to end, for a few steps on a micro model."""

import json

import pytest
import torch

from latentcot.cli import main as cli
from latentcot.config import load_config
from latentcot.data.formats import write_examples
from latentcot.data.generators import generate
from latentcot.errors import LatentCotError
from latentcot.train.recipe import RunConfig, load_trained
from latentcot.train.recipe import main as run

pytestmark = pytest.mark.recipe
torch.set_num_threads(1)

TINY = [
    "data.task=multiplication",
    "data.generator={digits: 2}",
    "data.train_size=48",
    "data.eval_size=8",
    "model.name_or_path=micro",
    "train.batch_size=8",
    "train.log_every=2",
    "eval.max_new_tokens=12",
]


def coconut(out, epochs=4):
    return load_config(RunConfig, None, [*TINY, f"out_dir={out}", f"train.epochs={epochs}",
                                         "method={name: coconut, max_latent_stage: 2, epochs_per_stage: 1}"])


def test_train_writes_a_self_describing_run_and_reloads_identically(tmp_path):
    cfg = coconut(tmp_path / "run")
    result = run(cfg)
    out = tmp_path / "run"
    assert (out / "config.yaml").is_file() and (out / "metrics.jsonl").is_file() and any((out / "tb").iterdir())
    summary = json.loads((out / "eval.json").read_text())
    assert summary["n"] == 8 and summary["method"] == "coconut"
    assert result["train"]["stage"] == 3  # the all-latent stage after stages 0, 1, 2
    method, again = load_trained(out)
    assert again == cfg
    questions = [p["question"] for p in summary["predictions"]]
    assert method.reason(questions, max_new_tokens=12).answers == [p["predicted"] for p in summary["predictions"]]


def test_cli_train_eval_generate(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(["train", *TINY, f"out_dir={out}", "train.epochs=1", "method={name: cot}"]) == 0
    data = tmp_path / "held.txt"
    write_examples(generate("multiplication", 5, 9, digits=2), data)
    assert cli(["eval", str(out), "--data", str(data), "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["n"] == 5
    assert cli(["generate", str(out), "1 2 * 3 4"]) == 0
    assert "answer:" in capsys.readouterr().out


def test_generate_shows_each_latent(tmp_path, capsys):
    run(coconut(tmp_path / "run", epochs=1))
    assert cli(["generate", str(tmp_path / "run"), "1 2 * 3 4", "--n-latents", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("latent")] == ["latent 0", "latent 1", "latent 2"]


def test_resume_continues_to_the_same_weights(tmp_path):
    full = coconut(tmp_path / "full", epochs=3)
    run(full)
    # crash in the second epoch (a checkpoint was written at step 6), then resume into the same folder
    short = coconut(tmp_path / "part", epochs=3)
    short.train.save_every = 6
    with pytest.raises(RuntimeError):
        _crash_after(short, steps=8)
    resumed = coconut(tmp_path / "part", epochs=3)
    resumed.train.save_every = 6
    run(resumed, resume=True)
    a, _ = load_trained(tmp_path / "full")
    b, _ = load_trained(tmp_path / "part")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def _crash_after(cfg, steps):
    """Run the recipe but make the method's forward raise after ``steps`` micro-batches."""
    from latentcot.methods.coconut import Coconut

    original, calls = Coconut.forward, {"n": 0}

    def forward(self, batch):
        calls["n"] += 1
        if calls["n"] > steps:
            raise RuntimeError("simulated crash")
        return original(self, batch)

    Coconut.forward = forward
    try:
        run(cfg)
    finally:
        Coconut.forward = original


def test_missing_eval_file_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTCOT_DATA_DIR", str(tmp_path))
    cfg = load_config(RunConfig, None, [*TINY, f"out_dir={tmp_path}/r", "data.eval_file=nope/valid.json"])
    with pytest.raises(LatentCotError, match="data.eval_file 'nope/valid.json': not found here nor in the data directory"):
        run(cfg)


def test_a_data_option_resolves_under_the_data_directory(tmp_path, monkeypatch):
    """`eval --data sub/file.jsonl` finds the file in the data directory, as data.eval_file does,
    and an absent one is named with the option that gave it."""
    from latentcot.train.recipe import read_run_examples
    from latentcot.train.run_config import DataConfig

    (tmp_path / "sub").mkdir()
    records = generate("chain", 5, seed=3)
    write_examples(records, tmp_path / "sub" / "few.jsonl")
    monkeypatch.setenv("LATENTCOT_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path / "sub")  # a relative path that exists here is read as is
    assert [ex.question for ex in read_run_examples("few.jsonl", DataConfig())] == [ex.question for ex in records]
    monkeypatch.chdir(tmp_path.parent)
    assert [ex.answer for ex in read_run_examples("sub/few.jsonl", DataConfig())] == [ex.answer for ex in records]
    with pytest.raises(LatentCotError, match="--data 'sub/none.jsonl': not found here nor in the data directory"):
        read_run_examples("sub/none.jsonl", DataConfig())


def test_cli_takes_overrides_after_a_flag(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train: {lr: 0.001}\n")
    # `train cfg.yaml --resume train.lr=...`: the overrides after the flag are not dropped or refused
    assert cli(["train", str(recipe), "--dry-run", "train.lr=0.25", "seed=7"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["train"]["lr"] == 0.25 and resolved["seed"] == 7
    assert cli(["train", "--dry-run", "train.lr=0.5"]) == 0  # no recipe: the first word is an override
    assert json.loads(capsys.readouterr().out)["train"]["lr"] == 0.5
    with pytest.raises(SystemExit):  # a word that is not an override is still refused
        cli(["train", str(recipe), "--dry-run", "stray"])
    assert "unrecognized arguments: stray" in capsys.readouterr().err


def test_cli_reports_a_bad_override_in_one_line(capsys):
    assert cli(["train", "train.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'lrr' (did you mean 'lr'?)" in err and err.count("\n") == 1


def test_quick_demo_runs_end_to_end(tmp_path, capsys):
    from latentcot.demo import run_demo

    summaries = run_demo(tmp_path / "demo", quick=True)
    assert set(summaries) == {"nocot", "cot", "simcot"}  # Coconut only with coconut=True (--coconut)
    out = capsys.readouterr().out
    assert "| nocot |" in out and "| cot |" in out and "| simcot |" in out and "| coconut |" not in out
    assert "coconut: not run" in out
    assert "latent 0:" in out and "decoder writes:" in out


def test_report_covers_every_run(tmp_path):
    run(coconut(tmp_path / "a", epochs=1))
    out = tmp_path / "report.html"
    assert cli(["report", str(tmp_path / "a"), "--out", str(out)]) == 0
    page = out.read_text()
    assert "var uPlot=" in page and '"method":"coconut"' in page and "config.yaml" in page  # one file, offline
    assert cli(["report", str(tmp_path), "--out", str(out)]) == 2  # not a run folder: one-line error


def test_init_from_starts_coconut_from_a_trained_cot_run_at_stage_1(tmp_path):
    cot = load_config(RunConfig, None, [*TINY, f"out_dir={tmp_path / 'cot'}", "train.epochs=1", "method={name: cot}"])
    run(cot)
    trained, _ = load_trained(tmp_path / "cot")
    cfg = load_config(RunConfig, None, [*TINY, f"out_dir={tmp_path / 'coconut'}", f"model.init_from={tmp_path / 'cot'}",
                                        "method={name: coconut, max_latent_stage: 2, epochs_per_stage: 1, start_stage: 1}"])
    from latentcot.train.recipe import build

    method = build(cfg, [], [])
    assert method.stage_for_epoch(0) == 1 and method.stage_for_epoch(5) == 3
    ours, theirs = method.backbone.state_dict(), trained.backbone.state_dict()
    for key, value in theirs.items():  # the same weights; the vocabulary grew by the latent tokens
        assert torch.equal(ours[key][: value.shape[0]], value), key
    assert method.tokenizer.get_vocab().items() >= trained.tokenizer.get_vocab().items()
    with pytest.raises(LatentCotError, match="start_stage"):
        load_config(RunConfig, None, [*TINY, "method={name: coconut, max_latent_stage: 2, start_stage: 4}"])
    with pytest.raises(LatentCotError, match="no checkpoint|not a latentcot checkpoint"):
        build(load_config(RunConfig, None, [*TINY, f"model.init_from={tmp_path}", "method={name: cot}"]), [], [])
    # dropout is a preset's; a warm start keeps its own config's rate, and saying otherwise is refused
    with pytest.raises(LatentCotError, match="model.dropout=0.1: only a preset built from scratch"):
        build(load_config(RunConfig, None, [*TINY, f"model.init_from={tmp_path / 'cot'}", "model.dropout=0.1",
                                            "method={name: coconut, max_latent_stage: 2}"]), [], [])


def test_demo_takes_a_seed_and_warm_starts_the_latent_methods_from_its_cot_run(tmp_path):
    from latentcot.demo import METHODS, demo_config

    for method in METHODS:
        cfg = demo_config(method, tmp_path, quick=False, seed=2)
        assert cfg.seed == 2 and cfg.train.seed == 2
        warm = method in ("coconut", "simcot")
        assert cfg.model.init_from == (str(tmp_path / "cot") if warm else "")
        if warm:
            base = cfg.method if method == "coconut" else cfg.method["base_options"]
            assert base["start_stage"] == 1  # stage 0 is the CoT run it starts from
