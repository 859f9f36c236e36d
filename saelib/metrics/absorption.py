"""Feature absorption: the first-letter metric of Chanin et al. ("A is for Absorption", 2024,
arXiv 2409.14507) in the form of the SAEBench ``absorption`` eval (absorption fraction by D. Till).

Pipeline (our CPU-scale version; every constant is an argument):

1. Words: single tokens of the tokenizer's vocabulary that decode to a leading space plus >= 2
   ASCII letters; label = first letter (26 classes). Residual at the hook layer read at the
   word token of the prompt ``prefix + word`` (a short fixed prefix so the word is not at the
   attention-sink position 0). Cached in ``cache_dir()/absorption``
   (:mod:`saelib.data.words`).
2. A 26-way linear probe (scikit-learn multinomial LogisticRegression) on a train split;
   per-letter F1 on the test split; only letters with F1 >= ``f1_gate`` count.
3. Main latents per letter by k-sparse probing on SAE codes: rank latents by mean code on the
   letter's words minus mean on the others, fit a probe on the top k, and increase k while the
   test F1 improves by more than ``f1_jump`` (SAEBench: 0.03).
4. For each test word of letter L that the probe classifies as L, with p = the unit probe
   direction, a_i = f_i (d_i . p) the projection of latent i's contribution, A = (x - b_dec) . p:
   absorbers = non-main latents with cos(d_i, p) >= ``cos_frac`` (0.1) and a_i > 0, top
   ``max_absorbers`` (3) of them, total a_abs; main total a_main. Absorption fraction
       0                       if a_main >= A or a_abs / A < ``proj_frac`` (0.4)
       1                       elif a_main <= 0
       min(a_abs, A - a_main) / (min(a_abs, A - a_main) + a_main)   otherwise;
   full absorption: every main latent silent, the top-projecting latent has cos >= ``cos_full``
   (0.025) and carries >= ``proj_frac`` of A.
   Per-letter means, then the mean over letters that pass the gate.

Our deviation from SAEBench: A uses x - b_dec (what the latents must reconstruct) instead of x.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..data.words import LETTERS, LabelledActs
from ..sae import SAE
from ..utils import check_range


@dataclass
class Probe:
    """Linear probe: unit ``directions`` (C, d) in activation space, per-class test ``f1``, the split."""

    directions: Tensor
    f1: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray
    pred: np.ndarray  # predicted class of every row


def split_indices(n: int, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    check_range("test_frac", test_frac, 0, 1, lo_open=True)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_frac * n)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def train_probe(data: LabelledActs, test_frac: float = 0.3, seed: int = 0, C: float = 1.0) -> Probe:
    """Multinomial logistic regression on standardised activations; directions mapped back to raw space."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    X, y = data.acts.double().numpy(), data.labels.numpy()
    tr, te = split_indices(len(y), test_frac, seed)
    mu, sd = X[tr].mean(0), X[tr].std(0) + 1e-8
    clf = LogisticRegression(C=C, max_iter=1000, random_state=seed).fit((X[tr] - mu) / sd, y[tr])
    pred = clf.predict((X - mu) / sd)
    f1 = f1_score(y[te], pred[te], labels=list(range(data.n_classes)), average=None, zero_division=0)
    coef = clf.coef_ if clf.coef_.shape[0] == data.n_classes else np.vstack([-clf.coef_, clf.coef_])
    w = torch.tensor(coef / sd, dtype=torch.float32)
    return Probe(w / w.norm(dim=1, keepdim=True), f1, tr, te, pred)


def k_sparse_main_latents(codes_tr: Tensor, pos_tr: Tensor, codes_te: Tensor, pos_te: Tensor,
                          max_k: int = 5, f1_jump: float = 0.03) -> tuple[list[int], list[float]]:
    """Main latents of one class: top-k by mean-activation difference, k grown while test F1 rises > f1_jump.

    Returns the chosen latents and the F1 for k = 1..max_k (class-balanced logistic regression).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    check_range("max_k", max_k, 1)
    diff = codes_tr[pos_tr].mean(0) - codes_tr[~pos_tr].mean(0)
    order = diff.argsort(descending=True)[:max_k].tolist()
    f1s = []
    for k in range(1, max_k + 1):
        cols = order[:k]
        clf = LogisticRegression(class_weight="balanced", max_iter=500)
        clf.fit(codes_tr[:, cols].double().numpy(), pos_tr.numpy())
        f1s.append(float(f1_score(pos_te.numpy(), clf.predict(codes_te[:, cols].double().numpy()), zero_division=0)))
    k = 1
    while k < max_k and f1s[k] - f1s[k - 1] > f1_jump:
        k += 1
    return order[:k], f1s


def absorption_per_token(codes: Tensor, resid: Tensor, W_dec: Tensor, direction: Tensor, main: list[int],
                         cos_frac: float = 0.1, cos_full: float = 0.025, proj_frac: float = 0.4,
                         max_absorbers: int = 3) -> tuple[Tensor, Tensor]:
    """Absorption fraction (n,) and full-absorption flag (n,) for tokens with codes (n, m) and
    ``resid`` = x - b_dec (n, d) along the unit probe ``direction`` (module docstring, step 4)."""
    p = direction / direction.norm()
    dp = W_dec @ p                                         # d_i . p
    cos = dp / W_dec.norm(dim=1).clamp_min(1e-12)
    proj = codes * dp                                      # a_i
    A = resid @ p
    main_t = torch.tensor(main, dtype=torch.long)
    a_main = proj[:, main_t].sum(1)
    cand = torch.ones(codes.shape[1], dtype=torch.bool)
    cand[main_t] = False
    cand &= cos >= cos_frac
    ab = torch.where(cand & (proj > 0), proj, torch.zeros_like(proj))
    k = min(max_absorbers, codes.shape[1])
    a_abs = ab.topk(k, dim=1).values.sum(1)
    absorbed = torch.minimum(a_abs, A - a_main)
    frac = (absorbed / (absorbed + a_main).clamp_min(1e-12)).clamp(0, 1)
    frac = torch.where(a_main <= 0, torch.ones_like(frac), frac)
    frac = torch.where((a_main >= A) | (a_abs / A.clamp_min(1e-12) < proj_frac) | (A <= 0), torch.zeros_like(frac), frac)
    top_val, top_idx = proj.topk(1, dim=1)
    full = ((codes[:, main_t] <= 1e-8).all(1) & (cos[top_idx[:, 0]] >= cos_full) & (A > 0)
            & (top_val[:, 0] >= proj_frac * A))
    return frac, full


@dataclass
class AbsorptionResult:
    """Per-class table and the summary over classes that pass the probe gate. ``per_class`` holds, for a
    class that passes, ``word_fractions``: the absorption fraction of each of its ``n_words`` scored test
    words (their mean is ``absorption_fraction``), for an uncertainty over words."""

    per_class: pd.DataFrame
    n_pass: int
    mean_fraction: float
    full_rate: float


@torch.no_grad()
def measure_absorption(sae: SAE, data: LabelledActs, probe: Probe, classes: list[int] | None = None,
                       f1_gate: float = 0.6, max_k: int = 5, f1_jump: float = 0.03, min_words: int = 5,
                       names: str | None = LETTERS, **thresholds) -> AbsorptionResult:
    """First-letter absorption of ``sae`` (SAEBench-style; module docstring). ``classes`` defaults to all."""
    check_range("f1_gate", f1_gate, 0, 1)
    was = sae.training
    sae.eval()
    codes = sae.encode(data.acts)
    sae.train(was)
    resid = data.acts - sae.b_dec
    y = data.labels
    tr, te = torch.as_tensor(probe.train_idx), torch.as_tensor(probe.test_idx)
    pred = torch.as_tensor(probe.pred)
    rows = []
    for c in (classes if classes is not None else range(data.n_classes)):
        pos = y == c
        tp = te[(pos[te]) & (pred[te] == c)]
        gate = bool(probe.f1[c] >= f1_gate and len(tp) >= min_words)
        row = {"class": names[c] if names and data.n_classes == len(names) else c, "probe_f1": float(probe.f1[c]),
               "n_words": int(len(tp)), "passes_gate": gate, "main_latents": [], "k": 0, "sparse_f1": np.nan,
               "absorption_fraction": np.nan, "full_absorption": np.nan,
               "word_fractions": np.zeros(0)}
        if gate:
            main, f1s = k_sparse_main_latents(codes[tr], pos[tr], codes[te], pos[te], max_k, f1_jump)
            frac, full = absorption_per_token(codes[tp], resid[tp], sae.W_dec, probe.directions[c], main, **thresholds)
            row.update(main_latents=main, k=len(main), sparse_f1=f1s[len(main) - 1],
                       absorption_fraction=float(frac.mean()), full_absorption=float(full.float().mean()),
                       word_fractions=frac.double().numpy())
        rows.append(row)
    df = pd.DataFrame(rows)
    ok = df[df["passes_gate"]]
    return AbsorptionResult(df, len(ok), float(ok["absorption_fraction"].mean()) if len(ok) else float("nan"),
                            float(ok["full_absorption"].mean()) if len(ok) else float("nan"))
