"""Known answers for the intervals behind the verdict model (saelib.metrics.uncertainty)."""
import math

import numpy as np
import pytest
from scipy import stats

from saelib.metrics.uncertainty import fisher_t_interval, paired_bootstrap, paired_t_interval, ratio_difference


def test_paired_t_interval_matches_the_textbook_formula():
    a, b = [0.50, 0.47, 0.52, 0.49], [0.55, 0.51, 0.55, 0.56]
    d = np.subtract(a, b)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    iv = paired_t_interval(a, b)
    assert iv.estimate == pytest.approx(d.mean())
    assert (iv.lo, iv.hi) == pytest.approx((d.mean() - half, d.mean() + half))
    assert iv.n == 4 and iv.method == "paired t over 4 seeds"


def test_paired_t_interval_uses_the_pairing():
    """A shared per-seed offset cancels: unpaired spread is huge, the paired interval is tight."""
    offset = np.array([0.0, 10.0, -7.0, 3.0])
    iv = paired_t_interval(offset + 1.0, offset + [0.1, 0.12, 0.09, 0.11])
    assert 0.85 < iv.lo < iv.hi < 0.95


def test_fisher_t_interval_matches_scipy_on_the_z_scale():
    """Known answer: scipy's one-sample t interval of artanh(r), mapped back with tanh."""
    rs = [0.91, 0.84, 0.88]
    z = np.arctanh(rs)
    ci = stats.ttest_1samp(z, 0.0).confidence_interval(0.95)
    iv = fisher_t_interval(rs, unit="disjoint seed pairs")
    assert iv.estimate == pytest.approx(math.tanh(z.mean()))
    assert (iv.lo, iv.hi) == pytest.approx((math.tanh(ci.low), math.tanh(ci.high)))
    assert iv.lo < iv.estimate < iv.hi < 1
    assert iv.n == 3 and iv.method == "t over 3 disjoint seed pairs on Fisher z"


def test_fisher_t_interval_edge_cases():
    iv = fisher_t_interval([0.5, 0.5])                       # zero spread: the interval is the point
    assert (iv.estimate, iv.lo, iv.hi) == pytest.approx((0.5, 0.5, 0.5))
    iv = fisher_t_interval([-1.0, -0.9])                    # r = -1 is clipped: finite z, no NaN
    assert np.isfinite([iv.estimate, iv.lo, iv.hi]).all() and -1 < iv.estimate < -0.9
    with pytest.raises(ValueError, match="number of seeds"):
        fisher_t_interval([0.3])


def test_paired_t_interval_rejects_bad_input():
    with pytest.raises(ValueError, match="number of seeds"):
        paired_t_interval([1.0], [0.0])
    with pytest.raises(ValueError, match="one entry per seed"):
        paired_t_interval([1.0, 2.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        paired_t_interval([1.0, math.nan], [0.0, 1.0])


def test_bootstrap_of_a_ratio_of_sums_covers_the_truth_and_is_paired():
    rng = np.random.default_rng(1)
    var = rng.uniform(1.0, 2.0, 60)                    # per-sequence variance terms
    sse_b = var * rng.uniform(0.3, 0.5, 60)            # arm B: FVU about 0.4
    sse_a = sse_b * 0.9                                # arm A: exactly 10% less error on every sequence
    iv = paired_bootstrap(ratio_difference, sse_b, sse_a, var, n_resamples=500, seed=0)
    truth = sse_b.sum() / var.sum() * 0.1
    assert iv.estimate == pytest.approx(truth)
    assert iv.lo <= truth <= iv.hi and iv.lo > 0        # paired: the sequence-to-sequence spread cancels
    assert iv.n == 60 and "sequences" in iv.method
    again = paired_bootstrap(ratio_difference, sse_b, sse_a, var, n_resamples=500, seed=0)
    assert again == iv                                 # seeded: the same interval every run


def test_bootstrap_rejects_misaligned_units():
    with pytest.raises(ValueError, match="same number of rows"):
        paired_bootstrap(ratio_difference, np.ones(5), np.ones(4), np.ones(5))
    with pytest.raises(ValueError, match="method"):
        paired_bootstrap(ratio_difference, np.ones(5), np.ones(5), np.ones(5), method="magic")


def test_cluster_sums_group_sequences_by_document():
    from saelib.metrics.uncertainty import cluster_sums
    a, b = cluster_sums(np.array([3, 1, 3, 2]), np.array([1.0, 2.0, 3.0, 4.0]), np.ones((4, 2)))
    assert a.tolist() == [2.0, 4.0, 4.0] and b.tolist() == [[1, 1], [1, 1], [2, 2]]
    with pytest.raises(ValueError, match="one row per group"):
        cluster_sums(np.array([0, 1]), np.ones(3))


def test_grouped_bootstrap_resamples_groups_not_rows():
    from saelib.metrics.uncertainty import grouped_bootstrap
    # Two documents, each a block of identical rows: resampling documents can only give the two
    # document means (0 or 10) or their average, never a row-level mixture.
    groups = np.repeat([0, 1], 50)
    x = np.where(groups == 0, 0.0, 10.0)
    iv = grouped_bootstrap(lambda s, n, axis=0: s.sum(axis=axis) / n.sum(axis=axis), groups, x, np.ones(100),
                           n_resamples=500, seed=0)
    assert iv.n == 2 and iv.estimate == 5.0 and "2 documents" in iv.method
    assert iv.lo == 0.0 and iv.hi == 10.0
