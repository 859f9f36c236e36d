"""Known answers for the narrow-vs-wide dictionary geometry (saelib/metrics/splitting.py)."""
import math

import pytest
import torch

from saelib.metrics.splitting import max_cosine, null_directions, omp_residual, split_families


def test_max_cosine_and_omp_known_answers():
    D = torch.eye(8)
    perm = D[torch.randperm(8)] * 3.0
    cos, idx = max_cosine(perm, D)
    assert torch.allclose(cos, torch.ones(8)) and torch.equal(D[idx] * 3.0, perm)
    t = torch.stack([D[0] + 2 * D[3], D[1] - D[2] + D[5]])
    res2, chosen = omp_residual(t, D, 2)
    assert res2[0] < 1e-5 and sorted(chosen[0].tolist()) == [0, 3]
    assert res2[1] == pytest.approx(1 / math.sqrt(3), abs=1e-5)  # two of three equal atoms fitted
    res3, _ = omp_residual(t, D, 3)
    assert res3.max() < 1e-5
    # a direction orthogonal to the whole dictionary is "new": residual 1
    res, _ = omp_residual(torch.eye(10)[8:], torch.eye(10)[:8], 3)
    assert torch.allclose(res, torch.ones(2))


def test_split_families_groups_children_by_nearest_narrow_latent():
    narrow = torch.eye(4)
    wide = torch.stack([narrow[0] + 0.3 * narrow[1], narrow[0] - 0.3 * narrow[1], narrow[2], narrow[3] + narrow[2] * 0.2])
    fam = split_families(wide, narrow, min_cos=0.5)
    assert fam.loc[0, "narrow"] == 0 and fam.loc[0, "children"] in ([0, 1], [1, 0]) and len(fam) == 1


def test_null_directions_follow_the_data_covariance():
    g = torch.Generator().manual_seed(0)
    # data varying along 2 of 10 axes (plus an offset that must not leak into the directions)
    x = torch.zeros(5000, 10)
    x[:, 0] = torch.randn(5000, generator=g) * 3
    x[:, 1] = torch.randn(5000, generator=g)
    x += 5.0
    v = null_directions(x, 4000, seed=1)
    assert v.shape == (4000, 10) and torch.allclose(v.norm(dim=1), torch.ones(4000), atol=1e-5)
    assert v[:, 2:].abs().max() < 1e-4          # nothing outside the data's span
    ratio = v[:, 0].pow(2).mean() / v[:, 1].pow(2).mean()
    # in 2-D, E[u_0^2] / E[u_1^2] = sigma_0 / sigma_1 = 3 for a normalised N(0, diag(9, 1)) sample
    assert ratio == pytest.approx(3.0, rel=0.1)
    assert torch.equal(v, null_directions(x, 4000, seed=1))
    with pytest.raises(ValueError, match="n must be"):
        null_directions(x, 0)


def test_null_directions_drawn_in_blocks_equal_one_draw():
    """The weights are drawn NULL_ROWS rows at a time (memory): the same draws as one (n, N) draw, also with a
    row count (here odd) that is no multiple of the generator's 16-value blocks; the product agrees to rounding
    (the GEMM may block rows differently)."""
    import math

    from saelib.metrics import splitting
    from saelib.metrics.matching import normalize_rows
    x = torch.randn(1001, 12, generator=torch.Generator().manual_seed(0))
    n = 2 * splitting.NULL_ROWS + 37
    xc = x - x.mean(0)
    w = torch.randn(n, len(xc), generator=torch.Generator().manual_seed(3)) / math.sqrt(len(xc))
    g = torch.Generator().manual_seed(3)
    blocks = [torch.randn(min(splitting.NULL_ROWS, n - i), len(xc), generator=g) for i in range(0, n, splitting.NULL_ROWS)]
    assert torch.equal(torch.cat(blocks) / math.sqrt(len(xc)), w)
    assert torch.allclose(null_directions(x, n, seed=3), normalize_rows(w @ xc), atol=1e-6)
