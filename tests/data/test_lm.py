"""The HF loading path, residual reads and the LM tail (saelib.data.lm), on a tiny Llama saved locally."""
import pytest
import torch

from saelib.data.harvest import harvest
from saelib.data.lm import LMTail, load_lm, residual_at


def test_load_local_model_and_residual_matches_hidden_states(tiny_lm):
    model, tok = load_lm(tiny_lm)
    ids = tok("the cat sat on the mat the dog ran", return_tensors="pt").input_ids
    hs = model(ids, output_hidden_states=True).hidden_states
    for layer in (0, 2):
        assert torch.allclose(residual_at(model, ids, layer), hs[layer + 1], atol=1e-5)
    with pytest.raises(ValueError, match="layer must be in"):
        residual_at(model, ids, 9)


def test_tail_reproduces_full_logits(tiny_lm):
    model, tok = load_lm(tiny_lm)
    ids = torch.randint(0, 64, (3, 17))
    full = model(ids).logits
    assert torch.allclose(LMTail(model, 1)(residual_at(model, ids, 1)), full, atol=1e-4)


def test_bad_model_and_split_names():
    with pytest.raises(ValueError, match="model must be"):
        load_lm("local:nope")
    with pytest.raises(ValueError, match="split must be one of"):
        harvest(split="test")


def test_logit_lens_through_the_folded_unembedding_is_the_lm_head_of_the_gained_direction(tiny_lm):
    from saelib.data.lm import logit_lens, unembedding

    model, _ = load_lm(tiny_lm)
    gain = model.model.norm.weight.detach().clone()
    with torch.no_grad():
        model.model.norm.weight.copy_(torch.rand(32) + 0.5)   # a non-trivial gain (init is all ones)
    try:
        W_U = unembedding(model)
        assert W_U.shape == (64, 32) and not W_U.requires_grad
        d = torch.randn(5, 32) * 3
        unit = d / d.norm(dim=1, keepdim=True)
        with torch.no_grad():
            expected = model.lm_head(unit * model.model.norm.weight)
        assert torch.allclose(logit_lens(d, W_U), expected, atol=1e-5)
        assert torch.equal(logit_lens(torch.zeros(1, 32), W_U), torch.zeros(1, 64))
        with pytest.raises(ValueError, match="directions must be"):
            logit_lens(torch.randn(5, 31), W_U)
    finally:
        with torch.no_grad():
            model.model.norm.weight.copy_(gain)   # load_lm caches the model for the session
