"""g-SAE (Olmo et al. 2024): LM-loss gradients at the hook, and the gradient-guided TopK sparsifier."""
import copy
import types

import pytest
import torch
import torch.nn.functional as F

from saelib import SAE, TrainConfig, train_sae
from saelib.activations import Activations, keep_mask
from saelib.gradient_sae import (GradientTopK, default_beta, feed_gradients, harvest_gradients,
                                 sequence_gradients, steering_effect, with_gradients)
from saelib.lm import LMTail, load_lm, residual_at
from saelib.sparsity import TopK


def _tiny_acts(tiny_lm, layer=1, n_seq=3, T=12):
    model, _ = load_lm(tiny_lm)
    tokens = torch.randint(0, 64, (n_seq, T))
    resid = residual_at(model, tokens, layer).float()
    keep = keep_mask(resid, 10.0)
    keep[1, 5] = False  # one "outlier": rows must still align
    meta = dict(model=tiny_lm, layer=layer, corpus="test", split="eval", n_tokens=n_seq * T, ctx_len=T,
                outlier_factor=10.0)
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


def _sae(k=2, beta=1.0, m=6, d=4):
    sae = SAE(d, m, "gradient_topk", k=k, beta=beta, seed=0)
    return sae


def test_beta_zero_and_no_gradient_equal_topk():
    torch.manual_seed(1)
    pre, dec_norm = torch.randn(5, 6), torch.ones(6)
    g, W = torch.randn(5, 4), torch.randn(6, 4)
    topk = TopK(2)
    sp0 = GradientTopK(2, beta=0.0)
    sp0.set_gradients(g, W)
    assert torch.equal(sp0(pre, dec_norm), topk(pre, dec_norm))
    assert not sp0.has_gradients  # all rows consumed
    sp = GradientTopK(2, beta=5.0)  # no g pending: plain TopK
    assert torch.equal(sp(pre, dec_norm), topk(pre, dec_norm))
    sp.set_gradients(g, W)
    assert torch.equal(sp.select(pre, dec_norm)[0], topk.select(pre, dec_norm)[0])


def test_gradient_favoured_latent_is_selected_with_its_activation():
    W = torch.eye(4)  # latent i decodes along axis i
    pre = torch.tensor([[1.0, 3.0, 2.0, -1.0]])
    g = torch.tensor([[10.0, 0.0, 0.0, 0.0]])  # the loss is sensitive along latent 0 only
    sp = GradientTopK(1, beta=1.0)
    assert torch.equal(sp(pre, torch.ones(4)), torch.tensor([[0.0, 3.0, 0.0, 0.0]]))  # no g: TopK
    sp.set_gradients(g, W * 7.0)  # the decoder's scale does not matter (unit directions)
    out = sp(pre, torch.ones(4))
    assert torch.equal(out, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))  # score 1 * 11 > 3: value stays z = 1
    # a negative pre-activation is never promoted, however influential
    sp.set_gradients(torch.tensor([[0.0, 0.0, 0.0, 1e6]]), W)
    assert out.new_tensor([[0.0, 3.0, 0.0, 0.0]]).equal(sp(pre, torch.ones(4)))


def test_no_gradient_flows_into_g_and_values_carry_gradient():
    pre = torch.randn(3, 6, requires_grad=True)
    g = torch.randn(3, 4, requires_grad=True)
    W = torch.randn(6, 4, requires_grad=True)
    sp = GradientTopK(2, beta=2.0)
    sp.set_gradients(g, W)
    sp(pre, torch.ones(6)).sum().backward()
    assert g.grad is None and W.grad is None
    assert int((pre.grad != 0).sum()) <= 6 and pre.grad.abs().sum() > 0


def test_with_gradients_streams_rows_in_order_and_checks_alignment():
    sae = _sae(beta=3.0)
    x, g = torch.randn(10, 4), torch.randn(10, 4)
    with with_gradients(sae, g):
        whole = sae.encode(x)
    with with_gradients(sae, g):
        parts = torch.cat([sae.encode(x[:4]), sae.encode(x[4:])])
    assert torch.equal(whole, parts)
    with pytest.raises(ValueError, match="unused"):
        with with_gradients(sae, g):
            sae.encode(x[:4])
    with pytest.raises(ValueError, match="pending"):
        with with_gradients(sae, g[:3]):
            sae.encode(x)
    assert not sae.sparsifier.has_gradients
    with with_gradients(sae, None):  # "no g at inference" = TopK selection
        plain = sae.encode(x)
    ref = SAE(4, 6, "topk", k=2, seed=0)
    ref.load_state_dict(sae.state_dict())
    assert torch.equal(plain, ref.encode(x))
    with pytest.raises(ValueError, match="gradient_topk"):
        with with_gradients(ref, g):
            pass


def test_training_with_fed_gradients_and_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    x, g = torch.randn(256, 8), torch.randn(256, 8)
    sae = SAE(8, 16, "gradient_topk", k=3, beta=default_beta(g), seed=0)
    res = train_sae(sae, x, TrainConfig(epochs=1, batch_size=64, progress=False, callbacks=[feed_gradients(g)]))
    assert not res.sae.sparsifier.has_gradients and res.history["l0"].iloc[-1] == pytest.approx(3.0)
    back = SAE.load(res.sae.save(tmp_path / "g"))
    assert back.sparsifier.config() == {"k": 3, "beta": pytest.approx(default_beta(g))}
    with with_gradients(back, g[:32]), with_gradients(res.sae, g[:32]) as s:
        assert torch.equal(back.encode(x[:32]), s.encode(x[:32]))
    with pytest.raises(ValueError, match="beta"):
        GradientTopK(3, beta=-1.0)
    assert default_beta(torch.full((4, 8), 0.5)) == pytest.approx((3.141592653589793 * 8 / 2) ** 0.5 / (0.5 * 8 ** 0.5))


def test_steering_effect_is_zero_at_alpha_zero_and_positive_along_lens(tiny_lm):
    model, _ = load_lm(tiny_lm)
    tail = LMTail(model, 1)
    resid = residual_at(model, torch.randint(0, 64, (2, 8)), 1)
    dirs = torch.randn(3, 32)
    assert torch.allclose(steering_effect(tail, resid, dirs, 0.0), torch.zeros(3), atol=1e-6)
    assert steering_effect(tail, resid, dirs, 50.0).shape == (3,)
