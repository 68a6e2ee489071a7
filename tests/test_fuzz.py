"""Property-based fuzzing (hypothesis) of every reader, the converters, configs, checkpoints and
the CLI with generated bad input.

Every generated input here is bad by construction (a broken record, a cut file, a value out of
range, a corrupted checkpoint file), so the property is the same everywhere: a one-line
LatentCotError naming the file (and record or line) or the config key; never a traceback, never
silently accepted, never a hang (each case has a deadline and each test a timeout). Conversions
of random records must either be refused with such an error or read back identical. The counts
of one run are printed by the last test (`pytest tests/test_fuzz.py -s`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil
import string
import tempfile
import typing
from collections import Counter
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from latentcot.cli import main as cli
from latentcot.config import load_config
from latentcot.data.formats import FORMATS, _comparable, read_examples, write_examples
from latentcot.data.record import ReasoningExample
from latentcot.data.validate import validate_file
from latentcot.errors import LatentCotError
from latentcot.train import checkpoint as ckpt
from latentcot.train.recipe import RunConfig

torch.set_num_threads(1)
COUNTS: Counter[str] = Counter()  # generated bad inputs per kind, this run
EXAMPLES = {"data": 500, "conversion": 200, "config": 250, "checkpoint": 80, "cli": 120}
EXTENSION = {"json": ".json", "jsonl": ".jsonl", "icot": ".txt"}
WORK = Path(tempfile.mkdtemp(prefix="latentcot-fuzz-"))


def fuzz(kind: str, deadline_ms: int = 5000) -> Any:
    return settings(max_examples=EXAMPLES[kind], deadline=deadline_ms, database=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def assert_one_line_error(fn: Any, *parts: str) -> str:
    try:
        fn()
    except LatentCotError as err:
        message = str(err)
    else:
        pytest.fail(f"accepted silently (expected an error naming {parts})")
    assert "\n" not in message and message.strip(), message
    for part in parts:
        assert part in message, (part, message)
    return message


# --- data files --------------------------------------------------------------------------------

GRAPH = {"idx_to_symbol": ["Tom", "wumpus", "yumpus", "zumpus"], "edges": [[0, 1], [1, 2], [0, 3]],
         "root": 0, "target": 2, "neg_target": 3}
RECORDS = [
    {"question": "Is Tom a yumpus or zumpus?", "steps": ["Tom is a wumpus.", "Every wumpus is a yumpus."],
     "answer": "Tom is a yumpus.", **GRAPH},
    {"question": "1 2 * 3 4", "steps": ["3 6 0", "0 4 8 0"], "answer": "3 0 9 0"},
    {"question": "What is 2 + 3?", "steps": ["<<2+3=5>>"], "answer": "5"},
]
ICOT_LINES = ["1 2 * 3 4||3 6 0 + 0 4 8 0 #### 3 0 9 0", "q one||<<2+3=5>> <<5*2=10>> #### 10", "q two|| #### 7"]
surrogate = st.integers(0xD800, 0xDFFF).map(chr)
blank = st.text(alphabet=" \t", min_size=0, max_size=3)
with_surrogate = st.tuples(st.text(max_size=5), surrogate, st.text(max_size=5)).map("".join)
not_text = st.one_of(st.none(), st.integers(-10**9, 10**9), st.booleans(), st.lists(st.integers(-10**9, 10**9), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(-10**9, 10**9), max_size=2))
bad_text = st.one_of(not_text, blank, with_surrogate)
bad_steps = st.one_of(
    st.one_of(st.none(), st.text(max_size=5), st.integers(-10**9, 10**9), st.dictionaries(st.text(max_size=2), st.text(max_size=2))),
    st.tuples(st.lists(st.text(min_size=1, max_size=4).filter(str.strip), max_size=3),
              st.one_of(blank.filter(lambda s: s != ""), not_text, with_surrogate),
              st.integers(0, 3)).map(lambda t: t[0][: t[2]] + [t[1]] + t[0][t[2]:]),
    st.lists(blank, min_size=2, max_size=3),
)
name = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=8)


def _graph_breakage(draw: Any) -> dict[str, Any]:
    n = len(GRAPH["idx_to_symbol"])
    kind = draw(st.sampled_from(["edge past", "negative", "bool", "self loop", "twice", "no symbols", "node past",
                                 "dup symbol", "not pairs"]))
    g = json.loads(json.dumps(GRAPH))
    if kind == "edge past":
        g["edges"].append([draw(st.integers(0, n - 1)), draw(st.integers(n, 10**6))])
    elif kind == "negative":
        g["edges"][0][draw(st.integers(0, 1))] = draw(st.integers(-10**6, -1))
    elif kind == "bool":
        g["edges"][0][0] = True
    elif kind == "self loop":
        i = draw(st.integers(0, n - 1))
        g["edges"].append([i, i])
    elif kind == "twice":
        g["edges"].append(list(g["edges"][draw(st.integers(0, 2))]))
    elif kind == "no symbols":
        del g["idx_to_symbol"]
    elif kind == "node past":
        g[draw(st.sampled_from(["root", "target", "neg_target"]))] = draw(st.integers(n, 10**9))
    elif kind == "dup symbol":
        g["idx_to_symbol"][1] = g["idx_to_symbol"][0]
    else:
        g["edges"][1] = draw(st.lists(st.integers(0, n - 1), min_size=0, max_size=4).filter(lambda e: len(e) != 2))
    return g


@st.composite
def bad_record_file(draw: Any) -> tuple[str, bytes, int | None]:
    """(format, file bytes, 1-based record/line at fault or None for a file-level fault)."""
    fmt = draw(st.sampled_from(FORMATS))
    level = draw(st.sampled_from(["record", "file"]))
    if level == "file":
        good = (json.dumps(RECORDS) if fmt == "json" else
                "".join(json.dumps({"question": r["question"], "steps": r["steps"], "answer": r["answer"],
                                    "meta": {}}) + "\n" for r in RECORDS) if fmt == "jsonl" else
                "".join(line + "\n" for line in ICOT_LINES))
        fault = draw(st.sampled_from(["cut", "empty", "bom", "bad utf-8", "garbage"]))
        if fault == "cut":  # inside the last line, never at a line end: the file was cut short
            last = good.rstrip("\n").rfind("\n") + 1
            at = draw(st.integers(last + 1, len(good) - 2))
            return fmt, good[:at].encode(), None
        if fault == "empty":
            return fmt, draw(st.text(alphabet=" \n\t", max_size=4)).encode(), None
        if fault == "bom":
            return fmt, b"\xef\xbb\xbf" + good.encode(), None
        raw = good.encode()
        if fault == "bad utf-8":
            at = draw(st.integers(0, len(raw)))
            return fmt, raw[:at] + draw(st.sampled_from([b"\xff", b"\xc0", b"\x80", b"\xed\xa0\x80"])) + raw[at:], None
        return fmt, draw(st.binary(max_size=64)) + b"\xff" + draw(st.binary(max_size=64)), None
    index = draw(st.integers(0, len(RECORDS) - 1))
    if fmt == "icot":
        lines = list(ICOT_LINES)
        question, rest = lines[index].split("||", 1)
        cot, answer = rest.rsplit(" #### ", 1)
        fault = draw(st.sampled_from(["no pipes", "no hashes", "blank question", "blank answer", "cr", "blank step"]))
        line = {"no pipes": lambda: lines[index].replace("||", draw(st.sampled_from(["|", " ", ""]))),
                "no hashes": lambda: f"{question}||{cot} {draw(st.sampled_from(['###', '#', '# ###']))} {answer}",
                "blank question": lambda: f"{draw(blank)}||{cot} #### {answer}",
                "blank answer": lambda: f"{question}||{cot} #### {draw(blank)}",
                "cr": lambda: lines[index],
                "blank step": lambda: f"1 2 * 3 4||3 6 0 +{draw(st.sampled_from(['  + ', '   + ']))}0 4 8 0 #### {answer}",
                }[fault]()
        if fault == "cr":
            at = draw(st.integers(0, len(lines[index])))
            line = lines[index][:at] + "\r" + lines[index][at:]
        lines[index] = line
        return fmt, "".join(x + "\n" for x in lines).encode("utf-8"), index + 1
    records = json.loads(json.dumps(RECORDS))
    rec = records[index]
    if fmt == "jsonl":
        rec = {"question": rec.pop("question"), "steps": rec.pop("steps"), "answer": rec.pop("answer"), "meta": rec}
        records[index] = rec
        meta = rec["meta"]
    else:
        meta = rec
    fault = draw(st.sampled_from(["question", "answer", "steps", "missing", "underscore", "graph", "deep", "huge",
                                  "nan", "duplicate", "unknown", "bookkeeping"]))
    raw_value = None
    if fault in ("question", "answer"):
        rec[fault] = draw(bad_text)
    elif fault == "steps":
        rec["steps"] = draw(bad_steps)
    elif fault == "missing":
        del rec[draw(st.sampled_from(["question", "steps", "answer"]))]
    elif fault == "underscore":
        meta["_" + draw(name)] = draw(st.one_of(st.integers(-10**9, 10**9), st.text(max_size=4), st.lists(st.text(max_size=3))))
        if fmt == "jsonl" and list(meta)[-1] in ("_key_order", "_step_separator"):
            meta[list(meta)[-1]] = 12345  # an invalid value for the known keys
    elif fault == "graph":
        for key in GRAPH:
            meta.pop(key, None)
        meta.update(_graph_breakage(draw))
    elif fault == "deep":
        meta["x"] = "@DEEP@"
        raw_value = "[" * draw(st.integers(18, 500)) + "]" * 500
    elif fault == "huge":
        meta["x"] = "@DEEP@"
        raw_value = draw(st.sampled_from(["", "-"])) + "9" * draw(st.integers(31, 6000))
        if draw(st.booleans()):
            raw_value = "1e" + "9" * draw(st.integers(4, 400))
    elif fault == "nan":
        meta["x"] = "@DEEP@"
        raw_value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
    elif fault == "duplicate":
        meta["@DUP@"] = 0
    elif fault == "unknown":
        if fmt == "jsonl":
            rec[draw(name.filter(lambda k: k not in ("question", "steps", "answer", "meta")))] = 1
        else:
            meta["_" + draw(name)] = 1
    else:  # a JSONL bookkeeping key with a value that would steer the writer
        if fmt == "json":
            meta["_key_order"] = ["answer"]
        else:
            meta[draw(st.sampled_from(["_key_order", "_step_separator"]))] = draw(
                st.one_of(st.lists(st.sampled_from(["answer", "steps", "x", "question"]), max_size=2),
                          st.sampled_from(["", "x", "  ", " ++ "])))
    if fmt == "json":
        text = json.dumps(records)
    else:
        text = "".join(json.dumps(r) + "\n" for r in records)
    if raw_value is not None:
        text = text.replace('"@DEEP@"', raw_value if raw_value[0] != "[" else
                            raw_value[: raw_value.index("]")] + "]" * raw_value.index("]"))
    if fault == "duplicate":
        text = text.replace('"@DUP@": 0', f'"{draw(st.sampled_from(["question", "answer", "steps"]))}": "again"')
    whole_file = fmt == "json" and fault in ("huge", "nan", "duplicate")  # the JSON parser refuses the file
    return fmt, text.encode("utf-8", "surrogatepass"), None if whole_file else index + 1


@fuzz("data")
@given(case=bad_record_file())
@pytest.mark.timeout(240)
def test_fuzz_bad_data_files_are_refused_naming_file_and_record(case):
    fmt, data, record = case
    path = WORK / f"bad{EXTENSION[fmt]}"
    path.write_bytes(data)
    problems = validate_file(path)
    assert problems, "accepted silently"
    if record is not None:
        assert any(p.record == record for p in problems), (record, [str(p) for p in problems])
    where = f"{path}: {'line' if fmt != 'json' else 'record'} {record}" if record is not None else str(path)
    assert_one_line_error(lambda: read_examples(path), str(path))
    assert any(str(p).startswith(where) for p in problems), (where, [str(p) for p in problems])
    COUNTS["data"] += 1


# --- conversions ---------------------------------------------------------------------------------

hazard = st.sampled_from(["\n", "\r", "||", " #### ", "", " ", "\ud800", "a. b", ">> <<", " + ", "#### "])
field_text = st.one_of(st.text(max_size=12), st.tuples(st.text(max_size=5), hazard, st.text(max_size=5)).map("".join))
json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=6)),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                      max_size=3), max_leaves=6)
record = st.builds(ReasoningExample, field_text, st.lists(field_text, max_size=4), field_text,
                   st.dictionaries(st.text(max_size=6).filter(lambda k: not k.startswith("_")
                                                              and k not in ("question", "steps", "answer")),
                                   json_value, max_size=3))


def _hazardous(examples: list[ReasoningExample]) -> bool:
    texts = [t for ex in examples for t in (ex.question, ex.answer, *ex.steps)]
    return any(not t.strip() or any(h in t for h in ("\n", "\r", "||", " #### ")) or
               any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in texts)


@fuzz("conversion")
@given(examples=st.lists(record, min_size=1, max_size=4), fmt=st.sampled_from(FORMATS))
@pytest.mark.timeout(240)
def test_fuzz_conversions_read_back_identical_or_are_refused(examples, fmt):
    path = WORK / f"out{EXTENSION[fmt]}"
    path.unlink(missing_ok=True)
    try:
        write_examples(examples, path)
    except LatentCotError as err:
        assert "\n" not in str(err) and str(path) in str(err) or "cannot write" in str(err), str(err)
        assert not path.exists()
        COUNTS["conversion refused"] += 1
    else:
        back = read_examples(path)
        assert [_comparable(b, fmt) for b in back] == [_comparable(e, fmt) for e in examples]
        COUNTS["conversion read back identical"] += 1
    COUNTS["conversion"] += _hazardous(examples)


# --- configs -----------------------------------------------------------------------------------


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += _leaves(tp, f"{prefix}{f.name}.")  # type: ignore[arg-type]
        else:
            out.append((prefix + f.name, tp))
    return out


LEAVES = _leaves(RunConfig)
# values each field type must refuse, written as on the command line
BAD_BY_TYPE = {
    float: ["nan", ".nan", "NaN", "inf", "-inf", ".inf", "1e999", "-1e400", "abc", "[1, 2]", "true", "{a: 1}", "null", "<<"],
    int: ["1.5", "abc", "[1]", "true", "1e3", "{a: 1}", "null", "<<", "0x", "2.0"],
    bool: ["maybe", "2", "[true]", "null", "1.0", "<<", "{a: b}"],
}
# values each rule must refuse (key, strategy of bad numbers)
RANGE_RULES = [
    ("train.batch_size", st.integers(-10**6, 0)), ("train.grad_accum", st.integers(-99, 0)),
    ("train.log_every", st.integers(-99, 0)), ("train.max_steps", st.integers(-10**6, -1)),
    ("train.warmup_steps", st.integers(-99, -1)), ("train.save_every", st.integers(-99, -1)),
    ("train.keep_last", st.integers(-99, -1)), ("train.eval_every", st.integers(-99, -1)),
    ("train.num_workers", st.integers(-99, -1)), ("train.lr", st.floats(-1e6, 0)),
    ("train.weight_decay", st.floats(-1e6, -1e-9)), ("train.clip_grad", st.floats(-1e6, -1e-9)),
    ("model.dropout", st.one_of(st.floats(1.0, 1e6), st.floats(-1e6, -1e-9))),
    ("model.max_positions", st.integers(-10**6, 7)), ("eval.batch_size", st.integers(-10**6, 0)),
    ("eval.max_new_tokens", st.integers(-10**6, 0)), ("eval.n_latents", st.integers(-10**6, -2)),
    ("data.train_size", st.integers(-10**6, 0)), ("data.eval_size", st.integers(-10**6, -1)),
]


@st.composite
def bad_config(draw: Any) -> tuple[list[str], bytes | None, str]:
    """(overrides, YAML file bytes or None, what the error must name)."""
    kind = draw(st.sampled_from(["type", "range", "unknown", "literal", "yaml"]))
    if kind == "type":
        key, tp = draw(st.sampled_from([(k, t) for k, t in LEAVES if t in BAD_BY_TYPE]))
        return [f"{key}={draw(st.sampled_from(BAD_BY_TYPE[tp]))}"], None, key.split(".")[-1]
    if kind == "range":
        key, values = draw(st.sampled_from(RANGE_RULES))
        return [f"{key}={draw(values)!r}"], None, key.split(".")[-1]
    if kind == "unknown":
        section = draw(st.sampled_from(["", "train.", "model.", "data.", "eval."]))
        key = draw(st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=10).filter(
            lambda k: k not in {leaf.split(".")[-1] for leaf, _ in LEAVES} | {"train", "model", "data", "eval", "method"}))
        return [f"{section}{key}=1"], None, key
    if kind == "literal":
        key, tp = draw(st.sampled_from([(k, t) for k, t in LEAVES if get_origin(t) is Literal]))
        value = draw(st.text(alphabet=string.ascii_letters, min_size=1, max_size=8).filter(lambda v: v not in get_args(tp)))
        return [f"{key}={value}"], None, key.split(".")[-1]
    fault = draw(st.sampled_from(["duplicate", "latin-1", "not a mapping", "bad yaml", "empty", "str field", "int key"]))
    key = draw(st.sampled_from(["lr", "batch_size", "epochs"]))
    text = {"duplicate": f"train:\n  {key}: 1\n  {key}: 2\n", "latin-1": "out_dir: runs/caf\xe9\n",
            "not a mapping": draw(st.sampled_from(["- 1\n", "3\n", "just text\n", "[a, b]\n"])),
            "bad yaml": draw(st.sampled_from(["train: {lr: [\n", "train:\n\t- x\n", "a: b: c\n", "train: 'x\n"])),
            "empty": draw(st.sampled_from(["", "\n", "# only a comment\n", "---\n"])),
            "str field": f"out_dir: {draw(st.sampled_from(['[1, 2]', '{a: 1}', '3', 'true']))}\n",
            "int key": f"{draw(st.sampled_from(['train', 'model', 'eval']))}:\n  {draw(st.integers(-9, 99))}: 1\n"}[fault]
    words = {"duplicate": f"duplicate key '{key}'", "latin-1": "not UTF-8", "not a mapping": "mapping",
             "bad yaml": "invalid YAML", "empty": "empty config", "str field": "out_dir", "int key": "unknown key"}[fault]
    return [], text.encode("latin-1"), words


@fuzz("config")
@given(case=bad_config())
@pytest.mark.timeout(240)
def test_fuzz_bad_configs_name_the_key(case):
    overrides, text, words = case
    path = None
    if text is not None:
        path = WORK / "bad.yaml"
        path.write_bytes(text)
    message = assert_one_line_error(lambda: load_config(RunConfig, path, overrides), words)
    if path is not None:
        assert str(path) in message
    COUNTS["config"] += 1


@fuzz("config")
@given(overrides=st.lists(st.tuples(st.sampled_from([k for k, _ in LEAVES] + ["method", "method.name", "x.y"]),
                                    st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}"), max_size=3))
@pytest.mark.timeout(240)
def test_fuzz_any_command_line_value_loads_or_is_a_one_line_error(overrides):
    try:
        load_config(RunConfig, None, overrides)
    except LatentCotError as err:
        assert "\n" not in str(err)


# --- checkpoints -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained() -> Path:
    from latentcot.train.recipe import main

    out = WORK / "run"
    cfg = load_config(RunConfig, None, ["data.task=chain", "data.train_size=8", "data.eval_size=2",
                                        "model.name_or_path=micro", "train.batch_size=8", "train.max_steps=1",
                                        "eval.max_new_tokens=4", "method={name: nocot}", f"out_dir={out}"])
    with contextlib.redirect_stdout(io.StringIO()):
        main(cfg)
    return ckpt.latest_checkpoint(out)


@st.composite
def corruption(draw: Any, files: list[str]) -> tuple[str, str, Any]:
    """(file, what, a function corrupting the folder). With recorded digests any change to any
    file must be caught; without (an older checkpoint) the structural faults must be."""
    digests = draw(st.booleans())
    if digests:
        file = draw(st.sampled_from(files))
        op = draw(st.sampled_from(["truncate", "flip", "random", "empty", "append"]))
    else:
        file = "model.safetensors"
        op = draw(st.sampled_from(["truncate", "random", "empty", "nan", "float64", "shape", "header"]))
    seed = draw(st.integers(0, 2**31))

    def corrupt(folder: Path) -> None:
        g = torch.Generator().manual_seed(seed)
        path = folder / file
        data = path.read_bytes()

        def pick(n: int) -> int:
            return int(torch.randint(0, max(n, 1), (), generator=g))

        if not digests:
            info = json.loads((folder / "latentcot.json").read_text())
            info.pop("sha256"), info.pop("checksum")
            (folder / "latentcot.json").write_text(json.dumps(info))
        if op == "truncate":
            path.write_bytes(data[: pick(len(data) - 1)])
        elif op == "flip":
            at = pick(len(data))
            path.write_bytes(data[:at] + bytes([data[at] ^ (1 << pick(8))]) + data[at + 1:])
        elif op == "random":
            path.write_bytes(torch.randint(0, 256, (pick(5000) + 1,), generator=g, dtype=torch.uint8).numpy().tobytes())
        elif op == "empty":
            path.write_bytes(b"")
        elif op == "append":
            path.write_bytes(data + b"\x00garbage")
        elif op == "header":
            path.write_bytes(int(pick(2**40) + 10**9).to_bytes(8, "little") + data[8:])
        else:
            from safetensors.torch import load_file, save_file

            tensors = load_file(path)
            key = sorted(k for k, v in tensors.items() if v.is_floating_point())[pick(len(tensors))
                                                                                % len([v for v in tensors.values()
                                                                                       if v.is_floating_point()])]
            t = tensors[key]
            tensors[key] = {"nan": lambda: t.clone().view(-1).index_fill(0, torch.tensor([pick(t.numel())]),
                                                                         float("nan")).view_as(t),
                            "float64": t.double, "shape": lambda: torch.zeros(t.shape[0] + 1, *t.shape[1:])}[op]()
            save_file(tensors, path, metadata={"format": "pt"})

    return file, f"{op} {file} ({'digests' if digests else 'no digests'})", corrupt


def _checkpoint_files() -> list[str]:
    return ["model.safetensors", "latentcot.json", "config.json", "tokenizer.json", "tokenizer_config.json",
            "method.safetensors", "trainer_state.safetensors", "trainer_state.json", "generation_config.json"]


@fuzz("checkpoint", deadline_ms=10000)
@given(case=corruption(_checkpoint_files()))
@pytest.mark.timeout(300)
def test_fuzz_corrupt_checkpoints_are_refused_naming_the_file(trained, case):
    from latentcot.train.recipe import load_trained

    file, what, corrupt = case
    folder = WORK / "ckpt"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(trained, folder)
    if not (folder / file).exists():
        return
    corrupt(folder)
    with contextlib.redirect_stdout(io.StringIO()):
        assert_one_line_error(lambda: load_trained(folder), str(folder))
    COUNTS["checkpoint"] += 1


# --- the CLI -----------------------------------------------------------------------------------


@st.composite
def bad_command(draw: Any) -> list[str]:
    junk = st.text(alphabet=string.printable.replace("\x0b", "").replace("\x0c", ""), max_size=10)
    garbage = WORK / draw(st.sampled_from(["g.json", "g.jsonl", "g.txt", "g"]))
    garbage.write_bytes(draw(st.binary(max_size=40)) + b"\xff")
    missing = str(WORK / ("missing-" + draw(st.text(alphabet=string.ascii_letters, max_size=6))))
    target = draw(st.sampled_from([str(garbage), missing, str(WORK), "/dev/null"]))
    return draw(st.sampled_from([
        ["data", "validate", target], ["data", "stats", target], ["data", "stats", target, "--json"],
        ["data", "convert", target, str(WORK / "c.jsonl")], ["data", "convert", target, str(WORK / "c.txt")],
        ["data", "validate", target, "--format", draw(st.sampled_from(FORMATS))],
        ["data", "generate", draw(st.sampled_from(["chain", "multiplication", "arithmetic"])), "--n",
         str(draw(st.integers(-3, 0))), "--out", str(WORK / "gen.txt")],
        ["data", "generate", "multiplication", "--digits", str(draw(st.integers(-5, 0))), "--out", str(WORK / "gen.txt")],
        ["data", "generate", "chain", "--n", "2", "--out", str(WORK / draw(st.sampled_from(["x.csv", "x"])))],
        ["train", "--dry-run", f"{draw(st.sampled_from([k for k, _ in LEAVES]))}={draw(junk)}", "train.lr=nan"],
        ["train", str(garbage), "--dry-run"], ["train", missing + ".yaml", "--dry-run"],
        ["eval", target, "--data", target], ["generate", target, draw(junk)], ["inspect", target, draw(junk)],
        ["diffusion", "plan", target], ["visual", "eval", target], ["report", target, "--out", str(WORK / "r.html")],
        ["data", draw(st.sampled_from(["validate", "stats", "convert", "generate"])), f"--{draw(junk)}"],
    ]))


@fuzz("cli", deadline_ms=10000)
@given(argv=bad_command())
@pytest.mark.timeout(300)
def test_fuzz_cli_never_tracebacks_nor_accepts_bad_input(argv):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli(argv)
        except SystemExit as exit:  # argparse: a usage error
            code = exit.code
    assert code not in (0, None), f"accepted: {argv}"
    last = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
    assert last.startswith(("latentcot: error:", "latentcot ")) or ": error:" in last or "problem(s) found" in last, last
    COUNTS["cli"] += 1


def test_fuzz_counts_zz():
    """Runs last (file order): the counts of this run. Skips when the fuzz tests did not all run."""
    kinds = ("data", "conversion", "config", "checkpoint", "cli")
    if not all(COUNTS[k] for k in kinds):
        pytest.skip("run the whole file to count")
    total = sum(COUNTS[k] for k in kinds)
    print(f"\nfuzz: {total} generated bad inputs: " + ", ".join(f"{k} {v}" for k, v in sorted(COUNTS.items())))
    assert total >= 1000
