"""The HF loading path, residual reads, the LM tail and the splice, on a tiny Llama saved locally."""
import pytest
import torch

from saelib.activations import Activations, harvest, keep_mask
from saelib.lm import LMTail, load_lm, residual_at
from saelib.metrics import Splice
from saelib.sae import SAE


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


def test_keep_mask_drops_position_zero_and_outliers():
    r = torch.ones(2, 5, 3)
    r[1, 3] *= 100
    k = keep_mask(r, outlier_factor=10)
    assert not k[:, 0].any() and not k[1, 3] and int(k.sum()) == 7


def test_harvest_is_cached_and_splice_identity_gives_zero_delta(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    acts = harvest(model=tiny_lm, layer=1, corpus="local:gensim-lee", split="eval", n_tokens=256, ctx_len=32,
                   progress=False)
    assert isinstance(acts, Activations) and acts.resid.shape == (8, 32, 32)
    assert len(acts) == acts.acts.shape[0] and not acts.keep[:, 0].any()
    again = harvest(model=tiny_lm, layer=1, corpus="local:gensim-lee", split="eval", n_tokens=256, ctx_len=32)
    assert torch.equal(again.resid, acts.resid) and again.meta["n_kept"] == len(acts)
    assert len(list((tmp_path / "activations").glob("*.safetensors"))) == 1

    splice = Splice(acts, max_seqs=4, batch_size=2)

    class Identity(SAE):
        def forward(self, x):
            return x

    res = splice.evaluate(Identity(32, 8, "relu"))
    assert res["delta_lm_loss"] == pytest.approx(0.0, abs=1e-6)
    assert res["ce_recovered"] == pytest.approx(1.0)
    assert splice.ce_zero > splice.ce_clean


def test_bad_model_and_split_names():
    with pytest.raises(ValueError, match="model must be"):
        load_lm("local:nope")
    with pytest.raises(ValueError, match="split must be one of"):
        harvest(split="test")
