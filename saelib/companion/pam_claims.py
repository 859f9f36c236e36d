"""The three PAM-SGD claims that notebooks 09 (MNIST) and 10 (LLM activations) share (SplInterp, Sec. 5).

Each compares training methods over the same seeds, so each is a paired t-interval over seeds, scored
on its weakest setting (:func:`~saelib.companion.claims.weakest_setting`), margin 1 (a smaller relative
gap is a tie; for epochs, the resolution of the measurement):

* lower test MSE than tied / untied Adam at every scored (activation, data fraction):
  100 ln(MSE_Adam / MSE_PAM), in percent (a log-ratio: symmetric, and one blow-up cannot dominate a mean);
* the advantage is largest at low data: the log-ratio to the better baseline, mean over scored fractions
  <= 10% minus mean over fractions >= 50%, every scored activation;
* fewer epochs: epochs the faster baseline needs minus epochs PAM-SGD needs to reach 1.05 x the *best*
  final test MSE of the seed, every scored activation; a method that never reaches it counts as one epoch past
  the last (a censored count: PAM's advantage is then understated, never overstated, when a baseline misses).

**Scored fractions.** PAM-SGD's decoder step is a least-squares solve of N training vectors on m latents.
Near N = m it sits at the interpolation threshold, where its test error blows up (double descent);
the paper's fractions are all far above it. So only fractions with N >= ``min_ratio`` m (2 m) are scored.
The others are shown in the notebooks' figures, outside the verdicts. A claim with no scored setting is
inconclusive.

**Scored activations.** Only those passed as ``activations``: a notebook leaves out an arm whose sparsity is
not comparable with the TopK arm's (the ReLU arm when no L1 coefficient puts its training L0 within
[K/2, 2K], :func:`saelib.papers.pam.choose_l1`) and says why in ``left_out``; the claims then name only the
activations they score.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..metrics.uncertainty import paired_t_interval
from ..papers.pam import METHODS, epochs_to_reach
from .claims import ClaimsTable, weakest_setting

MARGIN = 1.0
LOW_DATA, HIGH_DATA = 0.1, 0.5  # fractions <= LOW_DATA against fractions >= HIGH_DATA
MIN_RATIO = 2.0                 # scored fractions: N >= MIN_RATIO x the number of latents


def scored(frac: pd.DataFrame, n_latents: int, min_ratio: float = MIN_RATIO) -> pd.Series:
    """Rows of a data-fraction study above the interpolation threshold: ``n_train >= min_ratio * n_latents``."""
    return frac["n_train"] >= min_ratio * n_latents


def add_pam_claims(claims: ClaimsTable, frac: pd.DataFrame, conv: Mapping[tuple, pd.DataFrame],
                   activations: list[str], seeds: list[int], data: str, n_latents: int,
                   paper_data: str | None = None, min_ratio: float = MIN_RATIO, left_out: str = "") -> None:
    """Add the three shared PAM-SGD claims to ``claims``.

    ``frac``: one row per (activation, fraction, seed, method) with ``n_train`` and ``test_mse``
    (``data_fraction_study``); ``conv[activation, method, seed]``: the per-epoch test history at 100% data;
    ``n_latents``: the SAEs' width m (fractions with N < ``min_ratio`` m are not scored); ``data`` names the
    data in the claim text (e.g. "MNIST"); ``paper_data`` what the paper measured on, if different; ``left_out``
    why an activation of ``frac`` is not among ``activations`` (added to every statistic).
    """
    t_interval = f"paired t over {len(seeds)} seeds"
    floor = min_ratio * n_latents
    which = " and ".join(a.split()[0] for a in activations)  # e.g. "TopK and ReLU"
    note = f"; {left_out}" if left_out else ""
    kept = frac[scored(frac, n_latents, min_ratio) & frac["activation"].isin(activations)]
    fr_kept = sorted(kept["fraction"].unique())
    where = (f"scored fractions N >= {min_ratio:g} m = {floor:,.0f}: "
             + (", ".join(f"{100 * f:g}%" for f in fr_kept) if fr_kept else "none"))
    no_setting = "no data fraction is above the interpolation threshold (N >= 2 m); the full preset's are"
    per_seed = kept.pivot_table(index=["activation", "fraction", "seed"], columns="method", values="test_mse")
    for base, label in (("adam_tied", "tied"), ("adam_untied", "untied")):
        gains = {key: paired_t_interval(100 * np.log(g[base] / g["pam"]).to_numpy(), np.zeros(len(g)))
                 for key, g in per_seed.groupby(level=["activation", "fraction"])}
        key, iv = weakest_setting(gains, MARGIN)
        a, f = key if key is not None else (None, None)
        claims.add_claim(
            f"PAM-SGD reaches lower test MSE than {label} Adam ({data}; {which}, every data fraction)",
            statistic=f"100 ln(MSE_{label} / MSE_PAM) % per (activation, fraction), {t_interval}; {where}; "
                      f"aggregate: the weakest setting{note}",
            interval=iv, margin=MARGIN, direction="greater", uncertainty="seeds", n_seeds=len(seeds),
            measured=(f"deciding setting {a} at {100 * f:g}%: {iv.estimate:+.1f}% [{iv.lo:+.1f}, {iv.hi:+.1f}]; "
                      f"lower bound > 0 at {sum(v.lo > 0 for v in gains.values())}/{len(gains)} scored settings"
                      if gains else where),
            paper=f"PAM-SGD below SGD at every training-set size ({paper_data or data}, TopK and ReLU)",
            precondition=(bool(gains), no_setting))

    lowhigh = {}
    for a, g in per_seed.groupby(level="activation"):
        gap = 100 * np.log(g[["adam_tied", "adam_untied"]].min(axis=1) / g["pam"])
        fr = gap.index.get_level_values("fraction")
        low = gap[fr <= LOW_DATA].groupby(level="seed").mean()
        high = gap[fr >= HIGH_DATA].groupby(level="seed").mean()
        if len(low) and len(high):
            lowhigh[a] = (paired_t_interval(low.to_numpy(), high.to_numpy()), low.mean(), high.mean())
    _, iv = weakest_setting({a: v[0] for a, v in lowhigh.items()}, MARGIN)
    claims.add_claim(
        f"PAM-SGD's advantage is largest in the low-data regime ({data})",
        statistic=f"log-ratio 100 ln(min(MSE_tied, MSE_untied) / MSE_PAM), mean over fractions <= {LOW_DATA:.0%} "
                  f"minus mean over fractions >= {HIGH_DATA:.0%}, percent, {t_interval}; {where}; {which} "
                  f"(aggregate: the weakest){note}",
        interval=iv, margin=MARGIN, direction="greater", uncertainty="seeds", n_seeds=len(seeds),
        measured=("; ".join(f"{a}: log-ratio {lo_:+.0f}% (<={LOW_DATA:.0%} data) vs {hi_:+.0f}% (>={HIGH_DATA:.0%}), "
                            f"difference {v.estimate:+.0f} [{v.lo:+.0f}, {v.hi:+.0f}]" for a, (v, lo_, hi_) in lowhigh.items())
                  or where),
        paper="largest gains at small training fractions",
        precondition=(bool(lowhigh), f"no fraction <= {LOW_DATA:.0%} is above the interpolation threshold "
                                     f"(N >= 2 m = {floor:,.0f}); the full preset's are"))

    epochs = {}
    for a in activations:
        first = {m: [] for m in METHODS}
        for s in seeds:
            target = 1.05 * min(conv[a, m, s]["test_mse"].iloc[-1] for m in METHODS)
            for m in METHODS:
                reached = epochs_to_reach(conv[a, m, s], target)
                first[m].append(reached if np.isfinite(reached) else float(conv[a, m, s]["epoch"].max() + 1))
        faster_base = np.minimum(first["adam_tied"], first["adam_untied"])
        epochs[a] = (paired_t_interval(faster_base, np.array(first["pam"])), first)
    _, iv = weakest_setting({a: v[0] for a, v in epochs.items()}, MARGIN)
    claims.add_claim(
        f"PAM-SGD converges in fewer epochs ({data})",
        statistic="min(epochs_tied, epochs_untied) - epochs_PAM to reach 1.05 x the best final test MSE of the "
                  f"seed (never reached: last epoch + 1), {t_interval}; {which} (aggregate: the weakest){note}",
        interval=iv, margin=MARGIN, direction="greater", uncertainty="seeds", n_seeds=len(seeds),
        measured="; ".join(f"{a}: epochs PAM {first['pam']}, tied {first['adam_tied']}, untied {first['adam_untied']}"
                           for a, (_, first) in epochs.items()),
        paper="faster convergence in test loss vs epoch")
