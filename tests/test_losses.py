"""The auxiliary losses (saelib.losses): AuxK and aux_zipf."""
import types

import pytest
import torch

from saelib.losses import AuxZipfLoss, auxk_loss
from saelib.sae import SAE


@pytest.mark.parametrize("sparse", [False, True])
def test_auxk_gradient_reaches_only_dead_latents(sparse):
    sae = SAE(8, 16, "topk", k=2, seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(5.0)  # every pre-activation positive
    x = torch.randn(10, 8)
    out = sae.forward_train(x, sparse=sparse)
    dead = torch.zeros(16, dtype=torch.bool)
    dead[[1, 4, 9]] = True
    auxk_loss(sae, x, out.pre, (x - out.x_hat).detach() + 1.0, dead, 2, sparse).backward()
    touched = sae.W_enc.grad.abs().sum(0) > 0
    assert touched.tolist() == dead.tolist()
    assert (sae.W_dec.grad.abs().sum(1) > 0).tolist() == dead.tolist()


@pytest.mark.parametrize("sparse", [True, False])
def test_aux_zipf_sends_gradient_only_to_under_used_latents(sparse):
    torch.manual_seed(0)
    d, f, n = 8, 20, 32
    sae = SAE(d, f, "topk", k=2, seed=0)
    x = torch.randn(n, d)
    out = sae.forward_train(x, sparse=sparse)
    loss = AuxZipfLoss(f, coeff=1.0, k_aux=3, min_density=1e-6)
    dens = 0.5 * torch.arange(1, f + 1, dtype=torch.float).pow(-1.0)     # exact Zipf ...
    under = torch.tensor([3, 7, 15])
    dens[under] = 0.0                                                    # ... but three latents dead
    loss.density = dens.clone()
    loss.beta = 1.0                                                      # freeze the EMA for the test
    _, w = loss.targets()
    assert set(torch.nonzero(w > 0).flatten().tolist()) == set(under.tolist())
    value = loss(types.SimpleNamespace(sae=sae, x=x, out=out, dead=None))
    assert value > 0
    sae.zero_grad()
    value.backward()
    enc = sae.W_enc.grad.abs().sum(0) > 0
    dec = sae.W_dec.grad.abs().sum(1) > 0
    assert set(torch.nonzero(enc).flatten().tolist()) <= set(under.tolist())
    assert set(torch.nonzero(dec).flatten().tolist()) == set(torch.nonzero(enc).flatten().tolist())
    assert bool(enc.any())
