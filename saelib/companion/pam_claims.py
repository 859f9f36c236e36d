"""The three PAM-SGD claims that notebooks 09 (MNIST) and 10 (LLM activations) share (SplInterp, Sec. 5).

Each compares training methods over the same seeds, so each is a paired t-interval over seeds, scored
on its weakest setting (:func:`~saelib.companion.claims.weakest_setting`), margin 1 (a smaller relative
gap is a tie; for epochs, the resolution of the measurement):

* lower test MSE than tied / untied Adam at every (activation, data fraction): 100 (1 - MSE_PAM / MSE_Adam) %;
* the advantage is largest at low data: the relative gap to the better baseline, mean over fractions
  <= 10% minus mean over fractions >= 50%, percent points, both activations;
* fewer epochs: epochs the faster baseline needs minus epochs PAM-SGD needs to reach 1.05 x the worst final
  test MSE of the seed, both activations.
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


def add_pam_claims(claims: ClaimsTable, frac: pd.DataFrame, conv: Mapping[tuple, pd.DataFrame],
                   activations: list[str], seeds: list[int], data: str, paper_data: str | None = None) -> None:
    """Add the three shared PAM-SGD claims to ``claims``.

    ``frac``: one row per (activation, fraction, seed, method) with ``test_mse`` (``data_fraction_study``);
    ``conv[activation, method, seed]``: the per-epoch test history at 100% data; ``data`` names the data
    in the claim text (e.g. "MNIST"); ``paper_data`` what the paper measured on, if different (e.g.
    "Gemma-2-2B" for our LLM activations).
    """
    t_interval = f"paired t over {len(seeds)} seeds"
    per_seed = frac.pivot_table(index=["activation", "fraction", "seed"], columns="method", values="test_mse")
    for base, label in (("adam_tied", "tied"), ("adam_untied", "untied")):
        gains = {key: paired_t_interval(100 * (1 - g["pam"] / g[base]).to_numpy(), np.zeros(len(g)))
                 for key, g in per_seed.groupby(level=["activation", "fraction"])}
        (a, f), iv = weakest_setting(gains, MARGIN)
        claims.add_claim(
            f"PAM-SGD reaches lower test MSE than {label} Adam ({data}; TopK and ReLU, every data fraction)",
            statistic=f"100 (1 - MSE_PAM / MSE_{label}) % per (activation, fraction), {t_interval}; "
                      "aggregate: the weakest setting",
            interval=iv, margin=MARGIN, direction="greater", uncertainty="seeds", n_seeds=len(seeds),
            measured=f"deciding setting {a} at {100 * f:g}%: {iv.estimate:+.1f}% [{iv.lo:+.1f}, {iv.hi:+.1f}]; "
                     f"lower bound > 0 at {sum(v.lo > 0 for v in gains.values())}/{len(gains)} settings",
            paper=f"PAM-SGD below SGD at every training-set size ({paper_data or data}, TopK and ReLU)")

    lowhigh = {}
    for a, g in per_seed.groupby(level="activation"):
        gap = 100 * (1 - g["pam"] / g[["adam_tied", "adam_untied"]].min(axis=1))
        fr = gap.index.get_level_values("fraction")
        low = gap[fr <= LOW_DATA].groupby(level="seed").mean()
        high = gap[fr >= HIGH_DATA].groupby(level="seed").mean()
        lowhigh[a] = (paired_t_interval(low.to_numpy(), high.to_numpy()), low.mean(), high.mean())
    _, iv = weakest_setting({a: v[0] for a, v in lowhigh.items()}, MARGIN)
    claims.add_claim(
        f"PAM-SGD's advantage is largest in the low-data regime ({data})",
        statistic=f"relative gap 1 - MSE_PAM / min(MSE_tied, MSE_untied), mean over fractions <= {LOW_DATA:.0%} minus "
                  f"mean over fractions >= {HIGH_DATA:.0%}, percent points, {t_interval}; both activations "
                  "(aggregate: the weakest)",
        interval=iv, margin=MARGIN, direction="greater", uncertainty="seeds", n_seeds=len(seeds),
        measured="; ".join(f"{a}: gap {lo_:+.0f}% (<={LOW_DATA:.0%} data) vs {hi_:+.0f}% (>={HIGH_DATA:.0%}), difference "
                           f"{v.estimate:+.0f} pp [{v.lo:+.0f}, {v.hi:+.0f}]" for a, (v, lo_, hi_) in lowhigh.items()),
        paper="largest gains at small training fractions")

    epochs = {}
    for a in activations:
        first = {m: [] for m in METHODS}
        for s in seeds:
            target = 1.05 * max(conv[a, m, s]["test_mse"].iloc[-1] for m in METHODS)
            for m in METHODS:
                first[m].append(epochs_to_reach(conv[a, m, s], target))
        faster_base = np.minimum(first["adam_tied"], first["adam_untied"])
        epochs[a] = (paired_t_interval(faster_base, np.array(first["pam"])), first)
    _, iv = weakest_setting({a: v[0] for a, v in epochs.items()}, MARGIN)
    claims.add_claim(
        f"PAM-SGD converges in fewer epochs ({data})",
        statistic="min(epochs_tied, epochs_untied) - epochs_PAM to reach 1.05 x the worst final test MSE of the "
                  f"seed, {t_interval}; both activations (aggregate: the weakest)",
        interval=iv, margin=MARGIN, direction="greater", uncertainty="seeds", n_seeds=len(seeds),
        measured="; ".join(f"{a}: epochs PAM {first['pam']}, tied {first['adam_tied']}, untied {first['adam_untied']}"
                           for a, (_, first) in epochs.items()),
        paper="faster convergence in test loss vs epoch")
