import pytest
import torch

from saelib.losses import auxk_loss
from saelib.sae import SAE


@pytest.mark.parametrize("name,kw", [("topk", {}), ("topk", {"rank_by_decoder_norm": True}),
                                     ("batchtopk", {}), ("mutual_choice", {})])
def test_sparse_path_equals_dense_autograd(name, kw):
    """Every TopK-family sparsifier: the sparse fast path (AuxK included) equals dense autograd."""
    torch.manual_seed(1)
    sae = SAE(16, 64, name, k=5, seed=0, **kw)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(64, 1) + 0.5)
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    x = torch.randn(32, 16)
    grads = {}
    for sparse in (False, True):
        sae.zero_grad()
        out = sae.forward_train(x, sparse=sparse)
        loss = (out.x_hat - x).pow(2).sum(-1).mean()
        dead = torch.zeros(64, dtype=torch.bool)
        dead[::3] = True
        loss = loss + auxk_loss(sae, x, out.pre, (x - out.x_hat).detach(), dead, 4, sparse)
        loss.backward()
        grads[sparse] = (out.x_hat.detach(), {n: p.grad.clone() for n, p in sae.named_parameters()})
    assert torch.allclose(grads[False][0], grads[True][0], atol=1e-5)
    for name in grads[False][1]:
        assert torch.allclose(grads[False][1][name], grads[True][1][name], atol=1e-5), name


def test_sparse_path_refuses_relu():
    sae = SAE(4, 8, "relu")
    with pytest.raises(ValueError, match="TopK-family"):
        sae.forward_train(torch.randn(2, 4), sparse=True)


@pytest.mark.parametrize("name", ["topk", "batchtopk", "relu"])
def test_training_forward_gradients_equal_the_written_out_formula(name):
    """Both paths (and the detached centring that carries b_dec's gradient through the encoder bias)
    give the gradients of L = mean_b ||(sigma((x - b_dec) W_enc + b_enc)) W_dec + b_dec - x||^2."""
    torch.manual_seed(2)
    kw = {} if name == "relu" else {"k": 5}
    sae = SAE(16, 64, name, seed=0, **kw)
    with torch.no_grad():
        sae.b_enc.normal_()
        sae.b_dec.normal_()
    x = torch.randn(32, 16)
    p = {n: t.detach().clone().requires_grad_(True) for n, t in sae.named_parameters()}
    z = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
    codes = sae.sparsifier(z, p["W_dec"].norm(dim=1))
    ((codes @ p["W_dec"] + p["b_dec"] - x).pow(2).sum(-1).mean()).backward()
    for sparse in ([False] if name == "relu" else [False, True]):
        sae.zero_grad()
        out = sae.forward_train(x, sparse=sparse)
        (out.x_hat - x).pow(2).sum(-1).mean().backward()
        for n, t in sae.named_parameters():
            assert torch.allclose(t.grad, p[n].grad, atol=1e-5), (sparse, n)


def test_encoder_keeps_the_input_gradient_when_asked():
    """An input that requires grad (attribution) still gets dL/dx through the centring."""
    sae = SAE(8, 16, "relu", seed=0)
    with torch.no_grad():
        sae.b_dec.normal_()
    x = torch.randn(4, 8, requires_grad=True)
    sae(x).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    ((torch.relu((x2 - sae.b_dec.detach()) @ sae.W_enc.detach() + sae.b_enc.detach())) @ sae.W_dec.detach()).sum().backward()
    assert x.grad is not None and torch.allclose(x.grad, x2.grad, atol=1e-6)
