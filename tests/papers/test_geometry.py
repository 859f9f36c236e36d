"""Known-answer tests for saelib.papers.geometry (SplInterp's spline geometry)."""
import numpy as np
import pytest
import torch

from saelib import SAE
from saelib.papers.geometry import (KMeansAE, LocalPCAAE, effective_encoder, kmeans_as_topk, mse, power_active,
                                    power_diagram, power_diagram_agreement, power_distance, region_map, topk_active)


def test_power_distance_identity_and_topk_agreement_exact():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 10, generator=g, dtype=torch.float64)
    W = torch.randn(10, 40, generator=g, dtype=torch.float64)
    b = torch.randn(40, generator=g, dtype=torch.float64)
    sites, r2 = power_diagram(W, b)
    assert torch.allclose(sites, W.t() / 2) and torch.allclose(r2, (W ** 2).sum(0) / 4 + b)
    # pi_i(x) = ||x||^2 - z_i(x)
    pi = power_distance(x, sites, r2)
    assert torch.allclose(pi, (x ** 2).sum(1, keepdim=True) - (x @ W + b), atol=1e-10)
    for k in (1, 2, 5, 17):
        assert power_diagram_agreement(x, W, b, k).all()


def test_power_diagram_disagrees_with_wrong_weights():
    g = torch.Generator().manual_seed(1)
    x, W, b = torch.randn(500, 3, generator=g), torch.randn(3, 12, generator=g), torch.randn(12, generator=g)
    wrong = power_active(*power_diagram(W, torch.zeros(12)), 2)(x)
    right = topk_active(W, b, 2)(x)
    assert (wrong != right).any()


def test_effective_encoder_folds_b_dec():
    sae = SAE(4, 6, "topk", k=2, seed=0)
    with torch.no_grad():
        sae.b_dec.normal_()
        sae.b_enc.normal_()
    x = torch.randn(50, 4)
    W, b = effective_encoder(sae)
    assert torch.allclose(x @ W + b, sae.pre_acts(x), atol=1e-5)


def test_kmeans_ae_is_topk1_voronoi():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(300, 2, generator=g)
    km = KMeansAE.fit(x, 5, seed=0)
    W, b = kmeans_as_topk(km.centroids)
    sites, r2 = power_diagram(W, b)
    assert torch.allclose(sites, torch.tensor(km.centroids)) and torch.allclose(r2, torch.zeros(5, dtype=r2.dtype), atol=1e-12)
    top1 = (x.double() @ W + b).argmax(1).numpy()
    assert np.array_equal(top1, km.assign(x))
    assert np.allclose(km.encode(x).sum(1), 1) and np.allclose(km.reconstruct(x), km.centroids[top1])


def test_local_pca_known_answers():
    g = torch.Generator().manual_seed(3)
    # two well-separated lines in 3-D: rank-1 local PCA reconstructs them exactly
    t = torch.rand(200, 1, generator=g)
    a = torch.tensor([10.0, 0, 0]) + t * torch.tensor([1.0, 2, 0])
    b = torch.tensor([-10.0, 0, 0]) + t * torch.tensor([0.0, 1, 3])
    x = torch.cat([a, b])
    model = LocalPCAAE.fit(x, 2, rank=1, seed=0)
    assert mse(x, model.reconstruct(x)) < 1e-10
    assert mse(x, model.reconstruct(x)) < mse(x, KMeansAE.fit(x, 2, seed=0).reconstruct(x))
    # rank 0 is k-means (centroid reconstruction); full rank is exact
    assert np.allclose(LocalPCAAE.fit(x, 2, rank=0, assign="centroid").reconstruct(x),
                       KMeansAE.fit(x, 2, seed=0).reconstruct(x))
    assert mse(x, LocalPCAAE.fit(x, 2, rank=3).reconstruct(x)) < 1e-20


def test_region_map_counts_and_boundaries():
    W = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    b = torch.zeros(3)
    rm = region_map(topk_active(W, b, 1), (-1, 1), (-1, 1), resolution=51)
    assert rm.n_regions == 3 and rm.labels.shape == (51, 51)
    assert rm.active_sets.sum(1).tolist() == [1, 1, 1]
    assert rm.boundaries().any() and not rm.boundaries().all()


@pytest.mark.parametrize("bad", [dict(assign="nearest"), dict(rank=-1)])
def test_bad_input_raises(bad):
    x = torch.randn(20, 3)
    with pytest.raises(ValueError, match=next(iter(bad))):
        LocalPCAAE.fit(x, 2, **{"rank": 1, **bad})


def test_bad_k_and_resolution():
    with pytest.raises(ValueError, match="n_clusters"):
        KMeansAE.fit(torch.randn(5, 2), 10)
    with pytest.raises(ValueError, match="resolution"):
        region_map(topk_active(torch.randn(2, 3), torch.zeros(3), 1), resolution=1)
