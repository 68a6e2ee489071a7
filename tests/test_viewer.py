"""`latentcot view` and `latentcot report` over two tiny trained runs (SIM-CoT on running sums, Coconut
on graph questions): the precomputed JSON holds what the models really think, and headless Chromium
opens the pages from disk, finds every chart drawn, no console error, nothing wider than 1280 px,
clicks a question and finds its thoughts listed (then takes a screenshot)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from latentcot.cli import main as cli
from latentcot.config import load_config
from latentcot.eval.viewer import config_diff
from latentcot.train.recipe import RunConfig, load_trained
from latentcot.train.recipe import main as run

pytestmark = pytest.mark.recipe
torch.set_num_threads(1)

COMMON = ["model.name_or_path=micro", "train.batch_size=8", "train.log_every=1", "eval.max_new_tokens=8",
          "data.eval_size=6", "train.epochs=3"]
SIMCOT = ["data.task=chain", "data.generator={length: 3}", "data.train_size=24",
          "method={name: simcot, base: coconut, base_options: {c_thought: 1, max_latent_stage: 2, epochs_per_stage: 1}}"]
GRAPH = ["data.task=prosqa_graph", "data.generator={min_nodes: 6, max_nodes: 8}", "data.max_hops=3", "data.train_size=24",
         "method={name: coconut, max_latent_stage: 2, epochs_per_stage: 1}"]


# EndoCoT on 4x4 mazes: grid thoughts with a pixel readout, so each thought has a map and an image
ENDOCOT = ["device=cpu", "data.train_size=16", "data.eval_size=5", "train.batch_size=4", "train.stage1_steps=2",
           "train.stage2_steps=2", "sample_steps=2", "model.latent_steps=2", "model.thought=grid",
           "model.conditioning=cells", "model.reasoner_attention=neighbours", "model.grounding_weight=0",
           "model.readout_weight=1", "model.reasoner_layers=1", "model.reasoner_hidden=32", "model.dit_hidden=32",
           "model.dit_depth=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("viewer")
    out = {"simcot": root / "simcot", "graph": root / "graph", "endocot": root / "endocot"}
    run(load_config(RunConfig, None, [*COMMON, *SIMCOT, f"out_dir={out['simcot']}"]))
    run(load_config(RunConfig, None, [*COMMON, *GRAPH, f"out_dir={out['graph']}"]))
    assert cli(["visual", "train", f"out_dir={out['endocot']}", *ENDOCOT]) == 0
    # a second evaluation of the SIM-CoT run with one thought: a second point on the accuracy-vs-thoughts chart
    data = root / "held_out.json"
    assert cli(["data", "generate", "chain", "--length", "3", "--n", "6", "--seed", "5", "--out", str(data)]) == 0
    assert cli(["eval", str(out["simcot"]), "--data", str(data), "--n-latents", "1", "--max-new-tokens", "8",
                "--out", str(out["simcot"] / "eval-k1.json")]) == 0
    return out


@pytest.fixture(scope="module")
def site(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    assert cli(["view", str(runs["simcot"]), str(runs["graph"]), str(runs["endocot"]), "--out", str(out), "--top-k", "3"]) == 0
    return out


def read_data(path: Path) -> tuple[str, object]:
    """The key and JSON value of one data file (``latentcot.loaded(key, value);``)."""
    match = re.fullmatch(r'latentcot\.loaded\(("[^"]*"), (.*)\);\n', path.read_text(), re.S)
    assert match, path
    return json.loads(match[1]), json.loads(match[2])


def test_config_diff_names_only_the_keys_that_differ():
    rows = config_diff({"a": "seed: 0\ntrain: {lr: 0.001, epochs: 3}\n", "b": "seed: 0\ntrain: {lr: 0.01, epochs: 3}\nx: 1\n"})
    assert rows == [{"key": "train.lr", "values": {"a": "0.001", "b": "0.01"}}, {"key": "x", "values": {"a": None, "b": "1"}}]


def test_site_holds_each_questions_thoughts(site: Path, runs: dict[str, Path]):
    assert (site / "index.html").is_file() and (site / "lib" / "uPlot.iife.min.js").stat().st_size > 40_000
    key, summary = read_data(site / "data" / "summary.js")
    assert key == "summary" and [r["name"] for r in summary["runs"]] == ["simcot", "graph", "endocot"]
    assert any(d["key"] == "data.task" for d in summary["diff"])
    # accuracy against thoughts: each eval*.json, with the thoughts it used
    points = {r["name"]: r["thought_points"] for r in summary["runs"]}
    k1 = json.loads((runs["simcot"] / "eval-k1.json").read_text())
    assert [p["file"] for p in points["simcot"]] == ["eval-k1.json", "eval.json"] and k1["latents_per_question"] == 1
    assert points["simcot"][0]["accuracy"] == k1["accuracy"] and points["simcot"][1]["latents"] == 2
    assert points["endocot"] == []  # its eval.json has a solved rate, no accuracy over thoughts
    for name in ("simcot", "graph"):
        run_dir = runs[name]
        row = next(r for r in summary["runs"] if r["name"] == name)
        logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert row["metrics"]["step"] == [r["step"] for r in logged] and row["metrics"]["loss"] == [r["loss"] for r in logged]
        predictions = json.loads((run_dir / "eval.json").read_text())["predictions"]
        _, listed = read_data(site / "data" / name / "questions.js")
        assert [q["q"] for q in listed["questions"]] == [p["question"] for p in predictions]
        assert [q["ok"] for q in listed["questions"]] == [p["correct"] for p in predictions]
        _, chunk = read_data(site / "data" / name / "chunk-0000.js")
        assert len(chunk) == len(predictions) == 6
        # the first question's thoughts, recomputed here: norms, self-similarity, nearest tokens
        method, _ = load_trained(run_dir)
        latents = method.reason([predictions[0]["question"]], max_new_tokens=1).latents[0]
        thoughts = chunk[0]["thoughts"]
        assert len(thoughts) == latents.shape[0] == listed["thoughts"] > 0
        assert [t["norm"] for t in thoughts] == pytest.approx(latents.norm(dim=-1).tolist(), abs=2e-3)
        assert all(t["sim"][i] == pytest.approx(1.0, abs=2e-3) and len(t["near"]) == 3 for i, t in enumerate(thoughts))
        top = method.tokenizer.convert_ids_to_tokens(int(method.backbone.get_output_embeddings()(latents[0]).argmax()))
        assert thoughts[0]["near"][0][0] == top
        if name == "simcot":  # the step decoder's text per thought
            assert all(isinstance(t["step"], str) for t in thoughts) and chunk[0]["superposition"] is None
        else:  # superposition bars: one row per thought up to the question's hops
            from latentcot.data.graph import example_from_question
            from latentcot.latent.diagnostics import superposition

            want = superposition(method, [example_from_question(predictions[0]["question"])])["per_question"][0]
            got = chunk[0]["superposition"]
            assert len(got) == len(want) > 0 and got[0]["frontier"] == pytest.approx(want[0]["frontier"], abs=2e-3)


def test_site_shows_each_endocot_puzzle_and_its_thought_maps(site: Path, runs: dict[str, Path]):
    from latentcot.visual.tasks import maze
    from latentcot.visual.train import eval_puzzles, load_run

    _, listed = read_data(site / "data" / "endocot" / "questions.js")
    _, chunk = read_data(site / "data" / "endocot" / "chunk-0000.js")
    model, cfg = load_run(runs["endocot"])
    puzzles = eval_puzzles(cfg)
    assert listed["thoughts"] == 3 and [q["gold"] for q in listed["questions"]] == [p.answer_text() for p in puzzles]
    solved = json.loads((runs["endocot"] / "eval.json").read_text())["solved"]
    assert sum(q["ok"] for q in listed["questions"]) / len(puzzles) == pytest.approx(solved)  # drawn as evaluated
    for q, p in zip(listed["questions"], puzzles):
        assert q["ok"] == maze.check(p, maze.from_answer_text(p, q["pred"]))
    view = chunk[0]["puzzle"]
    assert all(view["images"][k].startswith("data:image/png;base64,") for k in ("puzzle", "drawn", "truth"))
    assert len(view["maps"]) == 3 and all(len(m) == 4 and all(len(row) == 4 for row in m) for m in view["maps"])
    assert len(view["readouts"]) == 3
    # the maps recomputed: what each cell's thought adds to its DiT patch token, as a norm
    image = torch.from_numpy(puzzles[0].render_puzzle())[None]
    want = model.dit.cell_embedder(model.thoughts(image)).norm(dim=-1)[0].view(3, 4, 4)
    assert torch.allclose(torch.tensor(view["maps"]), want, atol=2e-3)


def test_report_is_the_summary_page_in_one_file(runs: dict[str, Path], tmp_path: Path):
    out = tmp_path / "report.html"
    assert cli(["report", str(runs["simcot"]), str(runs["graph"]), "--out", str(out)]) == 0
    page = out.read_text()
    assert "var uPlot=" in page and "latentcot.start(" in page and "src='lib/" not in page  # everything inline
    assert '"key":"data.task"' in page and "<details>" not in page  # configs are folded by the script
    assert cli(["report", str(tmp_path), "--out", str(out)]) == 2  # not a run folder: one-line error


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url: str, profile: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium on a file:// URL; ``--virtual-time-budget`` lets the page's timers and
    script loads finish before it dumps or shoots."""
    assert CHROMIUM
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1280,900",
               "--virtual-time-budget=15000", *flags, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def selftest(page: Path, profile: Path) -> dict:
    """``page#selftest``: the page checks itself and writes what it found into ``#selftest``."""
    done = chromium(page.as_uri() + "#selftest", profile, "--dump-dom")
    match = re.search(r'<pre id="selftest">(.*?)</pre>', done.stdout, re.S)
    assert match, f"no self-test result; chromium said:\n{done.stderr[-3000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, console
    return json.loads(match[1].replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.skipif(CHROMIUM is None, reason="needs the chromium browser (Debian: apt-get install chromium; .ci/run installs it)")
def test_pages_render_in_headless_chromium(site: Path, runs: dict[str, Path], tmp_path: Path):
    result = selftest(site / "index.html", tmp_path / "profile")
    logged = {m for r in runs.values() for m in json.loads((r / "metrics.jsonl").read_text().splitlines()[0])} - {"step", "epoch"}
    assert result["charts"] >= len(logged) and result["painted"] == result["charts"]  # every chart drew pixels
    assert result["errors"] == [] and result["eval_rows"] == 3
    assert result["scroll_width"] <= 1280 and result["scroll_width_after"] <= 1280  # no horizontal scrolling
    # the browser opens on the first run with thoughts (SIM-CoT): one click lists every thought
    assert result["questions"] == 6 and result["thoughts"] == result["steps"] > 0
    assert result["nearest"] == 3 * result["thoughts"] and result["heatmap_cells"] == result["thoughts"] ** 2
    graph = result["runs"]["graph"]  # picked from the run menu: superposition bars, no decoder steps
    assert graph["thoughts"] > 0 and graph["steps"] == 0 and graph["superposition_bars"] > 0
    assert result["runs"]["simcot"]["thoughts"] == result["thoughts"]
    puzzle = result["runs"]["endocot"]  # the puzzle, drawn and true images, and 3 thoughts as maps (+ readouts)
    assert puzzle["thoughts"] == 3 and puzzle["map_cells"] == 3 * 16 and puzzle["images"] == 3 + 3
    assert result["thought_points"] == 3  # SIM-CoT at 1 and 2 thoughts, the graph run's Coconut
    shot = tmp_path / "viewer.png"
    chromium((site / "index.html").as_uri() + "#selftest", tmp_path / "profile", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000

    report = tmp_path / "report.html"
    assert cli(["report", str(runs["simcot"]), str(runs["graph"]), "--out", str(report)]) == 0
    result = selftest(report, tmp_path / "profile")
    assert result["charts"] >= len(logged) and result["painted"] == result["charts"] and result["errors"] == []
    assert result["eval_rows"] == 2 and result["scroll_width"] <= 1280 and result["questions"] == 0
    assert result["thought_points"] == 3


def test_an_endocot_run_shows_its_curves_and_solved_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from latentcot.eval.viewer import site_summary

    run_dir = tmp_path / "endocot"  # what `latentcot visual train` writes (no checkpoints/, no predictions)
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1.0 / s, "seconds": 0.1 * s}) + "\n" for s in (1, 2)))
    (run_dir / "eval.json").write_text(json.dumps({"solved": 0.75, "n_eval": 8, "steps": 2, "final": {"loss": 0.5},
                                                   "config": {"data": {"task": "maze"}}}))
    (run_dir / "config.yaml").write_text("data: {task: maze}\n")
    (run_dir / "model.safetensors").write_bytes(b"")
    row = site_summary([run_dir], "t")["runs"][0]
    assert row["metrics"] == {"step": [1.0, 2.0], "loss": [1.0, 0.5], "seconds": [0.1, 0.2]}
    assert row["eval"] == {"run": "endocot", "method": "endocot", "task": "maze", "solved": 0.75, "n_eval": 8, "steps": 2}
    # its puzzles need the model: an empty weights file is a one-line error naming it, no site
    assert cli(["view", str(run_dir), "--out", str(tmp_path / "site")]) == 2
    assert "model.safetensors: empty file" in capsys.readouterr().err
