"""g-SAE (Olmo et al. 2024): the gradient-guided TopK sparsifier (saelib.sparsifiers.gradient_topk)."""
import pytest
import torch

from saelib import SAE
from saelib.sparsifiers.gradient_topk import GradientTopK, with_gradients
from saelib.sparsifiers.topk import TopK


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
