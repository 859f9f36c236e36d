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
