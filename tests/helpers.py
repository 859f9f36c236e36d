"""Small data and models shared by tests in several folders (plain functions, not fixtures)."""
import torch

from saelib.sae import SAE


def data(n=1500, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.nn.functional.normalize(torch.randn(24, d, generator=g), dim=1)
    idx = torch.rand(n, 24, generator=g).argsort(1)[:, :2]
    return torch.zeros(n, 24).scatter(1, idx, torch.rand(n, 2, generator=g) + 0.5) @ D * 5


def random_sae(sparsifier="topk", d=16, m=40, b_dec_in=False, seed=0, **kw):
    sae = SAE(d, m, sparsifier, apply_b_dec_to_input=b_dec_in, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(m, 1, generator=g) * 2 + 0.2)  # unequal decoder norms
        sae.b_enc.copy_(torch.randn(m, generator=g) * 0.1)
        sae.b_dec.copy_(torch.randn(d, generator=g))
    return sae
