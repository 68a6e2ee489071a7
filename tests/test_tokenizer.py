"""Word-level tokenizer: exact decoding, punctuation split, save/load, latent tokens added once."""

import pytest

from latentcot.data.record import ReasoningExample
from latentcot.data.tokenizer import (
    LATENT_TOKEN_NAMES,
    PAUSE,
    add_latent_tokens,
    load_tokenizer,
    train_word_tokenizer,
)
from latentcot.errors import LatentCotError

EXAMPLES = [
    ReasoningExample("Every lempus is a zumpus. Is Tom a zumpus or a wumpus?", ["Tom is a lempus."], "Tom is a zumpus."),
    ReasoningExample("1 3 4 * 5 6 7", ["5 6 2 + 0 1 4 1"], "5 7 6 7 0 8"),
]


def test_words_and_punctuation_split_and_decode_exactly():
    tok = train_word_tokenizer(EXAMPLES)
    ids = tok("Tom is a lempus.", add_special_tokens=False).input_ids
    assert tok.convert_ids_to_tokens(ids) == ["▁Tom", "▁is", "▁a", "▁lempus", "."]
    for text in ["Every lempus is a zumpus. Is Tom a zumpus or a wumpus?", "5 7 6 7 0 8", "### Tom is a zumpus."]:
        assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text


def test_unknown_words_map_to_unk():
    tok = train_word_tokenizer(EXAMPLES)
    assert tok("Tom is a blorpus", add_special_tokens=False).input_ids[-1] == tok.unk_token_id


def test_save_load_round_trip(tmp_path):
    tok = train_word_tokenizer(EXAMPLES)
    ids = add_latent_tokens(tok)
    tok.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert loaded.get_vocab() == tok.get_vocab()
    assert (loaded.pad_token_id, loaded.eos_token_id, loaded.unk_token_id) == (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id)
    text = "Is Tom a zumpus? <bot><latent><latent><eot> ### Tom is a zumpus."
    assert loaded(text, add_special_tokens=False).input_ids == tok(text, add_special_tokens=False).input_ids
    again = add_latent_tokens(loaded)
    assert again.added == () and (again.bot, again.latent, again.eot, again.pause) == (ids.bot, ids.latent, ids.eot, ids.pause)


@pytest.mark.parametrize("names", list(LATENT_TOKEN_NAMES))
def test_latent_tokens_are_special_single_tokens(names):
    tok = train_word_tokenizer(EXAMPLES)
    size = len(tok)
    ids = add_latent_tokens(tok, names)
    assert len(tok) == size + 4 and sorted(ids.added) == list(range(size, size + 4))
    bot, latent, eot = LATENT_TOKEN_NAMES[names]
    encoded = tok(f"Tom {bot}{latent}{latent}{eot} {PAUSE} is", add_special_tokens=False).input_ids
    assert encoded[1:6] == [ids.bot, ids.latent, ids.latent, ids.eot, ids.pause]
    assert tok.decode(encoded, skip_special_tokens=True) == "Tom is"


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(LatentCotError, match="names 'bogus'"):
        add_latent_tokens(train_word_tokenizer(EXAMPLES), "bogus")
    with pytest.raises(LatentCotError, match="no-such-tokenizer"):
        load_tokenizer(tmp_path / "no-such-tokenizer")
