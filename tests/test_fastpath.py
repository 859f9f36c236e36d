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
