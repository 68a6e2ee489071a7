"""Latent diagnostics on constructed latents: collapse scores hit their known values."""

import math

import pytest
import torch

from latentcot.data.tokenizer import train_word_tokenizer
from latentcot.latent.diagnostics import (
    collapse_stats,
    cosine_matrix,
    describe_latents,
    effective_rank,
    mean_embedding_norm,
    mean_pairwise_cosine,
    step_recovery,
    step_recovery_by_group,
)
from latentcot.models import build_preset

torch.set_num_threads(1)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_identical_latents_collapse_fully(k):
    latents = torch.randn(1, 64).repeat(k, 1) * 3.0
    assert mean_pairwise_cosine(latents) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(latents) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_orthogonal_latents_have_similarity_zero_and_rank_k(k):
    q, _ = torch.linalg.qr(torch.randn(64, k, dtype=torch.float64))
    latents = 2.5 * q.T  # k orthogonal rows of equal norm
    assert mean_pairwise_cosine(latents) == pytest.approx(0.0, abs=1e-6)
    assert effective_rank(latents) == pytest.approx(float(k), abs=1e-6)
    torch.testing.assert_close(
        cosine_matrix(latents).double(), torch.eye(k, dtype=torch.float64), atol=1e-6, rtol=0
    )


def test_rank_lies_between_for_a_dominant_direction():
    latents = torch.tensor([[1.0, 0.0], [0.0, 0.1]])
    assert 1.0 < effective_rank(latents) < 2.0
    assert math.isnan(mean_pairwise_cosine(latents[:1]))


def test_collapse_stats_average_over_examples_and_relative_norm():
    q, _ = torch.linalg.qr(torch.randn(16, 4))
    orthogonal, same = q.T, torch.ones(4, 16)
    stats = collapse_stats(torch.stack([orthogonal, same]), embedding_norm=2.0)
    assert stats.n_examples == 2 and stats.num_latents == 4
    assert stats.mean_cosine == pytest.approx(0.5, abs=1e-5)
    assert stats.effective_rank == pytest.approx(2.5, abs=1e-5)
    assert stats.relative_norm == pytest.approx((1.0 + 4.0) / 2 / 2.0, abs=1e-5)  # norms 1 and 4
    assert collapse_stats(same[None, :1], 1.0).as_dict()["mean_cosine"] is None


def test_describe_latents_reads_the_embedding_rows_back():
    from latentcot.data.record import ReasoningExample

    tokenizer = train_word_tokenizer([ReasoningExample("a b c", ["d e"], "f")])
    torch.manual_seed(0)
    backbone = build_preset("micro", len(tokenizer))  # tied head: a row of the embedding reads back as itself
    rows = torch.tensor([5, 7])
    latents = 50 * backbone.get_input_embeddings().weight[rows].detach()
    info = describe_latents(backbone, tokenizer, latents, k=3, decoded_steps=["x", "y"])
    assert [i.nearest[0][0] for i in info] == tokenizer.convert_ids_to_tokens(rows.tolist())
    assert info[0].similarity[0] == pytest.approx(1.0, abs=1e-5) and info[1].decoded_step == "y"
    assert info[0].relative_norm == pytest.approx(info[0].norm / mean_embedding_norm(backbone))


def test_step_recovery_counts_exact_matches():
    assert step_recovery([["a b", "c"], ["d"]], [["a b ", "x"], ["d"]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        step_recovery([["a"]], [["a", "b"]])


def test_step_recovery_by_group_finds_where_a_chain_first_goes_wrong():
    decoded = [["1", "3", "6"], ["1", "9", "2"], ["1", "3", "7"], ["2", "3", "6"]]
    targets = [["1", "3", "6"], ["1", "3", "6"], ["1", "3", "6"], ["1", "3", "6 "]]
    chain = step_recovery_by_group(decoded, targets)
    assert chain["by_group"] == [0.75, 0.75, 0.5]
    assert chain["all_right"] == 0.25
    assert chain["first_wrong"] == [1, 1, 1]  # the second example's wrong third step is inherited, not counted
    with pytest.raises(ValueError, match="different numbers of groups"):
        step_recovery_by_group([["a"], ["a", "b"]], [["a"], ["a", "b"]])
    with pytest.raises(ValueError):
        step_recovery_by_group([["a", "b"]], [["a"]])
