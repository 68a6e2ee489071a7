"""bench/gpu_speed.py, rehearsed on CPU: its static-cache runner (what the GPU check captures as
CUDA graphs) answers exactly what the library's batched inference answers, and the whole script
runs end to end on a tiny model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import gpu_speed  # noqa: E402

from latentcot.methods import build_method, method_config  # noqa: E402


def _tiny(tmp_path: Path) -> tuple:
    args = argparse.Namespace(tiny=True, train_batch=4, questions=12, gsm=str(tmp_path / "absent.json"))
    return gpu_speed.build(args, torch.device("cpu"))


def test_static_runner_answers_what_the_library_answers(tmp_path: Path) -> None:
    coconut, cot, tokenizer, _, questions, source = _tiny(tmp_path)
    assert "generated" in source
    scaled = build_method("coconut", method_config("coconut", {"c_thought": 1, "max_latent_stage": 6,
                                                               "latent_scale": "embedding"}),
                          coconut.backbone, tokenizer)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # wider random weights than GPT-2's init, so that greedy answers differ by question
        for param in coconut.backbone.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    texts = [ex.question for ex in questions[:5]]
    texts[1] = texts[1] + " " + texts[2]  # rows of different lengths: left padding
    for method in (coconut, scaled, cot):
        method.eval()
        budget = 12
        want = method.reason(texts, max_new_tokens=budget).texts
        prompts = gpu_speed.prompts_for(method, texts, torch.device("cpu"))
        assert bool((prompts.mask == 0).any())
        project = method.project if method.name == "coconut" else None
        runner = gpu_speed.StaticRunner(method.backbone, len(texts), prompts.ids.shape[1] + 8 + budget, project,
                                        tokenizer.eos_token_id, budget, graphs=False)
        ids, passes = runner.generate(prompts, budget)
        got = tokenizer.batch_decode(ids, skip_special_tokens=True)
        assert got == want, method.name
        assert len(set(got)) > 1 and any(got)  # random weights still write different, non-empty answers
        assert passes == 1 + prompts.thoughts + len(prompts.tail) + budget
        # the runner is reused across batches: a second call gives the same answers
        assert tokenizer.batch_decode(runner.generate(prompts, budget)[0], skip_special_tokens=True) == want


def test_script_runs_end_to_end_on_cpu(tmp_path: Path) -> None:
    result = gpu_speed.main(["--tiny", "--out", str(tmp_path / "out"), "--gsm", str(tmp_path / "absent.json")])
    saved = json.loads((tmp_path / "out" / "gpu_speed.json").read_text())
    assert saved["summary"] == result["summary"]
    assert saved["training"]["coconut"]["flops_per_step"] > 0 and saved["training"]["thoughts"] == 6
    for rows in saved["generation"].values():
        for row in rows.values():
            assert row["static_equals_library"] == 1.0
            assert row["library"]["questions_per_second"] > 0
    assert "| coconut | 4 |" in (tmp_path / "out" / "gpu_speed.md").read_text()
