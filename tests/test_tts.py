"""Parallel test-time scaling: sampled latent trajectories (noise / MC dropout), aggregation, the
Latent Reward Model and the latent-trajectory signals."""

import json
import math

import pytest
import torch
from test_methods import _task

from latentcot.data.tokenizer import train_word_tokenizer
from latentcot.errors import LatentCotError
from latentcot.eval.reward import (
    ThoughtGroup,
    informative_groups,
    load_reward_model,
    reward_model_from,
    stepwise_contrastive_loss,
    train_reward_model,
)
from latentcot.eval.tts import (
    SignalChoice,
    TtsConfig,
    auroc,
    best_of_n,
    evaluate_tts,
    majority_vote,
    sample_answers,
    top_vote,
)
from latentcot.latent.sampling import Pruning, ThoughtSampler, mc_dropout
from latentcot.latent.signals import aligned_change, cumulative_change, net_change, trajectory_signals
from latentcot.methods import build_method, method_config
from latentcot.models import build_preset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def coconut():
    examples = _task()
    tokenizer = train_word_tokenizer(examples)
    torch.manual_seed(0)
    config = method_config("coconut", {"c_thought": 1, "max_latent_stage": 3}, where="test")
    method = build_method("coconut", config, build_preset("micro", len(tokenizer)), tokenizer)
    return method.eval(), [ex.question for ex in examples[:3]]


# --- sampling -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, options",
    [
        ("codi", {"num_latents": 3}),
        ("simcot", {"base": "coconut", "base_options": {"c_thought": 1, "max_latent_stage": 2}}),
    ],
)
def test_one_greedy_sample_equals_reason_for_every_latent_method(name, options):
    examples = _task()
    tokenizer = train_word_tokenizer(examples)
    torch.manual_seed(0)
    method = build_method(
        name, method_config(name, options, where="test"), build_preset("micro", len(tokenizer)), tokenizer
    )
    method.eval()
    questions = [ex.question for ex in examples[:3]]
    greedy = method.reason(questions, max_new_tokens=6)
    out = sample_answers(method, questions, 2, max_new_tokens=6)
    assert out.texts == [t for t in greedy.texts for _ in range(2)]
    torch.testing.assert_close(out.samples.thoughts, greedy.latents.repeat_interleave(2, 0))


def test_one_greedy_sample_equals_reason(coconut):
    method, questions = coconut
    greedy = method.reason(questions, max_new_tokens=6)
    out = sample_answers(method, questions, 1, max_new_tokens=6)
    assert out.texts == greedy.texts
    torch.testing.assert_close(out.samples.thoughts, greedy.latents)
    # N copies without noise: every sample is the greedy one (the prefix cache is expanded, not recomputed)
    many = sample_answers(method, questions, 4, max_new_tokens=6)
    assert many.texts == [t for t in greedy.texts for _ in range(4)]
    torch.testing.assert_close(many.samples.thoughts, greedy.latents.repeat_interleave(4, 0))
    assert many.samples.sample_passes == 3 + 3 * 4 * (many.samples.backbone_calls - 1)


@pytest.mark.parametrize(
    "sampler", [ThoughtSampler("noise", noise=0.5, seed=3), ThoughtSampler("dropout", dropout=0.3, seed=3)]
)
def test_samplers_are_seeded_and_change_the_thoughts(coconut, sampler):
    method, questions = coconut
    greedy = method.reason(questions, max_new_tokens=6).latents.repeat_interleave(4, 0)
    torch.manual_seed(123)
    a = sample_answers(method, questions, 4, sampler, max_new_tokens=6)
    after = torch.rand(())
    b = sample_answers(method, questions, 4, sampler, max_new_tokens=6)
    torch.manual_seed(123)
    assert torch.equal(torch.rand(()), after)  # the caller's RNG stream is untouched
    assert torch.equal(a.samples.thoughts, b.samples.thoughts) and a.texts == b.texts
    assert not torch.allclose(a.samples.thoughts, greedy)
    rows = a.samples.thoughts.reshape(3, 4, -1)
    assert not torch.allclose(rows[:, 0], rows[:, 1])  # the samples of one question differ
    other = sample_answers(
        method, questions, 4, ThoughtSampler(sampler.kind, sampler.noise, sampler.dropout, seed=4)
    )
    assert not torch.equal(a.samples.thoughts, other.samples.thoughts)
    assert all(not m.training for m in method.modules())  # MC dropout switched back off


def test_mc_dropout_samples_a_llama_backbone_and_leaves_it_as_it_was():
    # Llama blocks have no nn.Dropout: the sampler drops the MLP down projections' inputs instead
    # (a no-op here once returned N copies of the greedy trajectory without a word)
    examples = _task()
    tokenizer = train_word_tokenizer(examples)
    torch.manual_seed(0)
    config = method_config("coconut", {"c_thought": 1, "max_latent_stage": 3}, where="test")
    method = build_method("coconut", config, build_preset("micro-llama", len(tokenizer)), tokenizer).eval()
    assert not any(isinstance(m, torch.nn.Dropout) for m in method.modules())
    questions = [ex.question for ex in examples[:3]]
    greedy = method.reason(questions, max_new_tokens=6)
    sampler = ThoughtSampler("dropout", dropout=0.3, seed=3)
    a = sample_answers(method, questions, 4, sampler, max_new_tokens=6)
    b = sample_answers(method, questions, 4, sampler, max_new_tokens=6)
    assert torch.equal(a.samples.thoughts, b.samples.thoughts)
    rows = a.samples.thoughts.reshape(3, 4, -1)
    assert not torch.allclose(rows[:, 0], rows[:, 1])  # the samples of one question differ
    after = method.reason(questions, max_new_tokens=6)  # the hooks are gone
    assert after.texts == greedy.texts and torch.equal(after.latents, greedy.latents)
    off = sample_answers(method, questions, 2, ThoughtSampler("dropout", dropout=0.0), max_new_tokens=6)
    torch.testing.assert_close(off.samples.thoughts, greedy.latents.repeat_interleave(2, 0))


def test_mc_dropout_refuses_a_model_it_cannot_perturb():
    with pytest.raises(LatentCotError, match="no nn.Dropout layers and no MLP down_proj"):
        with mc_dropout(torch.nn.Sequential(torch.nn.Linear(4, 4)), 0.1):
            pass


def test_noise_sigma_scales_the_first_perturbation(coconut):
    method, questions = coconut
    greedy = method.reason(questions).latents
    for sigma in (0.1, 1.0):
        out = sample_answers(method, questions, 2, ThoughtSampler("noise", noise=sigma))
        first = out.samples.thoughts[:, 0] - greedy[:, 0].repeat_interleave(
            2, 0
        )  # noise only, nothing before it
        assert abs(float(first.std()) - sigma) < 0.25 * sigma


def test_pruning_keeps_the_best_scored_samples(coconut):
    method, questions = coconut
    last_norm = lambda states: states[:, -1].norm(dim=-1)  # noqa: E731
    sampler = ThoughtSampler("noise", noise=2.0, seed=1)
    full = sample_answers(method, questions, 6, sampler)
    pruned = sample_answers(method, questions, 6, sampler, prune=Pruning(after=1, keep=2, score=last_norm))
    # up to the pruning point the rows are the same samples
    torch.testing.assert_close(pruned.samples.states[:, :2], full.samples.states[:, :2])
    expected = last_norm(full.samples.states[:, :2]).reshape(3, 6).topk(2, dim=1).indices
    kept = pruned.samples.finished.reshape(3, 6)
    for q in range(3):
        assert set(kept[q].nonzero().flatten().tolist()) == set(expected[q].tolist())
    assert pruned.samples.thought_counts.tolist() == [3 if f else 1 for f in pruned.samples.finished.tolist()]
    assert all(
        pruned.texts[r] == "" and not pruned.samples.tokens[r] for r in (~kept.flatten()).nonzero().flatten()
    )
    assert pruned.samples.sample_passes < full.samples.sample_passes


# --- aggregation ----------------------------------------------------------------------------


def test_vote_best_of_n_and_auroc():
    assert majority_vote(["3", "5", "5", "3", ""]) == "3"  # tie: first seen
    assert majority_vote(["3", "5", "5"], weights=[3.0, 1.0, 1.0]) == "3"
    assert majority_vote(["", ""]) == ""
    assert best_of_n(["1", "2", ""], [0.1, 0.5, 9.0]) == "2"
    assert top_vote(["1", "2", "2", "1"], [4.0, 3.0, 2.0, 1.0], keep=3) == "2"
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert auroc([1.0, 1.0], [True, False]) == 0.5
    assert math.isnan(auroc([1.0], [True]))


# --- signals --------------------------------------------------------------------------------


def test_signals_of_hand_made_trajectories():
    v = torch.tensor([3.0, 4.0])  # |v| = 5
    straight = (torch.arange(4.0)[:, None] * v + torch.tensor([0.0, 10.0]))[None]  # h_t = (0, 10) + t v
    scale = float(straight[0].norm(dim=-1).mean())
    assert float(net_change(straight)) == pytest.approx(15 / scale)
    assert float(cumulative_change(straight)) == pytest.approx(15 / scale)
    assert float(aligned_change(straight)) == pytest.approx(1.0)
    zigzag = torch.tensor([[[0.0, 10.0], [5.0, 10.0], [10.0, 10.0], [2.0, 10.0]]])  # out, past the end, back
    scale = float(zigzag[0].norm(dim=-1).mean())
    assert float(net_change(zigzag)) == pytest.approx(2 / scale)
    assert float(cumulative_change(zigzag)) == pytest.approx(18 / scale)
    # step 1 heads for the end (cos 1), step 2 away from it (cos -1); the last step is not counted
    assert float(aligned_change(zigzag)) == pytest.approx(0.0)
    # right-padded rows give what the row alone gives
    padded = torch.cat([straight[:, :3], torch.zeros(1, 1, 2)], 1)
    both = trajectory_signals(torch.cat([padded, zigzag]), torch.tensor([3, 4]))
    alone = trajectory_signals(straight[:, :3])
    for name, value in alone.items():
        assert float(both[name][0]) == pytest.approx(float(value[0]))
        assert float(both[name][1]) == pytest.approx(float(trajectory_signals(zigzag)[name][0]))


def test_signal_choice_parses():
    choice = SignalChoice.parse("-answer.cumulative_change")
    assert (choice.name, choice.source, choice.sign) == ("cumulative_change", "answer", -1.0)
    assert str(choice) == "-answer.cumulative_change"
    with pytest.raises(LatentCotError, match="signal"):
        SignalChoice.parse("speed")


# --- the reward model -----------------------------------------------------------------------


def _separable_groups(n_groups, hidden, seed, k=3, n=6):
    """Right samples' thoughts lean along +d, wrong ones along -d (d a fixed random direction)."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.nn.functional.normalize(
        torch.randn(hidden, generator=torch.Generator().manual_seed(0)), dim=0
    )
    groups = []
    for _ in range(n_groups):
        labels = torch.zeros(n)
        labels[torch.randperm(n, generator=g)[: 1 + int(torch.randint(n - 1, (), generator=g))]] = 1.0
        thoughts = torch.randn(n, k, hidden, generator=g) + 3.0 * (2 * labels - 1)[:, None, None] * direction
        groups.append(ThoughtGroup([3, 4, 5], thoughts, labels))
    return groups


def test_stepwise_contrastive_loss_matches_its_definition():
    scores = torch.randn(2, 4, 3)
    labels = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    expected = (
        sum(
            -labels[q, i] * torch.log_softmax(scores[q, :, t], 0)[i]
            for q in range(2)
            for i in range(4)
            for t in range(3)
        )
        / 6
    )
    torch.testing.assert_close(stepwise_contrastive_loss(scores, labels), expected)
    assert (
        len(
            informative_groups(
                [
                    ThoughtGroup([1], torch.zeros(2, 1, 1), torch.tensor(y))
                    for y in ([1.0, 0.0], [1.0, 1.0], [0.0, 0.0])
                ]
            )
        )
        == 1
    )


def test_reward_model_ranks_separable_trajectories(coconut, tmp_path):
    method, _ = coconut
    hidden = method.backbone.config.hidden_size
    torch.manual_seed(0)
    rm = reward_model_from(method.backbone, method.tokenizer, method.tokens.bot)
    train_reward_model(
        rm, _separable_groups(32, hidden, seed=1), tmp_path / "rm", steps=40, batch_size=8, lr=1e-3
    )
    test = _separable_groups(16, hidden, seed=2)
    ids = [g.question_ids for g in test for _ in range(len(g.labels))]
    thoughts = torch.cat([g.thoughts for g in test])
    scores = rm.score(ids, thoughts)
    labels = torch.cat([g.labels for g in test]).bool().tolist()
    assert auroc(scores.tolist(), labels) > 0.95
    loaded = load_reward_model(tmp_path / "rm")  # safetensors + JSON, like any checkpoint
    torch.testing.assert_close(loaded.score(ids, thoughts), scores)
    assert loaded.config == rm.config
    with pytest.raises(LatentCotError, match="reward model"):
        from latentcot.train.checkpoint import save_checkpoint

        save_checkpoint(tmp_path / "other", method, {"step": 0, "config": {}})
        load_reward_model(tmp_path / "other")


def test_evaluate_tts_vote_signal_and_pruning(coconut):
    method, _ = coconut
    examples = _task(4)
    cfg = TtsConfig(n_samples=4, sampler=ThoughtSampler("noise", noise=1.0))
    result = evaluate_tts(method, examples, "prosqa", cfg, batch_size=2, max_new_tokens=6)
    assert result.n == 4 and len(result.predictions[0]["samples"]) == 4
    for p in result.predictions:
        assert p["predicted"] == majority_vote(p["samples"])
        assert p["coverage"] == any(p["samples_correct"])
    pruned = evaluate_tts(
        method,
        examples,
        "prosqa",
        TtsConfig(4, cfg.sampler, "signal", prune_after=1, keep=2),
        batch_size=2,
        max_new_tokens=6,
    )
    assert all(len(p["samples"]) == 2 for p in pruned.predictions)
    assert pruned.forward_passes_per_question < result.forward_passes_per_question
    with pytest.raises(LatentCotError, match="reward model"):
        evaluate_tts(method, examples, "prosqa", TtsConfig(2, aggregate="reward"), max_new_tokens=4)


def test_cli_eval_samples_and_reward(coconut, tmp_path, capsys):
    from latentcot.cli import main
    from latentcot.config import to_dict
    from latentcot.data.formats import write_examples
    from latentcot.train.checkpoint import save_checkpoint
    from latentcot.train.recipe import ModelConfig, RunConfig

    method, _ = coconut
    options = {"name": "coconut", "c_thought": 1, "max_latent_stage": 3}
    cfg = RunConfig(model=ModelConfig(name_or_path="micro"), method=options)
    folder = save_checkpoint(tmp_path, method, {"step": 1, "config": to_dict(cfg)})
    data = tmp_path / "val.jsonl"
    write_examples(_task(6), data)
    out = tmp_path / "tts.json"
    common = ["--data", str(data), "--task", "prosqa", "--max-new-tokens", "6"]
    argv = [
        "eval",
        str(folder),
        *common,
        "--samples",
        "3",
        "--sampler",
        "noise",
        "--noise",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "coconut+vote@3" in capsys.readouterr().out
    assert (
        main(
            [
                "generate",
                str(folder),
                _task(1)[0].question,
                "--samples",
                "3",
                "--sampler",
                "noise",
                "--max-new-tokens",
                "6",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert printed.count("sample ") == 3 and "majority vote of 3" in printed
    saved = json.loads(out.read_text())
    assert all(len(p["samples"]) == 3 for p in saved["predictions"])
    # an untrained reasoner gets every sample wrong: nothing to contrast, and the command says so
    argv = ["reward", str(folder), *common, "--out", str(tmp_path / "rm"), "--samples", "4", "--steps", "2"]
    assert main(argv) == 2
    assert "questions with both right and wrong samples" in capsys.readouterr().err
    # a folder that holds a reward model already is refused before any sampling, unless --overwrite
    (tmp_path / "rm2").mkdir()
    (tmp_path / "rm2" / "metrics.jsonl").write_text('{"step": 1}\n')
    argv[argv.index(str(tmp_path / "rm"))] = str(tmp_path / "rm2")
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "rm2" / "metrics.jsonl").is_file()  # nothing deleted without --overwrite
    assert main([*argv, "--overwrite"]) == 2  # replaced, then fails for the reason above
    assert "questions with both right and wrong samples" in capsys.readouterr().err
    assert not (tmp_path / "rm2" / "metrics.jsonl").exists()


def test_cli_aggregates_match_the_library():
    from latentcot.cli.tts import AGGREGATES as CLI
    from latentcot.eval.tts import AGGREGATES

    assert CLI == AGGREGATES
