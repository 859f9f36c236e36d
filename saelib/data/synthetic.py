"""A model organism with known features (Song et al. 2025, arXiv 2505.20254, Sec. 4).

    A_true in R^{m x n}: Gaussian rows normalised to unit length (m features in n dimensions)
    s in R^m:            k distinct active features per sample, coefficients |N(0, 1)|
    x = s A_true + eps:  eps ~ N(0, noise^2 I_n)  (noise = 0 in the paper)

Our extension: ``zipf_exponent`` alpha > 0 makes feature i (ranked by index) active with
probability proportional to (i + 1)^-alpha (k distinct features drawn without replacement by
the Gumbel-top-k trick); alpha = 0 is the paper's uniform choice.

The dictionary, the supports/coefficients and the noise are drawn from three independent
streams of ``numpy.random.SeedSequence(seed)``, never from the stream that initialises an SAE
(with one seed for both and equal shapes an init can copy the ground truth exactly and every
MCC would read 1 from step 0). Results are cached in memory and on disk (``cache_dir()/synthetic``).

Also here: the planted parent/child toy of the absorption check (notebook 06) and the 2-D toy
of the spline-geometry pictures (notebook 09).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ..utils import cache_dir, check_range
from . import cache
from .words import LabelledActs

FORMAT_VERSION = 2  # 2: one hash-verified file (data/cache.py)


@dataclass(frozen=True)
class SyntheticData:
    """Ground truth ``A`` (m, n), codes ``S`` (N, m), data ``X`` (N, n) = S A + noise, and the settings."""

    A: Tensor
    S: Tensor
    X: Tensor
    meta: dict

    @property
    def frequencies(self) -> Tensor:
        """Fraction of samples on which each true feature is active."""
        return (self.S > 0).float().mean(0)


def _validate(m: int, n: int, k: int, n_samples: int, noise: float, zipf_exponent: float, seed: int) -> None:
    for name, v in (("m", m), ("n", n), ("k", k), ("n_samples", n_samples)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if k > m:
        raise ValueError(f"k must be <= m={m} (k distinct features per sample), got {k}")
    check_range("noise", noise, 0)
    check_range("zipf_exponent", zipf_exponent, 0)
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def _generate(m: int, n: int, k: int, n_samples: int, noise: float, zipf_exponent: float,
              seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dict_ss, code_ss, noise_ss = np.random.SeedSequence(seed).spawn(3)
    a = np.random.default_rng(dict_ss).standard_normal((m, n))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    rng = np.random.default_rng(code_ss)
    logp = -zipf_exponent * np.log(np.arange(1, m + 1))
    # Gumbel-top-k: the k largest log p_i + Gumbel_i are k draws without replacement with probabilities ~ p.
    keys = logp[None, :] + rng.gumbel(size=(n_samples, m))
    idx = np.argpartition(-keys, k - 1, axis=1)[:, :k]
    s = np.zeros((n_samples, m))
    np.put_along_axis(s, idx, np.abs(rng.standard_normal((n_samples, k))), axis=1)
    x = s @ a
    if noise > 0:
        x += noise * np.random.default_rng(noise_ss).standard_normal(x.shape)
    return a.astype(np.float32), s.astype(np.float32), x.astype(np.float32)


@lru_cache(maxsize=16)
def make_synthetic(m: int = 32, n: int = 16, k: int = 3, n_samples: int = 50_000, noise: float = 0.0,
                   zipf_exponent: float = 0.0, seed: int = 42) -> SyntheticData:
    """The model organism; defaults are the paper's (m=32, n=16, k=3, N=50,000, noise 0, uniform features)."""
    _validate(m, n, k, n_samples, noise, zipf_exponent, seed)
    meta = dict(m=m, n=n, k=k, n_samples=n_samples, noise=float(noise), zipf_exponent=float(zipf_exponent),
                seed=seed, version=FORMAT_VERSION)
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    def build() -> cache.Built:
        a, s, x = (torch.from_numpy(v) for v in _generate(m, n, k, n_samples, noise, zipf_exponent, seed))
        return {"A": a, "S": s, "X": x}, meta

    t, _ = cache.load_or_build(cache_dir() / "synthetic" / f"synthetic_{key}.safetensors", build)
    return SyntheticData(t["A"], t["S"], t["X"], meta)


# ---- toys ------------------------------------------------------------------------------------

def parent_child_toy(n: int = 20_000, d: int = 32, n_children: int = 10, n_other: int = 10, p_parent: float = 0.25,
                     p_child: float = 0.6, p_other: float = 0.1, seed: int = 0) -> tuple[LabelledActs, Tensor, Tensor]:
    """A toy with planted absorption bait: ``n_children`` child features fire only with parent A.

    On a token with A, with probability ``p_child`` exactly one child (uniform) fires too, so
    P(some child | A) = p_child. Features are orthonormal directions: rows of the returned
    (1 + n_children + n_other, d) matrix in the order A, children, others; magnitudes uniform in
    [0.5, 1.5]. Label = 1 when A is present (the "letter"), else 0. Also returns the (n, n_feat)
    ground-truth coefficients.
    """
    check_range("p_child", p_child, 0, 1)
    check_range("p_parent", p_parent, 0, 1, lo_open=True)
    n_feat = 1 + n_children + n_other
    if n_feat > d:
        raise ValueError(f"d must be >= 1 + n_children + n_other = {n_feat}, got {d}")
    g = torch.Generator().manual_seed(seed)
    feats = torch.linalg.qr(torch.randn(d, d, generator=g))[0].T[:n_feat]
    on = torch.zeros(n, n_feat)
    a = torch.rand(n, generator=g) < p_parent
    on[:, 0] = a.float()
    child = a & (torch.rand(n, generator=g) < p_child)
    which = torch.randint(0, max(n_children, 1), (n,), generator=g)
    if n_children:
        on[child.nonzero()[:, 0], 1 + which[child]] = 1.0
    on[:, 1 + n_children:] = (torch.rand(n, n_other, generator=g) < p_other).float()
    coef = on * (0.5 + torch.rand(n, n_feat, generator=g))
    return LabelledActs(coef @ feats, a.long(), [], 2), feats, coef


def toy_2d(n: int = 400, seed: int = 0) -> Tensor:
    """2-D toy data inside [-2, 2]^2: three Gaussian blobs, an elongated bar and an arc."""
    if not isinstance(n, int) or n < 5:
        raise ValueError(f"n must be an int >= 5, got {n!r}")
    rng = np.random.default_rng(seed)
    per = n // 5
    blobs = [rng.normal(c, s, size=(per, 2)) for c, s in (((-1.2, 1.1), 0.18), ((1.1, 1.2), 0.22), ((0.0, -1.3), 0.15))]
    t = rng.uniform(-1, 1, per)
    bar = np.stack([-1.3 + 0.12 * rng.normal(size=per), 0.9 * t - 0.3], 1)
    ang = rng.uniform(-0.6, 1.2, n - 4 * per)
    arc = np.stack([0.6 + 1.0 * np.cos(ang), -0.4 + 1.0 * np.sin(ang)], 1) + 0.06 * rng.normal(size=(len(ang), 2))
    return torch.tensor(np.concatenate(blobs + [bar, arc]), dtype=torch.float32)
