"""Looking inside continuous thoughts: what each latent "says", and whether they collapse.

Per example: each latent's nearest vocabulary tokens through the LM head (Coconut's probe), its
norm and its cosine similarity to the other latents. Over a data set: the "latent instability"
SIM-CoT describes (Wei et al. 2025, arXiv:2509.20317, Section 3) as numbers —

* mean pairwise cosine similarity of an example's latents (1 = every latent the same vector),
* effective rank (Roy & Vetterli 2007): ``exp(entropy(σ / Σσ))`` of the singular values of the
  example's (latents × hidden) matrix — 1 when all latents are parallel, ``k`` when they are
  orthogonal with equal norms,
* latent norm relative to the mean token-embedding norm (latents drifting far off the scale of
  the inputs the model was trained on),

and step recovery: the fraction of latents whose decoded step equals the true step exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@torch.no_grad()
def nearest_tokens(
    backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, latents: torch.Tensor, k: int = 5
) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable vocabulary tokens of each latent read through the LM head.

    This is the Coconut paper's probe (Hao et al. 2024, Fig. 5): a continuous thought is the last
    hidden state, so projecting it with the output embedding gives the distribution the model
    would have written had it been asked to write a token there.

    Args:
        backbone: supplies ``get_output_embeddings()``.
        tokenizer: maps ids back to strings.
        latents: (steps, hidden) thoughts of one example.
        k: tokens per latent.

    Returns:
        Per latent, ``k`` pairs (token, probability), most probable first.
    """
    head = backbone.get_output_embeddings()
    probs = torch.softmax(head(latents.to(head.weight.dtype)).float(), -1)  # (steps, vocab)
    top = probs.topk(k, -1)
    return [
        [(str(tokenizer.convert_ids_to_tokens(int(i))), float(p)) for p, i in zip(ps, ids)]
        for ps, ids in zip(top.values, top.indices)
    ]


def cosine_matrix(latents: torch.Tensor) -> torch.Tensor:
    """(k, k) cosine similarities between the rows of ``latents`` (k, hidden)."""
    unit = F.normalize(latents.float(), dim=-1)
    return unit @ unit.T


def mean_pairwise_cosine(latents: torch.Tensor) -> float:
    """Mean cosine similarity over the k·(k-1) ordered pairs of distinct latents (NaN when k < 2)."""
    k = latents.shape[0]
    if k < 2:
        return math.nan
    sims = cosine_matrix(latents)
    return float((sims.sum() - sims.diagonal().sum()) / (k * (k - 1)))


def effective_rank(latents: torch.Tensor) -> float:
    """``exp`` of the entropy of the normalised singular values of (k, hidden) ``latents``.

    Roy & Vetterli (2007), "The effective rank: a measure of effective dimensionality".
    """
    s = torch.linalg.svdvals(latents.double())  # (k,)
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def mean_embedding_norm(backbone: PreTrainedModel) -> float:
    """Mean L2 norm of the rows of the input embedding matrix (the scale of real inputs)."""
    weight = cast(torch.Tensor, backbone.get_input_embeddings().weight)
    return float(weight.detach().float().norm(dim=-1).mean())


@dataclass
class LatentInfo:
    """One latent of one example: nearest tokens, norm, similarity to every latent (itself = 1)."""

    index: int
    norm: float
    relative_norm: float
    nearest: list[tuple[str, float]]
    similarity: list[float]
    decoded_step: str | None = None


@torch.no_grad()
def describe_latents(
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    latents: torch.Tensor,
    k: int = 5,
    decoded_steps: Sequence[str] | None = None,
) -> list[LatentInfo]:
    """Everything ``latentcot inspect`` shows for one example's latents.

    Args:
        backbone: the model the latents came from.
        tokenizer: its tokenizer.
        latents: (steps, hidden) thoughts of one example.
        k: nearest tokens per latent.
        decoded_steps: the text a SIM-CoT step decoder writes per latent, when there is one
            (one entry per latent; repeat a group's text for each of its latents).

    Returns:
        One :class:`LatentInfo` per latent.
    """
    near = nearest_tokens(backbone, tokenizer, latents, k)
    sims = cosine_matrix(latents).tolist()
    norms = latents.float().norm(dim=-1).tolist()
    scale = mean_embedding_norm(backbone)
    return [
        LatentInfo(
            i,
            norms[i],
            norms[i] / scale,
            near[i],
            sims[i],
            None if decoded_steps is None else decoded_steps[i],
        )
        for i in range(latents.shape[0])
    ]


@dataclass
class CollapseStats:
    """Collapse diagnostics averaged over examples (see the module docstring)."""

    n_examples: int
    num_latents: int
    mean_cosine: float
    effective_rank: float
    relative_norm: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def collapse_stats(latents: torch.Tensor, embedding_norm: float) -> CollapseStats:
    """Per-example mean pairwise cosine, effective rank and relative norm, averaged.

    Args:
        latents: (examples, k, hidden) thoughts, every example with the same k.
        embedding_norm: :func:`mean_embedding_norm` of the model.

    Returns:
        A :class:`CollapseStats` (``mean_cosine`` NaN when k < 2).
    """
    n, k, _ = latents.shape
    cos = [mean_pairwise_cosine(x) for x in latents]
    rank = [effective_rank(x) for x in latents]
    norm = float(latents.float().norm(dim=-1).mean()) / embedding_norm
    return CollapseStats(n, k, sum(cos) / n, sum(rank) / n, norm)


@torch.no_grad()
def collect_latents(
    method: Any, questions: Sequence[str], batch_size: int = 64, **options: Any
) -> torch.Tensor:
    """(questions, k, hidden) thoughts a method's ``reason`` produces (greedy; 1 answer token)."""
    pieces = []
    for start in range(0, len(questions), batch_size):
        out = method.reason(list(questions[start : start + batch_size]), max_new_tokens=1, **options)
        pieces.append(out.latents.float().cpu())
    return torch.cat(pieces)


def step_recovery(decoded: Sequence[Sequence[str]], targets: Sequence[Sequence[str]]) -> float:
    """Fraction of latent groups whose decoded step equals the true step exactly (stripped).

    Args:
        decoded: per example, the decoder's text per latent group.
        targets: per example, the true text per group (aligned the same way).
    """
    pairs = [
        (d.strip(), t.strip())
        for ds, ts in zip(decoded, targets, strict=True)
        for d, t in zip(ds, ts, strict=True)
    ]
    return sum(d == t for d, t in pairs) / max(1, len(pairs))


def step_recovery_by_group(decoded: Sequence[Sequence[str]], targets: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Where a chain of decoded steps goes wrong: per latent group, the fraction of examples whose
    group decodes exactly (stripped); the fraction with every group right; and, per group, how many
    examples go wrong there first (the errors a later step inherits are not counted again).

    Args:
        decoded: per example, the decoder's text per latent group (the same count for every example).
        targets: per example, the true text per group (aligned the same way).

    Raises:
        ValueError: the examples do not all have the same number of groups, or a target list differs
            in length from its decoded list.
    """
    counts = {len(ds) for ds in decoded}
    if len(counts) > 1:
        raise ValueError(f"step_recovery_by_group: examples have different numbers of groups {sorted(counts)}")
    groups = counts.pop() if counts else 0
    right = [0] * groups
    first_wrong = [0] * groups
    all_right = 0
    for ds, ts in zip(decoded, targets, strict=True):
        ok = [d.strip() == t.strip() for d, t in zip(ds, ts, strict=True)]
        for g, good in enumerate(ok):
            right[g] += good
        if all(ok):
            all_right += 1
        else:
            first_wrong[ok.index(False)] += 1
    n = max(1, len(decoded))
    return {"by_group": [r / n for r in right], "all_right": all_right / n, "first_wrong": first_wrong}


@torch.no_grad()
def decoded_steps(
    step_decoder: Any, latents: torch.Tensor, examples: Sequence[Any], batch_size: int = 64
) -> tuple[list[list[str]], list[list[str]]]:
    """Per example, the text a SIM-CoT decoder writes for each latent group and the text due there.

    Args:
        step_decoder: a SIM-CoT method with its decoder (``decode_steps``, ``target_texts``, ``c``).
        latents: (examples, k, hidden) thoughts, e.g. from :func:`collect_latents`.
        examples: the records the thoughts are of (``steps``, ``answer``).
        batch_size: rows per ``decode_steps`` call.
    """
    device = next(step_decoder.parameters()).device
    decoded: list[list[str]] = []
    for start in range(0, len(examples), batch_size):
        decoded += step_decoder.decode_steps(latents[start : start + batch_size].to(device))
    groups = latents.shape[1] // step_decoder.c
    return decoded, [step_decoder.target_texts(ex.steps, groups, ex.answer) for ex in examples]


@torch.no_grad()
def dataset_diagnostics(
    method: Any, examples: Sequence[Any], batch_size: int = 64, step_decoder: Any = None, **options: Any
) -> dict[str, Any]:
    """Collapse diagnostics (and step recovery) of a latent method over records.

    Args:
        method: a latent method (its ``reason`` returns ``latents``; ``backbone`` gives the scale).
        examples: records (``question``, ``steps``).
        batch_size: questions per ``reason`` call.
        step_decoder: a SIM-CoT method with its decoder (``decode_steps``, ``target_texts``, ``c``)
            to also measure step recovery; None to skip it.
        **options: passed to ``reason`` (e.g. ``n_latents``).

    Returns:
        :meth:`CollapseStats.as_dict`; with a decoder also ``step_recovery``, and from
        :func:`step_recovery_by_group` ``step_recovery_by_group``, ``steps_all_right`` and
        ``first_wrong_group``.
    """
    latents = collect_latents(method, [ex.question for ex in examples], batch_size, **options)
    result = collapse_stats(latents, mean_embedding_norm(method.backbone)).as_dict()
    if step_decoder is not None:
        decoded, targets = decoded_steps(step_decoder, latents, examples, batch_size)
        result["step_recovery"] = step_recovery(decoded, targets)
        chain = step_recovery_by_group(decoded, targets)
        result["step_recovery_by_group"] = chain["by_group"]
        result["steps_all_right"] = chain["all_right"]
        result["first_wrong_group"] = chain["first_wrong"]
    return result


SUPERPOSITION_GROUPS = ("optimal", "frontier", "reachable", "unreachable", "mirror")


@torch.no_grad()
def superposition(method: Any, examples: Sequence[Any], batch_size: int = 64, **options: Any) -> dict[str, Any]:
    """How much each continuous thought holds each group of graph nodes (Zhu et al. 2025,
    "Reasoning by Superposition", arXiv:2505.12514, Fig. 5 of the reference notebook).

    For thought ``i`` of a question with at least ``i`` hops, the inner product of the thought with
    the input embedding of every node, grouped by :func:`latentcot.data.graph.node_groups`
    (``optimal`` ⊆ ``frontier`` ⊆ ``reachable``; ``unreachable`` the rest; ``mirror`` ⊆
    ``unreachable``, the nodes ``i`` steps below another person) and averaged over all (question,
    node) pairs of the group, as the reference pools them.

    Args:
        method: a latent method trained on ``prosqa_graph`` (node ids are single tokens).
        examples: records in graph form (:func:`latentcot.data.graph.to_graph_examples`).
        batch_size: questions per ``reason`` call.
        **options: passed to ``reason`` (e.g. ``n_latents``).

    Returns:
        ``{"thoughts": [{"thought": i, "questions": n, "mean": {group: value}, "count": {group: n}}, …],
        "per_question": [[{group: mean or None} per thought] per question]}``.
    """
    from latentcot.data.graph import graph_of, node_groups

    latents = collect_latents(method, [ex.question for ex in examples], batch_size, **options)  # (n, k, hidden)
    embedding = method.backbone.get_input_embeddings().weight.float().cpu()
    sums = [dict.fromkeys(SUPERPOSITION_GROUPS, 0.0) for _ in range(latents.shape[1])]
    counts = [dict.fromkeys(SUPERPOSITION_GROUPS, 0) for _ in range(latents.shape[1])]
    questions = [0] * latents.shape[1]
    per_question: list[list[dict[str, float | None]]] = []
    for ex, thoughts in zip(examples, latents):
        graph = graph_of(ex)
        token = {v: method.tokenizer.convert_tokens_to_ids(method.tokenizer.tokenize(str(v)))[0]
                 for v in range(len(graph.symbols))}
        rows: list[dict[str, float | None]] = []
        for i, thought in enumerate(thoughts, start=1):
            if i > ex.meta["hops"]:
                break
            questions[i - 1] += 1
            scores = embedding @ thought  # (vocab,)
            row: dict[str, float | None] = {}
            for group, nodes in node_groups(graph, i).items():
                values = [float(scores[token[v]]) for v in nodes]
                sums[i - 1][group] += sum(values)
                counts[i - 1][group] += len(values)
                row[group] = sum(values) / len(values) if values else None
            rows.append(row)
        per_question.append(rows)
    thoughts_out = [
        {"thought": i + 1, "questions": questions[i], "count": counts[i],
         "mean": {g: sums[i][g] / counts[i][g] if counts[i][g] else math.nan for g in SUPERPOSITION_GROUPS}}
        for i in range(latents.shape[1]) if questions[i]
    ]
    return {"thoughts": thoughts_out, "per_question": per_question}


def plot_superposition(rows: Sequence[dict[str, float | None]], path: str, title: str = "") -> None:
    """Bars per thought: the mean inner product with each node group (one question's ``per_question``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(rows), 3.2))
    width = 0.8 / len(SUPERPOSITION_GROUPS)
    for j, group in enumerate(SUPERPOSITION_GROUPS):
        values = [math.nan if row[group] is None else float(row[group]) for row in rows]  # type: ignore[arg-type]
        offset = (j - (len(SUPERPOSITION_GROUPS) - 1) / 2) * width
        ax.bar([i + offset for i in range(len(rows))], values, width, label=group)
    ax.set_xticks(range(len(rows)), [f"thought {i + 1}" for i in range(len(rows))])
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("inner product with node embedding")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
