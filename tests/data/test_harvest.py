"""Harvesting activations and LM-loss gradients (saelib.data.harvest), on a tiny Llama saved locally."""
import copy
import types

import pytest
import torch
import torch.nn.functional as F

from saelib.data.harvest import Activations, harvest, harvest_gradients, keep_mask, sequence_gradients
from saelib.data.lm import LMTail, load_lm, residual_at
from saelib.metrics.splice import Splice
from saelib.sae import SAE


def _tiny_acts(tiny_lm, layer=1, n_seq=3, T=12):
    model, _ = load_lm(tiny_lm)
    tokens = torch.randint(0, 64, (n_seq, T))
    resid = residual_at(model, tokens, layer).float()
    keep = keep_mask(resid, 10.0)
    keep[1, 5] = False  # one "outlier": rows must still align
    meta = dict(model=tiny_lm, layer=layer, corpus="test", split="eval", n_tokens=n_seq * T, ctx_len=T,
                outlier_factor=10.0, order="permuted")
    return Activations(resid, tokens, keep, meta)


def _seq_loss(tail, resid, tokens):
    logits = tail(resid)[:, 1:-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 2:].reshape(-1), reduction="sum")


def test_harvest_gradients_match_finite_differences_and_align(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    acts = _tiny_acts(tiny_lm)
    g = harvest_gradients(acts, batch_size=2, progress=False)
    assert g.shape == acts.acts.shape
    # row r of g belongs to acts.index[r]; check one coordinate by central differences in float64
    model64 = copy.deepcopy(load_lm(tiny_lm)[0]).double()
    for mod in model64.modules():  # HF's RMSNorm computes in float32: make it float64 for the FD check
        if type(mod).__name__.endswith("RMSNorm"):
            mod.forward = types.MethodType(
                lambda self, h: self.weight * h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon), mod)
    tail = LMTail(model64, 1)
    r = 13
    s, t = acts.index[r].tolist()
    resid = acts.resid[s: s + 1].double()
    tokens = acts.tokens[s: s + 1]
    j, eps = 3, 1e-5
    plus, minus = resid.clone(), resid.clone()
    plus[0, t, j] += eps
    minus[0, t, j] -= eps
    fd = (_seq_loss(tail, plus, tokens) - _seq_loss(tail, minus, tokens)) / (2 * eps)
    assert float(g[r, j]) == pytest.approx(float(fd), rel=1e-4, abs=1e-6)
    # the whole row equals autograd on that one sequence
    full = sequence_gradients(LMTail(load_lm(tiny_lm)[0], 1), acts.resid[s: s + 1], tokens)
    assert torch.allclose(g[r], full[0, t], atol=1e-6)
    # LM weights get no gradient, and the second call loads the cache
    assert all(p.grad is None for p in load_lm(tiny_lm)[0].parameters())
    assert torch.equal(harvest_gradients(acts, progress=False), g)
    assert len(list((tmp_path / "activations").glob("grad-*.safetensors"))) == 1
    sub = harvest_gradients(acts, max_seqs=2, progress=False)
    assert torch.equal(sub, g[: int(acts.keep[:2].sum())])
    with pytest.raises(ValueError, match="max_seqs"):
        harvest_gradients(acts, max_seqs=9, progress=False)


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
    # per-sequence CE sums reassemble the mean; evaluate carries them, paired with the clean ones
    assert res["ce_spliced_per_seq"].shape == (4,)
    assert res["ce_spliced_per_seq"].sum() / splice.n_tokens == pytest.approx(res["ce_spliced"])
    from saelib.metrics.reconstruction import evaluate
    sae = SAE(32, 64, "topk", k=4, seed=0)
    ev = evaluate(sae, acts, splice)
    assert ev.per_sequence.delta_lm.mean() == pytest.approx(ev.delta_lm_loss, rel=1e-6)
    assert ev.per_sequence.sse.shape == (8,) and ev.per_sequence.ce_spliced.shape == (4,)


@pytest.mark.parametrize("kw,error,match", [
    (dict(layer="15"), TypeError, "layer must be an int"),
    (dict(layer=-1), ValueError, "layer must be in"),
    (dict(ctx_len=1), ValueError, "ctx_len must be in"),
    (dict(batch_size=0), ValueError, "batch_size must be in"),
    (dict(outlier_factor=-1.0), ValueError, "outlier_factor must be in"),
    (dict(corpus="local:nope"), ValueError, "corpus must be one of"),
])
def test_harvest_checks_its_arguments_before_loading_the_lm(kw, error, match, monkeypatch):
    import saelib.data.harvest as h

    def no_lm(*a, **k):
        raise AssertionError("the LM was loaded before the arguments were checked")
    monkeypatch.setattr(h, "load_lm", no_lm)
    with pytest.raises(error, match=match):
        harvest(**{"model": "no/such-model", "split": "eval", "n_tokens": 256, "ctx_len": 32, **kw})


def test_an_unloadable_model_is_named(tmp_path):
    from saelib.data.lm import load_lm
    with pytest.raises(OSError, match=f"could not load the model '{tmp_path}'"):
        load_lm(str(tmp_path))                   # an empty local folder: no saved model


def test_permuted_harvest_is_a_prefix_of_a_larger_one_and_records_its_data(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    kw = dict(model=tiny_lm, layer=1, corpus="local:gensim-wiki+lee", split="eval", ctx_len=32, progress=False,
              order="permuted")
    small, whole = harvest(n_tokens=64, **kw), harvest(n_tokens=None, **kw)
    assert torch.equal(whole.tokens[:2], small.tokens) and torch.equal(whole.doc[:2], small.doc)
    assert len(whole.tokens) == whole.meta["split_sequences"]
    assert whole.meta["data"]["lee"]["documents"] == whole.meta["data"]["lee"]["split_documents"]
    assert whole.sequence_documents.shape == (len(whole.tokens),)
    with pytest.raises(ValueError, match="order must be one of"):
        harvest(n_tokens=64, **{**kw, "order": "shuffled"})
