"""Zipf allocation and fit (saelib.zipf)."""
import math

import pytest
import torch

from saelib.zipf import fit_zipf, zipf_allocation


def test_zipf_allocation_sums_to_total_and_is_monotone_in_rank():
    ranks = torch.randperm(500) + 1
    for total, cap, alpha in [(4000, 100, 1.0), (500 * 3, 64, 1.5), (700, 10, 0.5)]:
        m = zipf_allocation(ranks, total, cap, alpha)
        assert int(m.sum()) == total and int(m.min()) >= 1 and int(m.max()) <= cap
        by_rank = m[torch.argsort(ranks)]
        assert bool((by_rank[1:] <= by_rank[:-1]).all())
    m = zipf_allocation(torch.arange(1, 5), 4 * 100, 1000, 1.0)   # no cap binding: ~ 1/r
    assert torch.allclose(m.double() / m[0], torch.tensor([1, 1 / 2, 1 / 3, 1 / 4], dtype=torch.double), atol=0.02)
    with pytest.raises(ValueError, match="total"):
        zipf_allocation(ranks, 10, 100)


def test_fit_zipf_recovers_exponent():
    d = 0.3 * torch.arange(1, 201, dtype=torch.double).pow(-1.2)
    fit = fit_zipf(d[torch.randperm(200)])
    assert fit["alpha"] == pytest.approx(1.2, abs=1e-9) and fit["r2"] == pytest.approx(1.0)
    assert math.isnan(fit_zipf(torch.zeros(10), 0.0)["alpha"])


def test_fit_zipf_top_frac_leaves_out_the_low_end():
    r = torch.arange(1, 401, dtype=torch.double)
    d = torch.where(r <= 200, 0.3 * r.pow(-1.0), 0.3 * 200.0 ** -1.0 * (r / 200).pow(-4.0))   # a steeper tail
    d = torch.cat([d, torch.zeros(50, dtype=torch.double)])[torch.randperm(450)]               # and 50 dead latents
    head = fit_zipf(d, top_frac=0.5)
    assert head["n"] == 200 and head["alpha"] == pytest.approx(1.0, abs=1e-9) and head["r2"] == pytest.approx(1.0)
    whole = fit_zipf(d)
    assert whole["n"] == 400 and whole["alpha"] > 1.2 and whole["r2"] < 0.99
    assert fit_zipf(d, top_frac=1.0) == whole
    with pytest.raises(ValueError, match="top_frac"):
        fit_zipf(d, top_frac=0.0)
