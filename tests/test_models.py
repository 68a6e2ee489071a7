"""Presets, loading a locally saved Hugging Face model by path, and embedding resizing."""

import pytest
import torch

from latentcot.data.record import ReasoningExample
from latentcot.data.tokenizer import add_latent_tokens, train_word_tokenizer
from latentcot.errors import LatentCotError
from latentcot.models import PRESETS, build_causal_lm, build_preset, load_backbone, resize_for_tokenizer

torch.set_num_threads(1)  # tiny models: one thread is fastest on a shared 2-core machine


@pytest.mark.parametrize(
    "name,layers,width", [("micro", 2, 64), ("micro-llama", 2, 64), ("tiny", 4, 256), ("tiny-llama", 4, 256)]
)
def test_presets_have_their_sizes(name, layers, width):
    model = build_preset(name, vocab_size=50)
    assert model.config.num_hidden_layers == layers and model.config.hidden_size == width
    assert model.get_input_embeddings().weight.shape == (50, width)
    assert model.get_output_embeddings().weight.shape == (50, width)


def test_every_preset_runs_a_forward_pass():
    for name in PRESETS:
        if name.startswith("micro"):
            logits = build_preset(name, 30)(torch.tensor([[1, 2, 3]])).logits
            assert logits.shape == (1, 3, 30) and torch.isfinite(logits).all()


def test_bad_names_and_shapes_raise():
    with pytest.raises(LatentCotError, match="unknown"):
        build_preset("huge", 10)
    with pytest.raises(LatentCotError, match="vocab_size"):
        load_backbone("micro")
    with pytest.raises(LatentCotError, match="divisible"):
        build_causal_lm("gpt2", 10, n_layer=1, hidden=63, n_head=2)


@pytest.mark.parametrize("preset", ["micro", "micro-llama"])
def test_load_a_locally_saved_model_by_path(tmp_path, preset):
    torch.manual_seed(0)
    model = build_preset(preset, 30).eval()
    model.save_pretrained(tmp_path / "m")
    loaded = load_backbone(tmp_path / "m").eval()
    assert type(loaded) is type(model)
    ids = torch.tensor([[4, 5, 6, 7]])
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits, atol=0, rtol=0)


def test_load_missing_path_raises(tmp_path):
    with pytest.raises(LatentCotError, match="not a preset"):
        load_backbone(tmp_path / "nothing-here")


@pytest.mark.parametrize("tie", [True, False])
def test_resize_initialises_new_tokens_from_an_existing_one(tie):
    tok = train_word_tokenizer([ReasoningExample("Tom is a lempus.", [], "yes")])
    model = build_causal_lm("llama", len(tok), n_layer=1, hidden=32, n_head=2, tie_word_embeddings=tie)
    old_in = model.get_input_embeddings().weight.detach().clone()
    ids = add_latent_tokens(tok)
    resize_for_tokenizer(model, tok, init_from="▁lempus", new_token_ids=ids.added)
    source = tok.convert_tokens_to_ids("▁lempus")
    for layer in (model.get_input_embeddings(), model.get_output_embeddings()):
        assert layer.weight.shape[0] == len(tok)
        for new in ids.added:
            assert torch.equal(layer.weight[new], layer.weight[source])
    assert torch.equal(model.get_input_embeddings().weight[: len(old_in)], old_in)
    before = model.get_input_embeddings().weight.detach().clone()
    resize_for_tokenizer(model, tok, init_from="▁lempus", new_token_ids=add_latent_tokens(tok).added)
    assert torch.equal(model.get_input_embeddings().weight, before)  # second call: nothing new


def test_resize_rejects_an_unknown_init_token():
    tok = train_word_tokenizer([ReasoningExample("Tom is a lempus.", [], "yes")])
    model = build_preset("micro", len(tok))
    add_latent_tokens(tok)
    with pytest.raises(LatentCotError, match="init_from token"):
        resize_for_tokenizer(model, tok, init_from="▁blorpus")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inplace_gelu_new_gives_the_same_bits_and_gradients(dtype):
    """The in-place ``gelu_new`` is a speed change only: the same bits as transformers' module
    without autograd (over a wide range, including large and tiny values), and the same output
    and gradient when a gradient flows."""
    from transformers.activations import NewGELUActivation

    from latentcot.models.activations import InPlaceNewGELU

    torch.manual_seed(0)
    x = torch.cat([torch.randn(100_000) * 6, torch.randn(1000) * 1e4, torch.randn(1000) * 1e-6]).to(dtype)
    reference, fast = NewGELUActivation(), InPlaceNewGELU()
    with torch.no_grad():
        before = x.clone()
        assert torch.equal(fast(x), reference(x))
        assert torch.equal(x, before)  # the input is not written
    # with autograd: the same output and gradient, bit for bit, when x comes out of a layer (as
    # in a model) and the loss weights every element differently
    weight = torch.randn(x.shape[0]).to(dtype)
    grads = []
    for module in (reference, fast):
        leaf = x.clone().requires_grad_()
        out = module(leaf * 1.5)
        (out * weight).sum().backward()
        grads.append((out.detach(), leaf.grad))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_gpt2_presets_take_the_fused_tanh_gelu():
    """The GPT-2 presets use ``gelu_pytorch_tanh``: one fused operation for the same function as
    GPT-2's ``gelu_new`` (equal to float32 rounding), saved in the config so a reload is the same."""
    from transformers.activations import NewGELUActivation, PytorchGELUTanh

    model = build_preset("micro", 30)
    assert model.config.activation_function == "gelu_pytorch_tanh"
    acts = [m.mlp.act for m in model.transformer.h]
    assert acts and all(type(a) is PytorchGELUTanh for a in acts)
    x = torch.linspace(-8, 8, 4001)
    assert torch.allclose(acts[0](x), NewGELUActivation()(x), atol=1e-6, rtol=0)
    assert build_causal_lm("gpt2", 30, n_layer=1, hidden=8, n_head=2).config.activation_function == "gelu_new"


def test_loaded_gpt2_models_run_the_inplace_gelu(tmp_path):
    """A ``gelu_new`` model (GPT-2's own activation) gets the in-place activation when loaded, and its
    outputs and gradients are bit-identical to the same weights with transformers' activation."""
    from transformers import AutoModelForCausalLM
    from transformers.activations import NewGELUActivation

    from latentcot.models.activations import InPlaceNewGELU

    build_causal_lm("gpt2", 30, n_layer=2, hidden=64, n_head=2).save_pretrained(tmp_path / "m")
    loaded = load_backbone(tmp_path / "m")
    acts = [m for m in loaded.modules() if isinstance(m, NewGELUActivation)]
    assert acts and all(type(m) is InPlaceNewGELU for m in acts)
    plain = AutoModelForCausalLM.from_config(loaded.config).eval()  # transformers' modules, same weights
    plain.load_state_dict(loaded.state_dict())
    assert any(type(m) is NewGELUActivation for m in plain.modules())
    ids = torch.randint(0, 30, (3, 17))
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, plain(ids).logits)
    # training: the same loss and the same gradient for every weight, bit for bit
    for m in (loaded, plain):
        m.train()
        m(ids, labels=ids).loss.backward()
    for (name, a), (_, b) in zip(loaded.named_parameters(), plain.named_parameters()):
        assert torch.equal(a.grad, b.grad), name
