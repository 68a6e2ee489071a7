"""Issue 15's bad inputs, one by one: odd paths, bad records, conversions that cannot read back,
bad configs, non-finite losses, mixed runs, repeated metrics and corrupt checkpoints. Each gives a
one-line LatentCotError naming the file (record, field) or key. The random versions are in
tests/test_fuzz.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from test_trainer import TinyMethod, counting_examples, make_cfg, read_metrics

from latentcot.cli import main as cli
from latentcot.config import load_config
from latentcot.data.formats import read_examples, write_examples
from latentcot.data.record import ReasoningExample
from latentcot.data.validate import validate_file
from latentcot.errors import LatentCotError
from latentcot.train import checkpoint as ckpt
from latentcot.train.recipe import RunConfig, check_paths
from latentcot.train.trainer import Trainer

torch.set_num_threads(1)
RECORD = '{"question": "q", "steps": ["s"], "answer": "a"'


def one_line_error(fn, *match: str) -> str:
    with pytest.raises(LatentCotError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    for part in match:
        assert part in message, (part, message)
    return message


# --- data files ------------------------------------------------------------------------------


def test_odd_paths_are_refused_without_opening_them(tmp_path):
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "loop1.json").symlink_to(tmp_path / "loop2.json")
    (tmp_path / "loop2.json").symlink_to(tmp_path / "loop1.json")
    os.mkfifo(tmp_path / "fifo.txt")  # opening it for reading would block forever
    cases = {
        tmp_path / "dir.json": "is a directory",
        tmp_path / "loop1.json": "cannot read",
        tmp_path / "fifo.txt": "not a regular file",
        Path("/dev/null"): "not a regular file",
        tmp_path / ("x" * 300 + ".txt"): "cannot read",
        tmp_path / "missing.jsonl": "not found",
    }
    for path, words in cases.items():
        one_line_error(lambda p=path: read_examples(p), str(path)[:50], words)
        assert cli(["data", "validate", str(path)]) == 2


@pytest.mark.parametrize("name, text, where", [
    ("cut.txt", "q||<<1+1=2>> #### 2\nq||<<1+1=2>> #### 1", "line 2: field 'line': no newline at the end"),
    ("empty.txt", "", "field 'file': empty"),
    ("blank.jsonl", "\n \n", "field 'file': empty"),
    ("empty.json", "[]", "empty list"),
    ("bom.txt", "\ufeffq||s #### a\n", "byte-order mark"),
    ("cr.txt", "q||s #### a\r\n", "line 1: field 'line': holds a carriage return"),
    ("blank_step.txt", "1 * 2||2 +  + 3 #### 2\n", "line 1: field 'steps[1]': empty or blank step"),
    ("blank_step.json", '[{"question": "q", "steps": ["a", " "], "answer": "a"}]', "record 1: field 'steps[1]'"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("deep_meta.json", f'[{RECORD}, "x": {"[" * 40}{"]" * 40}}}]', "nested deeper than 16"),
    ("huge.json", f'[{RECORD}, "x": {"9" * 5000}}}]', "too large"),
    ("inf.json", f'[{RECORD}, "x": 1e999}}]', "too large"),
    ("nan.json", f'[{RECORD}, "x": NaN}}]', "NaN is not valid JSON"),
    ("dup.json", f'[{RECORD}, "answer": "b"}}]', "duplicate key 'answer'"),
    ("surrogate.json", '[{"question": "q\\ud800", "steps": [], "answer": "a"}]', "field 'question': holds a lone"),
    ("surrogate_step.jsonl", '{"question": "q", "steps": ["\\udfff"], "answer": "a"}\n', "field 'steps[0]'"),
    ("key.json", f'[{RECORD}, "_key_order": ["answer"]}}]', "field '_key_order': fields starting with '_'"),
    ("key.jsonl", f'{RECORD}, "meta": {{"_step_separator": "x"}}}}\n', "field 'meta._step_separator'"),
    ("key2.jsonl", f'{RECORD}, "meta": {{"_other": 1}}}}\n', "field 'meta._other'"),
    ("order.jsonl", f'{RECORD}, "meta": {{"_key_order": ["answer"]}}}}\n', "must list exactly"),
    ("clash.jsonl", f'{RECORD}, "meta": {{"question": "other"}}}}\n', "is a record field"),
    ("edges.json", f'[{RECORD}, "idx_to_symbol": ["A", "B"], "edges": [[0, 2]]}}]', "field 'edges[0]'"),
    ("loop.json", f'[{RECORD}, "idx_to_symbol": ["A", "B"], "edges": [[1, 1]]}}]', "linked to itself"),
    ("twice.json", f'[{RECORD}, "idx_to_symbol": ["A", "B"], "edges": [[0, 1], [0, 1]]}}]', "listed twice"),
    ("nosym.json", f'[{RECORD}, "edges": [[0, 1]], "root": 0}}]', "without idx_to_symbol"),
    ("dupsym.json", f'[{RECORD}, "idx_to_symbol": ["A", "A"]}}]', "names 'A' twice"),
    ("root.jsonl", f'{RECORD}, "meta": {{"idx_to_symbol": ["A"], "root": 3}}}}\n', "field 'root'"),
    ("bytes.txt", b"q||s #### \xff\xfe\n", "not UTF-8"),
])
def test_bad_records_are_refused_naming_file_record_field(tmp_path, name, text, where):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    assert validate_file(path)
    one_line_error(lambda: read_examples(path), str(path), where)
    assert cli(["data", "stats", str(path)]) == 2


def test_empty_file_only_when_asked(tmp_path):
    (tmp_path / "e.jsonl").write_text("")
    assert read_examples(tmp_path / "e.jsonl", allow_empty=True) == []


def test_coconut_empty_step_list_is_the_only_blank_step_accepted(tmp_path):
    """gsm_valid.json writes a record without steps as [""]; that spelling alone is accepted."""
    path = tmp_path / "a.json"
    path.write_text('[{"question": "q", "steps": [""], "answer": "a"}]')
    assert read_examples(path)[0].steps == [""]
    write_examples(read_examples(path), tmp_path / "a.txt")  # iCoT writes no steps
    assert read_examples(tmp_path / "a.txt")[0].steps == []


@pytest.mark.parametrize("record, where", [
    (ReasoningExample("two\nlines", ["s"], "a"), "field 'question': holds a line break"),
    (ReasoningExample("q", ["s\r"], "a"), "field 'steps[0]': holds a line break"),
    (ReasoningExample("a||b", ["s"], "a"), "field 'question': holds '||'"),
    (ReasoningExample("q", ["s #### t"], "a"), "field 'steps[0]': holds ' #### '"),
    (ReasoningExample("q", ["s"], "x #### y"), "field 'answer': holds ' #### '"),
    (ReasoningExample("q", ["two words", "apart"], "a"), "field 'steps'"),
    (ReasoningExample("q", ["s", ""], "a"), "empty or blank step"),
])
def test_convert_to_icot_refuses_what_would_not_read_back(tmp_path, record, where):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"question": record.question, "steps": record.steps, "answer": record.answer,
                               "meta": {}}) + "\n")
    if where == "empty or blank step":  # the reader refuses it first
        assert cli(["data", "convert", str(src), str(tmp_path / "out.txt")]) == 2
        return
    assert cli(["data", "convert", str(src), str(tmp_path / "out.txt")]) == 2
    assert not (tmp_path / "out.txt").exists()
    one_line_error(lambda: write_examples([record], tmp_path / "out.txt"), "out.txt: record 1", where)


def test_writers_refuse_surrogates_and_meta_that_json_cannot_hold(tmp_path):
    one_line_error(lambda: write_examples([ReasoningExample("q\ud800", [], "a")], tmp_path / "o.jsonl"),
                   "o.jsonl", "surrogate")
    one_line_error(lambda: write_examples([ReasoningExample("q", [], "a", {"x": float("nan")})], tmp_path / "o.json"),
                   "json")
    one_line_error(lambda: write_examples([ReasoningExample("q", [], "a", {"question": "b"})], tmp_path / "o.json"),
                   "record 1")
    (tmp_path / "d.json").mkdir()
    one_line_error(lambda: write_examples([ReasoningExample("q", [], "a")], tmp_path / "d.json"), "cannot write")


# --- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("override, key", [
    ("train.lr=nan", "train.lr"), ("train.lr=.inf", "train.lr"), ("train.lr=inf", "train.lr"),
    ("train.weight_decay=-0.1", "weight_decay"), ("model.dropout=2.0", "dropout"),
    ("eval.batch_size=0", "batch_size"), ("eval.max_new_tokens=0", "max_new_tokens"),
    ("model.max_positions=2", "max_positions"), ("train.lr=<<", "train.lr"), ("train.schedule=<<", "train.schedule"),
    ("train.lr=1e400", "train.lr"), ("train..lr=1", "override"),
])
def test_bad_config_values_name_the_key(override, key):
    one_line_error(lambda: load_config(RunConfig, None, [override]), key)


def test_string_fields_take_cli_text_as_written():
    cfg = load_config(RunConfig, None, ["method={name: coconut}", "method.init_token=<<", "data.eval_file=007",
                                        "model.tokenizer=yes"])
    assert cfg.method_options().init_token == "<<" and cfg.data.eval_file == "007" and cfg.model.tokenizer == "yes"
    assert load_config(RunConfig, None, ["train.lr=3e-4"]).train.lr == 3e-4


def test_bad_yaml_files(tmp_path):
    cases = {"empty.yaml": b"", "dup.yaml": b"train: {lr: 1.0}\ntrain: {lr: 2.0}\n",
             "dupkey.yaml": b"train:\n  lr: 1.0\n  lr: 2.0\n", "latin1.yaml": "out_dir: caf\xe9\n".encode("latin-1"),
             "list.yaml": b"- a\n", "bad.yaml": b"train: {lr: [\n"}
    words = {"empty.yaml": "empty config", "dup.yaml": "duplicate key 'train'", "dupkey.yaml": "duplicate key 'lr'",
             "latin1.yaml": "not UTF-8", "list.yaml": "mapping", "bad.yaml": "invalid YAML"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        one_line_error(lambda n=name: load_config(RunConfig, tmp_path / n), name, words[name])
    (tmp_path / "dir.yaml").mkdir()
    one_line_error(lambda: load_config(RunConfig, tmp_path / "dir.yaml"), "is a directory")


def test_paths_are_checked_at_load(tmp_path, capsys):
    (tmp_path / "dir.txt").mkdir()
    (tmp_path / "file").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    cases = [(f"data.train_file={tmp_path / 'dir.txt'}", "data.train_file"),
             (f"out_dir={tmp_path / 'file'}", "out_dir"), (f"out_dir={tmp_path / 'file' / 'run'}", "out_dir"),
             (f"model.name_or_path={tmp_path / 'no' / 'model'}", "model.name_or_path"),
             ("model.name_or_path=./nowhere", "no such local folder")]
    if os.geteuid() != 0:  # root may write anywhere
        cases.append((f"out_dir={locked / 'run'}", "not writable"))
    for override, key in cases:
        cfg = load_config(RunConfig, None, [override])
        one_line_error(lambda c=cfg: check_paths(c), key)
        assert cli(["train", override, "--dry-run"]) == 2
        assert key in capsys.readouterr().err


# --- faults ----------------------------------------------------------------------------------


def test_non_finite_loss_stops_naming_the_step_and_keeps_good_checkpoints(tmp_path):
    method = TinyMethod()
    forward = method.forward

    def nan_from_call_5(batch):
        out = forward(batch)
        if method.calls >= 5:
            out.loss = out.loss * float("nan")
        return out

    method.forward = nan_from_call_5  # type: ignore[method-assign]
    cfg = make_cfg(max_steps=8, save_every=2)
    message = one_line_error(lambda: Trainer(method, counting_examples(), cfg, tmp_path).fit(), "step 5:", "not finite")
    assert str(ckpt.checkpoint_dir(tmp_path, 4)) in message
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000002", "step-000004"]
    state = ckpt.read_method_state(ckpt.latest_checkpoint(tmp_path))  # refuses non-finite tensors
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in metrics.jsonl"))
    assert all(torch.isfinite(p).all() for p in method.parameters())  # the bad step changed nothing


def test_huge_lr_run_exits_non_zero_from_the_cli(tmp_path, capsys):
    args = ["train", "data.task=chain", "data.train_size=64", "data.eval_size=4", "model.name_or_path=micro",
            "method={name: nocot}", "train.batch_size=8", "train.max_steps=40", "train.save_every=2",
            "train.clip_grad=0", "train.lr=1e6", "eval.max_new_tokens=4", f"out_dir={tmp_path}"]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("latentcot: error: step ") and "not finite" in err
    for path in ckpt.list_checkpoints(tmp_path):
        ckpt.read_method_state(path)  # every kept checkpoint is finite


def test_rerun_into_a_run_folder_needs_resume_or_overwrite(tmp_path):
    Trainer(TinyMethod(), counting_examples(), make_cfg(max_steps=2), tmp_path).fit()
    one_line_error(lambda: Trainer(TinyMethod(), counting_examples(), make_cfg(max_steps=2), tmp_path).fit(),
                   str(tmp_path), "--resume", "--overwrite")
    (tmp_path / "notes.txt").write_text("mine")
    Trainer(TinyMethod(), counting_examples(), make_cfg(max_steps=1), tmp_path).fit(overwrite=True)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["step-000001"]
    assert [r["step"] for r in read_metrics(tmp_path)] == [1] and (tmp_path / "notes.txt").exists()
    one_line_error(lambda: ckpt.prepare_run_dir(tmp_path, resume=True, overwrite=True), "not both")


def test_metrics_are_not_repeated_after_resume(tmp_path):
    cfg = make_cfg(max_steps=6, save_every=2)
    method = TinyMethod()
    method.crash_at_call = 6  # mid step 6, after rows 1..5 and checkpoint 4 were written
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(method, counting_examples(), cfg, tmp_path).fit()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 5, "lo')  # a line cut by kill -9
    Trainer(TinyMethod(), counting_examples(), cfg, tmp_path).fit(resume=True)
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3, 4, 5, 6]


# --- checkpoints -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real recipe checkpoint of a micro model (one step)."""
    from latentcot.train.recipe import main

    out = tmp_path_factory.mktemp("run")
    cfg = load_config(RunConfig, None, ["data.task=chain", "data.train_size=8", "data.eval_size=2",
                                        "model.name_or_path=micro", "train.batch_size=8", "train.max_steps=1",
                                        "eval.max_new_tokens=4", "method={name: nocot}", f"out_dir={out}"])
    main(cfg)
    return ckpt.latest_checkpoint(out)


def _rewrite(path: Path, edit) -> None:  # noqa: ANN001
    from safetensors.torch import load_file, save_file

    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def _drop_digests(folder: Path) -> None:
    info = json.loads((folder / "latentcot.json").read_text())
    info.pop("sha256")
    (folder / "latentcot.json").write_text(json.dumps(info))


CORRUPTIONS = {
    "truncated": lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:1000]),
    "empty": lambda f: (f / "model.safetensors").write_bytes(b""),
    "random": lambda f: (f / "model.safetensors").write_bytes(os.urandom(4096)),
    "bad header": lambda f: (f / "model.safetensors").write_bytes(b"\xff" * 8 + b"{}" * 10),
    "header only": lambda f: (f / "model.safetensors").write_bytes(
        (f / "model.safetensors").read_bytes()[: 8 + int.from_bytes((f / "model.safetensors").read_bytes()[:8], "little")]),
    "wrong shape": lambda f: _rewrite(f / "model.safetensors", lambda t: t.update(
        {k: torch.zeros(3, 5) for k in list(t) if k.endswith("wte.weight")})),
    "all NaN": lambda f: _rewrite(f / "model.safetensors", lambda t: t.update(
        {k: torch.full_like(v, float("nan")) for k, v in t.items() if v.is_floating_point()})),
    "float64": lambda f: _rewrite(f / "model.safetensors", lambda t: t.update(
        {k: v.double() for k, v in t.items() if v.is_floating_point()})),
    "corrupt latentcot.json": lambda f: (f / "latentcot.json").write_text('{"method": "nocot", "config": '),
    "latentcot.json list": lambda f: (f / "latentcot.json").write_text("[1, 2]"),
    "pickle beside": lambda f: (f / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01."),
    "trainer state": lambda f: (f / "trainer_state.json").write_text("{"),
}


@pytest.mark.parametrize("digests", [True, False], ids=["recorded", "old-checkpoint"])
@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corrupt_checkpoints_give_one_line_errors_naming_the_file(trained, tmp_path, monkeypatch, name, digests):
    import pickle

    from latentcot.train.recipe import load_trained

    folder = tmp_path / "ckpt"
    shutil.copytree(trained, folder)
    if not digests:
        _drop_digests(folder)
    CORRUPTIONS[name](folder)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load called"))
    if name == "trainer state":
        one_line_error(lambda: ckpt.load_trainer_state(folder), str(folder))
        if not digests:
            return
    one_line_error(lambda: load_trained(folder), str(folder))


def test_flipped_byte_is_found_by_the_recorded_digest(trained, tmp_path):
    from latentcot.train.recipe import load_trained

    folder = tmp_path / "ckpt"
    shutil.copytree(trained, folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-3] ^= 0x01  # inside the last tensor's data: still a valid file
    (folder / "model.safetensors").write_bytes(bytes(data))
    one_line_error(lambda: load_trained(folder), "model.safetensors", "SHA-256")
