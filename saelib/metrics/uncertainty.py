"""Intervals for the verdict model (``saelib.companion.claims``): how sure is a measured effect?

Two sources of uncertainty, two tools:

* **Seeds.** A claim that one *training method* beats another must include seed-to-seed variation:
  train both arms with the same S >= 3 seeds (same data order per seed) and use
  :func:`paired_t_interval` on the per-seed differences d_s = a_s - b_s,
      d_bar +- t_{S-1, 1 - alpha/2} * sd(d) / sqrt(S)
  (for a correlation measured once per seed: :func:`fisher_t_interval`, the same on Fisher's z).
* **Held-out data.** A claim about one fixed trained SAE (or a fixed pair) resamples the held-out
  data with :func:`paired_bootstrap`: the unit is the whole held-out *sequence* (never the token,
  whose neighbours are correlated), paired across arms, and statistics that are ratios of sums
  (FVU = sum SSE / sum variance, mean CE = sum CE / predictions) are recomputed from resampled
  per-sequence *sums*, so each resample is the statistic of a plausible held-out set
  (``scipy.stats.bootstrap``, vectorised, a stated ``n_resamples`` and seed).

Each returns an :class:`Interval` (estimate, lo, hi, n, method), the form ``ClaimsTable`` takes.
"""
from __future__ import annotations

import math
from typing import Callable, Literal, NamedTuple

import numpy as np
from scipy import stats

from ..utils import check_choice, check_range

BootstrapMethod = Literal["percentile", "basic", "BCa"]


class Interval(NamedTuple):
    """A point estimate with a two-sided confidence interval [lo, hi] and what it was computed from."""

    estimate: float
    lo: float
    hi: float
    n: int          # seeds or resampled units
    method: str     # e.g. "paired t over 3 seeds", "paired bootstrap over 32 sequences (2000 resamples)"

    def rounded(self, digits: int = 3) -> str:
        return f"{self.estimate:.{digits}f} [{self.lo:.{digits}f}, {self.hi:.{digits}f}]"


def paired_t_interval(a: np.ndarray | list[float], b: np.ndarray | list[float], confidence: float = 0.95) -> Interval:
    """t-interval of mean(a - b) over paired seeds (a[s], b[s] trained with the same seed s).

    Needs at least 2 pairs (the verdict model asks for 3); with zero spread the interval is the point.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D with one entry per seed, got shapes {a.shape}, {b.shape}")
    check_range("number of seeds", len(a), 2)
    check_range("confidence", confidence, 0, 1, lo_open=True)
    if not np.isfinite(a).all() or not np.isfinite(b).all():
        raise ValueError("a and b must be finite (a NaN per-seed value cannot be paired)")
    d = a - b
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=len(d) - 1)) * sd / math.sqrt(len(d))
    return Interval(mean, mean - half, mean + half, len(d), f"paired t over {len(d)} seeds")



def fisher_t_interval(rs: np.ndarray | list[float], confidence: float = 0.95, unit: str = "seeds") -> Interval:
    """t-interval of a correlation from independent replicates: one correlation r_s per seed (or disjoint
    seed pair), averaged on Fisher's z scale and transformed back.

        z_s = artanh(r_s),  z_bar +- t_{S-1, 1 - alpha/2} * sd(z) / sqrt(S),  then tanh of all three.

    The uncertainty is the spread *between* replicates (e.g. training seeds), not the sampling error
    of one r (which would be tanh(z +- 1.96 / sqrt(n - 3)) for a correlation over n points). r = +-1
    is clipped to +-(1 - 1e-9) so that z stays finite. Needs at least 2 correlations.
    """
    z = np.arctanh(np.clip(np.asarray(rs, dtype=float), -1 + 1e-9, 1 - 1e-9))
    if z.ndim != 1:
        raise ValueError(f"rs must be 1-D with one correlation per replicate, got shape {z.shape}")
    iv = paired_t_interval(z, np.zeros_like(z), confidence)
    return Interval(math.tanh(iv.estimate), math.tanh(iv.lo), math.tanh(iv.hi), iv.n, f"t over {iv.n} {unit} on Fisher z")

def paired_bootstrap(statistic: Callable[..., np.ndarray], *per_unit: np.ndarray, n_resamples: int = 2000,
                     confidence: float = 0.95, seed: int = 0, method: BootstrapMethod = "percentile",
                     unit: str = "sequences") -> Interval:
    """Bootstrap interval of ``statistic(*per_unit)``, resampling whole units (rows) jointly.

    ``per_unit`` are arrays with one row per unit (e.g. per held-out sequence: SSE of arm A, SSE of
    arm B, total variance), all with the same first dimension and resampled with the *same* indices
    (paired). ``statistic(*arrays, axis=-1)`` must be vectorised over ``axis`` (the unit axis) and
    return one number per resample, e.g. the difference of two FVUs computed from sums.
    """
    check_choice("method", method, ("percentile", "basic", "BCa"))
    check_range("n_resamples", n_resamples, 100)
    check_range("confidence", confidence, 0, 1, lo_open=True)
    arrays = [np.asarray(x, dtype=float) for x in per_unit]
    if not arrays:
        raise ValueError("per_unit must hold at least one array")
    n = arrays[0].shape[0]
    if any(x.shape[0] != n for x in arrays):
        raise ValueError(f"every per-unit array must have the same number of rows, got {[x.shape[0] for x in arrays]}")
    check_range(f"number of {unit}", n, 2)
    estimate = float(statistic(*arrays, axis=0))
    res = stats.bootstrap([x for x in arrays], statistic, n_resamples=n_resamples, paired=True, vectorized=True,
                          axis=0, confidence_level=confidence, method=method, rng=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(estimate, lo, hi, n, f"paired bootstrap over {n} {unit} ({n_resamples} resamples, {method})")


def ratio_difference(num_a: np.ndarray, num_b: np.ndarray, den: np.ndarray, axis: int = 0) -> np.ndarray:
    """sum(num_a) / sum(den) - sum(num_b) / sum(den) along ``axis``: e.g. FVU_A - FVU_B from per-sequence
    SSEs and the per-sequence variance terms (a vectorised statistic for :func:`paired_bootstrap`)."""
    d = np.sum(den, axis=axis)
    return np.sum(num_a, axis=axis) / d - np.sum(num_b, axis=axis) / d


def cluster_sums(groups: np.ndarray, *per_unit: np.ndarray) -> tuple[np.ndarray, ...]:
    """Sum per-sequence rows within each group (e.g. each held-out document): the resampling unit when
    one document contributes several sequences. Sums stay additive, so ratios (FVU) recompute exactly.
    Returns one array per input, with one row per distinct group (sorted)."""
    groups = np.asarray(groups)
    _, inverse = np.unique(groups, return_inverse=True)
    out = []
    for x in per_unit:
        x = np.asarray(x, dtype=float)
        if x.shape[0] != len(groups):
            raise ValueError(f"every array needs one row per group label ({len(groups)}), got {x.shape[0]}")
        acc = np.zeros((inverse.max() + 1,) + x.shape[1:])
        np.add.at(acc, inverse, x)
        out.append(acc)
    return tuple(out)


def grouped_bootstrap(statistic: Callable[..., np.ndarray], groups: np.ndarray, *per_unit: np.ndarray,
                      unit: str = "documents", **kwargs) -> Interval:
    """:func:`paired_bootstrap` over groups of rows: per-sequence sums are summed per group (e.g. per
    held-out document, :func:`cluster_sums`) and the groups are resampled. ``kwargs`` go to
    :func:`paired_bootstrap` (``n_resamples``, ``seed``, ``confidence``, ``method``)."""
    return paired_bootstrap(statistic, *cluster_sums(groups, *per_unit), unit=unit, **kwargs)
