"""The token layout the language-model methods share: pieces, padding, loss and completion.

Every method writes the target the way Coconut does (Hao et al. 2024, arXiv:2412.06769): the
written steps (if any), then the answer after a separator, then eos::

    question\\n [<bot> <latent>×k <eot>] [step\\n …] ### answer<eos>

The loss covers everything after the prompt (steps, separator, answer, eos); generated text
is cut at the last ``###`` to get the answer (:func:`extract_answer`). A batch row is a *left*
part (left-padded, so its last token — ``<bot>`` or the question's end — sits in the same
column for every row) and a *right* part (right-padded), so the latents of all rows start in
the same column and run through the latent loop together.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from latentcot.data.tokenizer import LatentTokens, add_latent_tokens
from latentcot.latent import generate_from_cache, latent_forward, lm_loss
from latentcot.latent.loop import Project, prefix_unlabelled
from latentcot.methods.base import Batch, ReasonOutput
from latentcot.models import resize_for_tokenizer

ANSWER_SEPARATOR = "###"


@dataclass
class Row:
    """One sequence: ``left`` is left-padded, ``right`` right-padded; ``labels`` cover ``right``."""

    left: list[int]
    right: list[int]
    labels: list[int]


# the pieces of every example are tokenised again each epoch (collate runs per batch); a bounded
# memo per tokenizer, keyed on its size too (adding tokens can change how a text splits), makes
# every epoch after the first a lookup: it took ~11% of a SIM-CoT training step on the demo
ENCODE_MEMO_SIZE = 1 << 16
_ENCODED: weakref.WeakKeyDictionary[PreTrainedTokenizerBase, OrderedDict[tuple[int, str], tuple[int, ...]]] = (
    weakref.WeakKeyDictionary()
)


def encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of ``text`` without bos/eos (memoised per tokenizer; a fresh list each call)."""
    memo = _ENCODED.get(tokenizer)
    if memo is None:
        memo = _ENCODED[tokenizer] = OrderedDict()
    key = (len(tokenizer), text)
    ids = memo.get(key)
    if ids is None:
        ids = memo[key] = tuple(tokenizer(text, add_special_tokens=False).input_ids)
        if len(memo) > ENCODE_MEMO_SIZE:
            memo.popitem(last=False)
    else:
        memo.move_to_end(key)
    return list(ids)


def question_ids(tokenizer: PreTrainedTokenizerBase, question: str) -> list[int]:
    return encode(tokenizer, question + "\n")


def steps_ids(tokenizer: PreTrainedTokenizerBase, steps: Sequence[str]) -> list[int]:
    """The written steps, each tokenised on its own (as Coconut does) and concatenated."""
    return [i for step in steps for i in encode(tokenizer, step + "\n")]


def answer_ids(tokenizer: PreTrainedTokenizerBase, answer: str) -> list[int]:
    """``### answer`` then eos: what every method learns to write last."""
    return encode(tokenizer, f"{ANSWER_SEPARATOR} {answer}") + [tokenizer.eos_token_id]


def extract_answer(text: str) -> str:
    """The text after the last ``###`` (the whole text, stripped, when there is none)."""
    return text.rsplit(ANSWER_SEPARATOR, 1)[-1].strip()


def prepare_backbone(
    backbone: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, names: str = "default", init_token: str = ""
) -> LatentTokens:
    """Add the latent/pause tokens (once) and initialise their embeddings from ``init_token``
    (eos when empty), as Coconut does; idempotent, so reloading a checkpoint changes nothing."""
    tokens = add_latent_tokens(tokenizer, names)
    resize_for_tokenizer(backbone, tokenizer, init_from=init_token or tokenizer.eos_token, new_token_ids=tokens.added)
    return tokens


def pad_rows(rows: Sequence[Row], pad_id: int, device: torch.device | None = None) -> Batch:
    """Left-pad the left parts, right-pad the right parts.

    Returns:
        ``input_ids``, ``attention_mask`` and ``labels`` (-100 on prompt and padding), each
        (batch, seq) long.
    """
    width_left = max(len(r.left) for r in rows)
    width_right = max(len(r.right) for r in rows)
    ids, mask, labels = [], [], []
    for r in rows:
        pad_left, pad_right = width_left - len(r.left), width_right - len(r.right)
        ids.append([pad_id] * pad_left + r.left + r.right + [pad_id] * pad_right)
        mask.append([0] * pad_left + [1] * (len(r.left) + len(r.right)) + [0] * pad_right)
        labels.append([-100] * (pad_left + len(r.left)) + r.labels + [-100] * pad_right)
    as_tensor = lambda x: torch.tensor(x, dtype=torch.long, device=device)  # noqa: E731
    return {"input_ids": as_tensor(ids), "attention_mask": as_tensor(mask), "labels": as_tensor(labels)}


def sft_loss(
    backbone: PreTrainedModel, batch: Batch, latent_id: int | None = None, project: Project | None = None
) -> torch.Tensor:
    """Cross-entropy on the labelled tokens, running ``<latent>`` positions through the latent loop."""
    ids = batch["input_ids"]
    latent_mask = ids == latent_id if latent_id is not None else torch.zeros_like(ids, dtype=torch.bool)
    out = latent_forward(backbone, backbone.get_input_embeddings()(ids), batch["attention_mask"], latent_mask, project,
                         prefix_states=not prefix_unlabelled(latent_mask, batch["labels"]))
    return lm_loss(backbone, out.hidden_states, batch["labels"])


@torch.no_grad()
def complete(
    backbone: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Row],
    max_new_tokens: int,
    latent_id: int | None = None,
    project: Project | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> ReasonOutput:
    """Batched inference: run the prompts (latents included) through the loop, then decode.

    Args:
        prompts: rows whose right parts all have the same length (so every prompt ends in the
            last column); labels are ignored.
        max_new_tokens, temperature, top_p, generator: see
            :func:`latentcot.latent.generate_from_cache`.

    Returns:
        A :class:`ReasonOutput`; forward passes count the prompt passes and the decode steps.
    """
    device = backbone.device
    batch = pad_rows(prompts, tokenizer.pad_token_id, device)
    ids = batch["input_ids"]
    latent_mask = ids == latent_id if latent_id is not None else torch.zeros_like(ids, dtype=torch.bool)
    out = latent_forward(backbone, backbone.get_input_embeddings()(ids), batch["attention_mask"], latent_mask, project,
                         last_only=True)
    gen = generate_from_cache(
        backbone, out.cache, out.attention_mask, out.hidden_states[:, -1], max_new_tokens,
        tokenizer.eos_token_id, temperature, top_p, generator,
    )  # fmt: skip
    texts = tokenizer.batch_decode(gen.rows(), skip_special_tokens=True)
    return ReasonOutput(
        texts=texts,
        answers=[extract_answer(t) for t in texts],
        num_generated_tokens=gen.num_tokens.tolist(),
        num_forward_passes=out.num_forward_passes + gen.num_forward_passes,
        latents=out.latents if out.latents.shape[1] else None,
    )
