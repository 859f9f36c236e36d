"""Train a grid of SAEs on cached activations and measure each one: one tidy DataFrame.

    runs = grid(["topk", "batchtopk"], widths=[1152, 2304], ks=[16, 32])
        + grid(["jumprelu"], widths=[2304], lams=[0.5, 1.0],
               sparsifier_kwargs={"jumprelu": dict(init_threshold=0.5, bandwidth=0.2)})
    table = run_sweep(runs, X_train, X_eval, base=TrainConfig(epochs=2, batch_size=1024), splice=splice)

One row per run with the columns in :data:`COLUMNS`: the grid coordinates (arch, width, k,
lam) and the metrics of :func:`saelib.metrics.reconstruction.evaluate` on held-out activations (definitions in
``docs/glossary.md``: NMSE and FVU are the same number, both names are kept so plots
can use the paper's axis label). TopK-family sparsifiers take ``k`` and train on the sparse
fast path; the others (ReLU-L1, JumpReLU) take ``lam`` = ``TrainConfig.sparsity_coeff``.
"""
from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .data.harvest import Activations
from .metrics.reconstruction import evaluate
from .metrics.splice import Splice
from .sae import SAE
from .metrics.uncertainty import Interval, paired_t_interval
from .sparsifiers import SPARSIFIERS
from .store import NOT_STORABLE, tensor_digest, train_cached
from .train import TrainConfig, dataset_scale, train_sae
from .utils import check_range
from .utils import progress as progress_bar

COLUMNS = ["label", "arch", "width", "expansion", "k", "lam", "l0", "fvu", "nmse", "delta_lm_loss",
           "ce_recovered", "dead_frac", "hf_10", "hf_1", "norm_ratio", "gamma", "cosine", "train_s"]


@dataclass
class Run:
    """One SAE to train: sparsifier name, number of latents, and k (TopK family) or lam (penalised)."""

    arch: str
    width: int
    k: int | None = None
    lam: float | None = None
    sparsifier_kwargs: dict[str, Any] = field(default_factory=dict)
    train_kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self) -> None:
        if self.arch not in SPARSIFIERS:
            raise ValueError(f"arch must be one of {sorted(SPARSIFIERS)}, got {self.arch!r}")
        if not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width must be a positive int, got {self.width!r}")
        if takes_k(self.arch) and self.k is None:
            raise ValueError(f"arch {self.arch!r} needs k (a positive int)")
        if not takes_k(self.arch) and self.k is not None:
            raise ValueError(f"arch {self.arch!r} takes lam, not k; got k={self.k!r}")
        if self.lam is not None:
            check_range("lam", self.lam, 0)
        if not self.label:
            knob = f"k={self.k}" if self.k is not None else f"λ={self.lam:g}" if self.lam is not None else ""
            self.label = f"{self.arch} {knob} m={self.width}".replace("  ", " ")


def takes_k(arch: str) -> bool:
    """Whether the sparsifier registered as ``arch`` is parameterised by k (the TopK family)."""
    if arch not in SPARSIFIERS:
        raise ValueError(f"arch must be one of {sorted(SPARSIFIERS)}, got {arch!r}")
    return "k" in inspect.signature(SPARSIFIERS[arch].__init__).parameters


def grid(archs: Iterable[str], widths: Iterable[int], ks: Iterable[int] = (), lams: Iterable[float] = (),
         sparsifier_kwargs: dict[str, dict] | None = None, train_kwargs: dict[str, dict] | None = None) -> list[Run]:
    """The product archs x widths x (ks for the TopK family, lams for the others).

    ``sparsifier_kwargs`` / ``train_kwargs`` map an arch name to extra constructor / TrainConfig
    arguments for that arch only (e.g. JumpReLU's bandwidth, Adam betas).
    """
    sk, tk = sparsifier_kwargs or {}, train_kwargs or {}
    runs: list[Run] = []
    for arch in archs:
        knobs = list(ks) if takes_k(arch) else list(lams)
        if not knobs:
            raise ValueError(f"arch {arch!r} needs {'ks' if takes_k(arch) else 'lams'} (got none)")
        for width in widths:
            for v in knobs:
                runs.append(Run(arch, int(width), k=v if takes_k(arch) else None, lam=None if takes_k(arch) else v,
                                sparsifier_kwargs=dict(sk.get(arch, {})), train_kwargs=dict(tk.get(arch, {}))))
    return runs


def run_sweep(runs: Iterable[Run], x_train: Tensor, x_eval: Tensor | Activations, base: TrainConfig | None = None,
              splice: Splice | None = None, seed: int = 0, progress: bool = True,
              store: dict | None = None, evaluations: dict | None = None,
              seeds: Sequence[int] | None = None, cache: bool = False) -> pd.DataFrame:
    """Train every run on ``x_train`` (same seed, same data order) and :func:`evaluate` it on ``x_eval``
    (held-out :class:`Activations` give per-sequence sums).

    ``base`` holds the shared TrainConfig; a run's ``lam`` sets ``sparsity_coeff`` and its
    ``train_kwargs`` override the rest. ``seeds``: train every run once per seed (init and data order
    both follow the seed; the rows gain a ``seed`` column) instead of once with ``seed``. Pass dicts as
    ``store`` / ``evaluations`` to keep each TrainResult / :class:`Evaluation`, keyed by the run's label
    (by ``(label, seed)`` with ``seeds``). ``cache=True`` trains through :func:`saelib.store.train_cached`
    (a run any notebook trained before with the same config, data and seed is loaded, not retrained;
    runs that cannot be stored are trained directly). Returns one row per run and seed (:data:`COLUMNS`).
    """
    runs = list(runs)
    x_ev = x_eval.acts if isinstance(x_eval, Activations) else x_eval
    if x_train.dim() != 2 or x_ev.dim() != 2 or x_train.shape[1] != x_ev.shape[1]:
        raise ValueError(f"x_train and x_eval must be (N, d) with the same d, got {tuple(x_train.shape)}, "
                         f"{tuple(x_ev.shape)}")
    labels = [r.label for r in runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"run labels must be unique, got duplicates in {labels}")
    if seeds is not None and (len(seeds) == 0 or len(set(seeds)) != len(seeds)):
        raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds!r}")
    base = base or TrainConfig()
    d = x_train.shape[1]
    data_key = tensor_digest(x_train) if cache else None
    rows = []
    jobs = [(run, s) for s in (seeds if seeds is not None else [seed]) for run in runs]
    bar = progress_bar(jobs, desc="sweep", disable=not progress)
    for run, s in bar:
        bar.set_postfix_str(run.label if seeds is None else f"{run.label} seed {s}", refresh=False)
        kw = dict(run.sparsifier_kwargs)
        if run.k is not None:
            kw["k"] = run.k
        overrides = {"seed": s, "progress": False, **run.train_kwargs}
        if run.lam is not None:
            overrides["sparsity_coeff"] = run.lam
        cfg = replace(base, **overrides)
        t0 = time.perf_counter()
        if cache and run.arch not in NOT_STORABLE and not (cfg.callbacks or cfg.loss_terms):
            res, _ = train_cached(x_train, run.width, run.arch, cfg, seed=s, data_key=data_key, **kw)
        else:
            res = train_sae(SAE(d, run.width, run.arch, seed=s, **kw), x_train, cfg)
        train_s = time.perf_counter() - t0
        key = run.label if seeds is None else (run.label, s)
        if store is not None:
            store[key] = res
        ev = evaluate(res.sae, x_eval, splice)
        if evaluations is not None:
            evaluations[key] = ev
        rows.append({"label": run.label, "arch": run.arch, "width": run.width, "expansion": run.width / d,
                     "k": run.k, "lam": run.lam, **ev.row(), "train_s": train_s,
                     **({} if seeds is None else {"seed": s})})
    return pd.DataFrame(rows, columns=COLUMNS + ([] if seeds is None else ["seed"]))


def preact_quantile(sae: SAE, x: Tensor, q: float, n: int = 8192) -> float:
    """The q-quantile of the pre-activations that ``train_sae`` sees at step 0.

    Mirrors its set-up (inputs scaled by s = sqrt(d) / E||x||, b_dec = mean): use it to put a
    JumpReLU's initial threshold (and bandwidth) in the units training uses.
    """
    check_range("q", q, 0, 1)
    xs = x[:n]
    s = dataset_scale(xs)
    with torch.no_grad():
        pre = (xs * s - xs.mean(0) * s) @ sae.W_enc + sae.b_enc
    return float(pre.flatten().quantile(q) if pre.numel() <= 2**24 else pre.flatten()[: 2**24].quantile(q))


def at_matched_l0(table: pd.DataFrame, target_l0: float, cols: Iterable[str], l0_col: str = "l0") -> dict[str, Any]:
    """Metrics of one family (rows of ``table``) at L0 = ``target_l0``, interpolated linearly in log L0.

    The one bracketing rule: the target must lie within [min L0, max L0] of the rows (two rows
    bracketing it, or one row at exactly that L0). Outside it this refuses to extrapolate: every
    value is NaN and ``bracketed`` is False, which makes a claim built on it inconclusive.
    Returns ``{col: value, ..., "l0": target_l0, "bracketed": bool}``.
    """
    cols = list(cols)
    if l0_col not in table.columns or any(c not in table.columns for c in cols):
        raise ValueError(f"table must have columns {[l0_col] + cols}, got {list(table.columns)}")
    check_range("target_l0", target_l0, 0, lo_open=True)
    df = table[[l0_col] + cols].dropna(subset=[l0_col]).sort_values(l0_col)
    if (df[l0_col] <= 0).any():
        raise ValueError(f"{l0_col} must be > 0 in every row (log interpolation)")
    bracketed = len(df) > 0 and df[l0_col].iloc[0] <= target_l0 <= df[l0_col].iloc[-1]
    out: dict[str, Any] = {}
    for c in cols:
        out[c] = (float(np.interp(np.log(target_l0), np.log(df[l0_col].to_numpy(float)), df[c].to_numpy(float)))
                  if bracketed else math.nan)
    return {**out, "l0": float(target_l0), "bracketed": bool(bracketed)}


def paired_matched_difference(a: pd.DataFrame, b: pd.DataFrame, target_l0: float, col: str,
                              seed_col: str = "seed", l0_col: str = "l0",
                              confidence: float = 0.95) -> tuple[Interval, bool]:
    """The per-seed difference col(A) - col(B), each family interpolated to L0 = ``target_l0`` by
    :func:`at_matched_l0`, and its paired t-interval over the seeds both tables share.

    ``a`` / ``b``: one family each (e.g. TopK over k, ReLU-L1 over lambda), one row per (setting, seed).
    Returns (interval, bracketed): ``bracketed`` is False when the target lies outside some seed's L0
    range of either family; the interval then covers only the bracketed seeds (NaN with fewer than 2),
    and a claim built on it is inconclusive (pass ``precondition=(bracketed, ...)``).
    """
    seeds = sorted(set(a[seed_col]) & set(b[seed_col]))
    diffs, ok = [], True
    for s in seeds:
        ma = at_matched_l0(a[a[seed_col] == s], target_l0, [col], l0_col)
        mb = at_matched_l0(b[b[seed_col] == s], target_l0, [col], l0_col)
        if ma["bracketed"] and mb["bracketed"]:
            diffs.append(ma[col] - mb[col])
        else:
            ok = False
    if len(diffs) < 2:
        return Interval(math.nan, math.nan, math.nan, len(diffs), "fewer than 2 bracketed seeds"), False
    return paired_t_interval(diffs, [0.0] * len(diffs), confidence), ok
