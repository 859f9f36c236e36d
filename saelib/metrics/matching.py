"""Do two dictionaries contain the same latents? Cosine matching, shared latents, MCC and PW-MCC.

Two papers, one toolbox:

* Paulo & Belrose (2025, arXiv 2501.16615), *SAEs trained on the same data learn different
  features*: row-normalise the decoder directions of SAE A and SAE B, C_dec = D_A D_B^T
  (signed cosines), Hungarian assignment maximising the total cosine; the same on the encoder
  directions. A latent is **shared** when its matched decoder cosine > t AND its matched encoder
  cosine > t (t = 0.7). The **strict** variant also requires both assignments to pick the same
  partner; **Equal** is the fraction of latents whose two assignments agree.
* Song et al. (2025, arXiv 2505.20254), *Feature consistency*: MCC(A, B) = mean matched signed
  cosine after the Hungarian assignment on cost 1 - A B^T; **PW-MCC** = mean MCC over all pairs
  of seeds; **GT-MCC** = MCC(ground truth, learned decoder).

Conventions: dictionaries are (n_latents, d) with one latent direction per row (``SAE.W_dec``;
for the encoder use ``SAE.W_enc.T``). Cosines are *signed*: a sign-flipped copy reads -1, never
a match. Dead latents (pass ``alive`` masks) and zero rows become zero vectors, so their cosine
with everything is 0 and they are never shared (Paulo & Belrose's ``nan_to_num``).
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from ..sae import SAE
from ..utils import check_choice

ArrayLike = Tensor | np.ndarray
SharedCriterion = Literal["both", "strict", "decoder", "encoder"]


class MatrixTooLargeError(MemoryError):
    """The n_a x n_b cosine/assignment matrices would not fit in the memory allowed."""


# ---- memory guard ------------------------------------------------------------------------------

def available_memory_bytes() -> int:
    """Physical memory currently available (MemAvailable on Linux, else total/2)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 8 * 2**30


def matching_bytes(n_a: int, n_b: int) -> int:
    """Peak bytes of one Hungarian match: the float32 cosines plus scipy's float64 cost copy and workspace."""
    return n_a * n_b * (4 + 8 + 8)


def check_fits(n_a: int, n_b: int, max_bytes: int | None = None) -> None:
    """Raise :class:`MatrixTooLargeError` with the numbers when an n_a x n_b match would not fit.

    ``max_bytes`` defaults to half of the memory available now.
    """
    budget = available_memory_bytes() // 2 if max_bytes is None else max_bytes
    need = matching_bytes(n_a, n_b)
    if need > budget:
        raise MatrixTooLargeError(
            f"matching {n_a:,} x {n_b:,} latents needs ~{need / 2**30:.2f} GiB (cosines + Hungarian cost matrix) "
            f"but only {budget / 2**30:.2f} GiB is allowed (max_bytes; default half the available memory). "
            "Match fewer latents (e.g. only the alive ones), or use a machine with more memory.")


# ---- cosines and the assignment ----------------------------------------------------------------

def _as_tensor(x: ArrayLike, name: str) -> Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x.detach()).float().cpu()
    if t.dim() != 2:
        raise ValueError(f"{name} must be a 2-D (n_latents, d) matrix, got shape {tuple(t.shape)}")
    return t


def normalize_rows(w: ArrayLike, alive: ArrayLike | None = None) -> Tensor:
    """Unit-norm rows; zero rows and rows with ``alive == False`` become zero vectors (never match)."""
    w = _as_tensor(w, "w")
    norm = w.norm(dim=1, keepdim=True)
    out = torch.nan_to_num(w / norm, nan=0.0, posinf=0.0, neginf=0.0)
    out[norm.squeeze(1) == 0] = 0.0
    if alive is not None:
        alive = torch.as_tensor(np.asarray(alive) if not isinstance(alive, Tensor) else alive).bool().cpu()
        if alive.shape != (w.shape[0],):
            raise ValueError(f"alive must be a boolean vector of length {w.shape[0]}, got shape {tuple(alive.shape)}")
        out[~alive] = 0.0
    return out


def cosine_matrix(a: ArrayLike, b: ArrayLike, alive_a: ArrayLike | None = None, alive_b: ArrayLike | None = None,
                  max_bytes: int | None = None) -> Tensor:
    """Signed cosines C[i, j] = <a_i, b_j> / (|a_i| |b_j|), shape (n_a, n_b) (Paulo & Belrose, Sec. 2)."""
    a_n, b_n = normalize_rows(a, alive_a), normalize_rows(b, alive_b)
    if a_n.shape[1] != b_n.shape[1]:
        raise ValueError(f"a and b must have the same dimension d, got {a_n.shape[1]} and {b_n.shape[1]}")
    check_fits(a_n.shape[0], b_n.shape[0], max_bytes)
    return a_n @ b_n.T


def hungarian(cos: ArrayLike) -> np.ndarray:
    """Partner of every row under the assignment maximising the total signed cosine (-1: unmatched).

    ``scipy.optimize.linear_sum_assignment(cos, maximize=True)``; with n_a > n_b some rows stay unmatched.
    """
    c = cos.numpy() if isinstance(cos, Tensor) else np.asarray(cos)
    rows, cols = linear_sum_assignment(c.astype(np.float64), maximize=True)
    partner = np.full(c.shape[0], -1, dtype=np.int64)
    partner[rows] = cols
    return partner


def matched_cosine(cos: ArrayLike, partner: np.ndarray) -> np.ndarray:
    """Cosine of every row with its partner; 0 for unmatched rows (partner -1)."""
    c = cos.numpy() if isinstance(cos, Tensor) else np.asarray(cos)
    out = np.zeros(c.shape[0], dtype=np.float64)
    ok = partner >= 0
    out[ok] = c[np.flatnonzero(ok), partner[ok]]
    return out


@dataclass
class Match:
    """Decoder and encoder matches of SAE A's latents to SAE B's (Paulo & Belrose 2025)."""

    partner_dec: np.ndarray  # (n_a,) partner in B under the decoder assignment (-1 unmatched)
    partner_enc: np.ndarray  # (n_a,) partner in B under the encoder assignment
    cos_dec: np.ndarray      # (n_a,) matched decoder cosine
    cos_enc: np.ndarray      # (n_a,) matched encoder cosine

    def __len__(self) -> int:
        return len(self.cos_dec)

    @property
    def same_partner(self) -> np.ndarray:
        """Both assignments pick the same partner."""
        return (self.partner_dec == self.partner_enc) & (self.partner_dec >= 0)

    def shared(self, threshold: float = 0.7, criterion: SharedCriterion = "both") -> np.ndarray:
        """Per-latent shared mask. ``criterion``: "both" (dec AND enc > t, the paper's), "strict"
        (also the same partner), "decoder" or "encoder" (one side only)."""
        if not 0 <= threshold <= 1:
            raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
        check_choice("criterion", criterion, get_args(SharedCriterion))
        dec, enc = self.cos_dec > threshold, self.cos_enc > threshold
        masks = {"both": dec & enc, "strict": dec & enc & self.same_partner, "decoder": dec, "encoder": enc}
        return masks[criterion]

    def summary(self, threshold: float = 0.7) -> dict[str, float]:
        """Fractions shared (both / strict), Equal, and the mean matched cosines (decoder MCC, encoder)."""
        return {"shared": float(self.shared(threshold).mean()),
                "shared_strict": float(self.shared(threshold, "strict").mean()),
                "equal": float(self.same_partner.mean()),
                "mcc_dec": float(self.cos_dec.mean()), "mcc_enc": float(self.cos_enc.mean())}


def match_dictionaries(dec_a: ArrayLike, dec_b: ArrayLike, enc_a: ArrayLike | None = None,
                       enc_b: ArrayLike | None = None, alive_a: ArrayLike | None = None,
                       alive_b: ArrayLike | None = None, max_bytes: int | None = None) -> Match:
    """Hungarian-match A's latents to B's, separately on decoder and encoder directions (rows = latents).

    Without encoders, the encoder fields repeat the decoder's (so "both" reduces to decoder only).
    """
    c_dec = cosine_matrix(dec_a, dec_b, alive_a, alive_b, max_bytes)
    p_dec = hungarian(c_dec)
    m_dec = matched_cosine(c_dec, p_dec)
    del c_dec
    if enc_a is None or enc_b is None:
        if (enc_a is None) != (enc_b is None):
            raise ValueError("enc_a and enc_b must be given together (or neither)")
        return Match(p_dec, p_dec.copy(), m_dec, m_dec.copy())
    c_enc = cosine_matrix(enc_a, enc_b, alive_a, alive_b, max_bytes)
    p_enc = hungarian(c_enc)
    return Match(p_dec, p_enc, m_dec, matched_cosine(c_enc, p_enc))


def match_saes(a: SAE, b: SAE, alive_a: ArrayLike | None = None, alive_b: ArrayLike | None = None,
               max_bytes: int | None = None) -> Match:
    """:func:`match_dictionaries` on two SAEs' decoder rows (W_dec) and encoder columns (W_enc^T)."""
    return match_dictionaries(a.W_dec, b.W_dec, a.W_enc.T, b.W_enc.T, alive_a, alive_b, max_bytes)


def random_dictionary_cosines(d: int, width: int, seed: int = 0) -> np.ndarray:
    """The chance level of matching: matched signed cosines (Hungarian) between two dictionaries of ``width``
    independent random unit directions in R^d (isotropic Gaussian rows, generator seeded with ``seed``).

    Two trained SAEs whose matched cosines are no higher than these share nothing beyond chance; its 95th
    percentile is the random-dictionary baseline of notebook 07's convergence criterion.
    """
    for name, v in (("d", d), ("width", width)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    gen = torch.Generator().manual_seed(int(seed))
    a, b = (torch.randn(width, d, generator=gen, dtype=torch.float64) for _ in range(2))
    cos = cosine_matrix(a, b)
    return matched_cosine(cos, hungarian(cos))


def threshold_sweep(match: Match, thresholds: ArrayLike | None = None) -> pd.DataFrame:
    """Fraction of A's latents whose matched cosine exceeds t, for t in ``thresholds`` (default 0..1, 101 steps):
    columns decoder, encoder, both, strict."""
    ts = np.linspace(0, 1, 101) if thresholds is None else np.asarray(thresholds, dtype=float)
    rows = [{"threshold": t, **{c: float(match.shared(t, c).mean()) for c in ("decoder", "encoder", "both", "strict")}}
            for t in ts]
    return pd.DataFrame(rows)


# ---- MCC family (Song et al. 2025) ---------------------------------------------------------------

def mcc(a: ArrayLike, b: ArrayLike, alive_a: ArrayLike | None = None, alive_b: ArrayLike | None = None,
        max_bytes: int | None = None) -> float:
    """Mean matched signed cosine after the Hungarian assignment (cost 1 - A B^T), over min(n_a, n_b) pairs."""
    c = cosine_matrix(a, b, alive_a, alive_b, max_bytes)
    p = hungarian(c)
    return float(matched_cosine(c, p)[p >= 0].mean())


def per_latent_mcc(dicts: list[ArrayLike], alive: list[ArrayLike] | None = None, ref: int = 0,
                   max_bytes: int | None = None) -> np.ndarray:
    """Per-latent consistency of dictionary ``ref``: its matched decoder cosine to every other seed, averaged."""
    _check_seeds(dicts, alive)
    others = [i for i in range(len(dicts)) if i != ref]
    cols = []
    for j in others:
        c = cosine_matrix(dicts[ref], dicts[j], None if alive is None else alive[ref],
                          None if alive is None else alive[j], max_bytes)
        cols.append(matched_cosine(c, hungarian(c)))
    return np.mean(cols, axis=0)


def pw_mcc(dicts: list[ArrayLike], alive: list[ArrayLike] | None = None, max_bytes: int | None = None) -> float:
    """PW-MCC: mean MCC over all unordered pairs of dictionaries from different seeds (Song et al., Sec. 3)."""
    _check_seeds(dicts, alive)
    vals = [mcc(dicts[i], dicts[j], None if alive is None else alive[i], None if alive is None else alive[j], max_bytes)
            for i, j in itertools.combinations(range(len(dicts)), 2)]
    return float(np.mean(vals))


def gt_mcc(truth: ArrayLike, learned: ArrayLike, alive: ArrayLike | None = None, max_bytes: int | None = None) -> float:
    """GT-MCC: MCC between the ground-truth dictionary (rows = true features) and a learned decoder."""
    return mcc(truth, learned, None, alive, max_bytes)


def _check_seeds(dicts: list, alive: list | None) -> None:
    if len(dicts) < 2:
        raise ValueError(f"dicts must hold at least 2 dictionaries (one per seed), got {len(dicts)}")
    if alive is not None and len(alive) != len(dicts):
        raise ValueError(f"alive must have one mask per dictionary ({len(dicts)}), got {len(alive)}")


# ---- many seeds (Paulo & Belrose, Fig. 5) -------------------------------------------------------

def shared_counts(saes: list[SAE], threshold: float = 0.7, criterion: SharedCriterion = "both", ref: int = 0,
                  alive: list[ArrayLike] | None = None, max_bytes: int | None = None) -> np.ndarray:
    """For every latent of SAE ``ref``: in how many of the other SAEs it is shared (0 .. len(saes)-1)."""
    _check_seeds(saes, alive)
    counts = np.zeros(saes[ref].d_sae, dtype=np.int64)
    for j in range(len(saes)):
        if j != ref:
            m = match_saes(saes[ref], saes[j], None if alive is None else alive[ref],
                           None if alive is None else alive[j], max_bytes)
            counts += m.shared(threshold, criterion)
    return counts
