"""Tokenizers: a word-level one trained on the task's data for from-scratch models, the model's
own for pretrained ones, and the latent special tokens added to either in one place.

The word-level tokenizer (``tokenizers`` WordLevel model) splits on whitespace and punctuation,
so ``"Every lempus."`` becomes ``▁Every ▁lempus .``: the ``▁`` marks a preceding space
(Metaspace), which lets ``decode`` give back the text exactly (up to runs of whitespace, which
are normalised to one space) — answer extraction compares decoded text with gold answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from latentcot.data.record import ReasoningExample
from latentcot.errors import LatentCotError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"

# Our names and the names of the Coconut reference code (Hao et al. 2024, arXiv:2412.06769).
LATENT_TOKEN_NAMES = {
    "default": ("<bot>", "<latent>", "<eot>"),
    "coconut": ("<|start-latent|>", "<|latent|>", "<|end-latent|>"),
}
PAUSE = "<pause>"  # Goyal et al. 2023, "Think before you speak" (arXiv:2310.02226)


@dataclass(frozen=True)
class LatentTokens:
    """Ids of the special tokens the methods place in a sequence.

    Attributes:
        bot: begin-of-thought, the last position of the prefix before the latents.
        latent: placeholder for one continuous thought (its embedding is replaced in the loop).
        eot: end-of-thought, the first written position after the latents.
        pause: a learnable pause token (the ``pause`` baseline).
        added: ids that did not exist before this call (their embeddings need initialising).
    """

    bot: int
    latent: int
    eot: int
    pause: int
    added: tuple[int, ...] = ()


def _word_level_tokenizer(split_punctuation: bool = True) -> Tokenizer:
    tok = Tokenizer(models.WordLevel(unk_token=UNK))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    splitters: list[pre_tokenizers.PreTokenizer] = [
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    ]
    if split_punctuation:
        splitters.append(pre_tokenizers.Punctuation(behavior="isolated"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(splitters)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    return tok


def example_texts(examples: Iterable[ReasoningExample]) -> Iterable[str]:
    """Every piece of text a method may tokenise from a record (question, steps, answer)."""
    for ex in examples:
        yield ex.question
        yield from ex.steps
        yield ex.answer


def train_word_tokenizer(
    examples: Iterable[ReasoningExample],
    extra_texts: Sequence[str] = ("###",),
    min_frequency: int = 1,
    split_punctuation: bool = True,
) -> PreTrainedTokenizerFast:
    """Train a word-level tokenizer on records and wrap it as a ``transformers`` fast tokenizer.

    Args:
        examples: the records whose questions, steps and answers make up the vocabulary.
        extra_texts: more text to cover (e.g. the answer separator the methods write).
        min_frequency: words seen fewer times map to ``<unk>``.
        split_punctuation: punctuation is a token of its own (``lempus.`` → ``lempus`` ``.``); off,
            words split on whitespace only, so symbols such as ``[Q]`` or ``|`` stay one token
            each (the graph task, as the superposition reference's symbol tokenizer does).

    Returns:
        A ``PreTrainedTokenizerFast`` with ``<pad> <bos> <eos> <unk>``; save it with
        ``save_pretrained`` and load it with :func:`load_tokenizer`. Latent tokens are added by
        :func:`add_latent_tokens`.
    """
    tok = _word_level_tokenizer(split_punctuation)
    trainer = trainers.WordLevelTrainer(special_tokens=[PAD, BOS, EOS, UNK], min_frequency=min_frequency)

    def texts() -> Iterable[str]:
        yield from example_texts(examples)
        yield from extra_texts

    tok.train_from_iterator(texts(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK)


def load_tokenizer(name_or_path: str | Path) -> PreTrainedTokenizerBase:
    """Load a saved or pretrained tokenizer (``AutoTokenizer``); a missing pad token becomes eos.

    Args:
        name_or_path: a folder written by ``save_pretrained`` or a Hugging Face Hub name.

    Raises:
        LatentCotError: nothing loadable there.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(name_or_path))
    except (OSError, ValueError) as err:
        raise LatentCotError(f"tokenizer '{name_or_path}': cannot load ({str(err).splitlines()[0]})") from None
    if tokenizer.pad_token is None:
        # GPT-2 and Llama ship without a pad token; padding is always masked, so eos is safe.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def add_latent_tokens(tokenizer: PreTrainedTokenizerBase, names: str = "default") -> LatentTokens:
    """Add ``<bot> <latent> <eot>`` (or the Coconut names) and ``<pause>`` as special tokens.

    The one place latentcot adds tokens; calling it again adds nothing and returns the same ids.

    Args:
        tokenizer: modified in place.
        names: ``"default"`` or ``"coconut"`` (``<|start-latent|>``, ``<|latent|>``, ``<|end-latent|>``).

    Returns:
        The token ids; ``added`` lists the new ones (resize the model, see
        :func:`latentcot.models.resize_for_tokenizer`).
    """
    if names not in LATENT_TOKEN_NAMES:
        raise LatentCotError(f"latent token names '{names}': must be one of {', '.join(LATENT_TOKEN_NAMES)}")
    wanted = [*LATENT_TOKEN_NAMES[names], PAUSE]
    vocab = tokenizer.get_vocab()
    missing = [t for t in wanted if t not in vocab]
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in missing], special_tokens=True)
    vocab = tokenizer.get_vocab()
    bot, latent, eot, pause = (vocab[t] for t in wanted)
    added = tuple(vocab[t] for t in missing)
    return LatentTokens(bot, latent, eot, pause, added=added)
