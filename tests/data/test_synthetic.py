"""The synthetic model organism (Song et al. 2025, Sec. 4)."""
import numpy as np
import pytest
import torch

from saelib import SAE
from saelib.data.synthetic import make_synthetic
from saelib.metrics.matching import gt_mcc


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))
    make_synthetic.cache_clear()


def test_shapes_unit_rows_k_sparse_nonnegative():
    d = make_synthetic(m=32, n=16, k=3, n_samples=2000, seed=1)
    assert d.A.shape == (32, 16) and d.S.shape == (2000, 32) and d.X.shape == (2000, 16)
    assert torch.allclose(d.A.norm(dim=1), torch.ones(32), atol=1e-5)
    assert ((d.S > 0).sum(1) == 3).all() and (d.S >= 0).all()
    assert torch.allclose(d.X, d.S @ d.A, atol=1e-5)


def test_seeded_and_cached():
    a = make_synthetic(n_samples=500, seed=3)
    make_synthetic.cache_clear()
    b = make_synthetic(n_samples=500, seed=3)  # from the disk cache
    c = make_synthetic(n_samples=500, seed=4)
    assert torch.equal(a.X, b.X) and torch.equal(a.A, b.A)
    assert not torch.equal(a.A, c.A)


def test_noise_and_zipf():
    clean = make_synthetic(n_samples=4000, seed=5)
    noisy = make_synthetic(n_samples=4000, noise=0.1, seed=5)
    assert torch.equal(clean.A, noisy.A) and torch.equal(clean.S, noisy.S)  # separate random streams
    assert (noisy.X - clean.X).std().item() == pytest.approx(0.1, rel=0.05)
    freq = make_synthetic(n_samples=20000, zipf_exponent=1.0, seed=5).frequencies.numpy()
    assert freq[0] > 3 * freq[-1]
    assert np.isclose(freq.sum(), 3.0)
    uni = clean.frequencies.numpy()
    assert uni.max() / uni.min() < 1.5


def test_bad_input():
    with pytest.raises(ValueError, match="k must be <= m"):
        make_synthetic(m=4, k=5)
    with pytest.raises(ValueError, match="noise"):
        make_synthetic(noise=-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        make_synthetic(n_samples=0)


def test_init_does_not_copy_the_ground_truth():
    data = make_synthetic(n_samples=1000, seed=0)
    inits = [SAE(16, 32, "topk", k=3, seed=s).W_dec.detach() for s in range(3)]
    assert max(gt_mcc(data.A, w) for w in inits) < 0.8
