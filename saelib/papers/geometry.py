"""Spline geometry of sparse autoencoders (Budd et al. 2025, *SplInterp*, arXiv 2505.11836).

* An SAE is piecewise affine: on the region where the active set is S,
  x_hat = W_dec[S]^T (W_enc[:, S]^T x + b_enc[S]) + b_dec (rank <= |S|).
* The **k-means autoencoder** (encode = one-hot of the nearest centroid, decode = that
  centroid) is the piecewise-*constant* special case (Sec. 3 of the paper).
* **k-means + local PCA** (each region maps x to its mean plus the projection onto the
  region's top-r principal directions) is the piecewise-affine autoencoder the paper
  contrasts SAEs with: SAEs share encoder/decoder rows across regions, local PCA does not.
* The regions of a TopK SAE are k-th order **power diagrams**. With pre-activations
  z_i(x) = w_i . x + b_i, sites mu_i = w_i / 2 and weights r_i^2 = ||w_i||^2 / 4 + b_i,
  the power distance pi_i(x) = ||x - mu_i||^2 - r_i^2 equals ||x||^2 - z_i(x), so the k
  largest pre-activations are exactly the k sites nearest in power distance (our derivation
  of the paper's power-diagram statement; its own parametrisation was not retrieved).

The 2-D toy is :func:`saelib.data.synthetic.toy_2d`; the pictures (``plot_regions``, ``atom_grid``)
are in :mod:`saelib.companion.plots`.

Used by: notebook 09.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, get_args

import numpy as np
import torch
from torch import Tensor

from ..sae import SAE
from ..utils import as_numpy, check_choice

FlatAssign = Literal["flat", "centroid"]


def _check_2d(name: str, x: np.ndarray) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, d), got shape {x.shape}")


# ---- piecewise-constant and piecewise-affine autoencoders ------------------------------------

@dataclass
class KMeansAE:
    """k-means autoencoder: encode = one-hot of the nearest centroid, decode = the centroid.

    The piecewise-constant autoencoder of SplInterp Sec. 3 (a TopK SAE with k = 1, unit code
    values and decoder rows = centroids; see :func:`kmeans_as_topk`).
    """

    centroids: np.ndarray  # (C, d)

    @classmethod
    def fit(cls, x: Tensor | np.ndarray, n_clusters: int, seed: int = 0, n_init: int = 1,
            max_iter: int = 100) -> "KMeansAE":
        """Fit scikit-learn's KMeans (k-means++ init) with ``n_clusters`` centroids."""
        from sklearn.cluster import KMeans

        x = as_numpy(x).astype(np.float64)
        _check_2d("x", x)
        if not isinstance(n_clusters, int) or not 1 <= n_clusters <= len(x):
            raise ValueError(f"n_clusters must be an int in [1, N={len(x)}], got {n_clusters!r}")
        km = KMeans(n_clusters=n_clusters, n_init=n_init, max_iter=max_iter, random_state=seed).fit(x)
        return cls(km.cluster_centers_)

    def assign(self, x: Tensor | np.ndarray) -> np.ndarray:
        """Index of the nearest centroid for every row (the Voronoi region)."""
        x = as_numpy(x).astype(np.float64)
        d2 = (x ** 2).sum(1, keepdims=True) - 2 * x @ self.centroids.T + (self.centroids ** 2).sum(1)
        return d2.argmin(1)

    def encode(self, x: Tensor | np.ndarray) -> np.ndarray:
        """One-hot codes (N, C)."""
        labels = self.assign(x)
        return np.eye(len(self.centroids))[labels]

    def reconstruct(self, x: Tensor | np.ndarray) -> np.ndarray:
        """x_hat = the nearest centroid."""
        return self.centroids[self.assign(x)]


@dataclass
class LocalPCAAE:
    """"k-means + local PCA" piecewise-affine autoencoder (SplInterp Sec. 3, experiment e1).

    Region c has a mean m_c and an orthonormal basis U_c (d, r) of its top-r principal
    directions; x in region c maps to m_c + U_c U_c^T (x - m_c), an affine map of rank r.
    Regions come from k-means; with ``assign="flat"`` a point goes to the affine flat that
    reconstructs it best, and ``n_refine`` rounds of (re-assign, re-fit PCA) follow the
    k-means start (a k-flats / "k-means-esque" refinement that never increases training MSE).
    """

    means: np.ndarray  # (C, d)
    bases: np.ndarray  # (C, d, r)
    assign_rule: FlatAssign = "flat"

    @classmethod
    def fit(cls, x: Tensor | np.ndarray, n_clusters: int, rank: int, seed: int = 0, assign: FlatAssign = "flat",
            n_refine: int = 3, n_init: int = 1) -> "LocalPCAAE":
        """k-means into ``n_clusters`` regions, then the top-``rank`` PCA directions of each region."""
        from sklearn.cluster import KMeans

        check_choice("assign", assign, get_args(FlatAssign))
        x = as_numpy(x).astype(np.float64)
        _check_2d("x", x)
        if not isinstance(rank, int) or not 0 <= rank <= x.shape[1]:
            raise ValueError(f"rank must be an int in [0, d={x.shape[1]}], got {rank!r}")
        if not isinstance(n_refine, int) or n_refine < 0:
            raise ValueError(f"n_refine must be a non-negative int, got {n_refine!r}")
        labels = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=seed).fit_predict(x)
        model = cls._fit_regions(x, labels, n_clusters, rank, assign)
        for _ in range(n_refine if assign == "flat" else 0):
            new = model.assign(x)
            if np.array_equal(new, labels):
                break
            labels = new
            model = cls._fit_regions(x, labels, n_clusters, rank, assign, fallback=model)
        return model

    @classmethod
    def _fit_regions(cls, x: np.ndarray, labels: np.ndarray, n_clusters: int, rank: int, assign: FlatAssign,
                     fallback: "LocalPCAAE | None" = None) -> "LocalPCAAE":
        from sklearn.decomposition import PCA

        d = x.shape[1]
        means, bases = np.zeros((n_clusters, d)), np.zeros((n_clusters, d, rank))
        for c in range(n_clusters):
            pts = x[labels == c]
            if len(pts) == 0:  # an emptied region keeps its previous flat
                if fallback is not None:
                    means[c], bases[c] = fallback.means[c], fallback.bases[c]
                continue
            means[c] = pts.mean(0)
            r = min(rank, len(pts) - 1, d)
            if r > 0:
                bases[c, :, :r] = PCA(n_components=r, svd_solver="full").fit(pts).components_.T
        return cls(means, bases, assign)

    def _residuals(self, x: np.ndarray) -> np.ndarray:
        """Squared reconstruction error of every row under every region's affine map, (N, C)."""
        out = np.empty((len(x), len(self.means)))
        for c, (m, u) in enumerate(zip(self.means, self.bases)):
            xc = x - m
            out[:, c] = (xc ** 2).sum(1) - ((xc @ u) ** 2).sum(1)
        return out

    def assign(self, x: Tensor | np.ndarray) -> np.ndarray:
        """Region of every row: the best-reconstructing flat ("flat") or the nearest mean ("centroid")."""
        x = as_numpy(x).astype(np.float64)
        if self.assign_rule == "flat":
            return self._residuals(x).argmin(1)
        d2 = (x ** 2).sum(1, keepdims=True) - 2 * x @ self.means.T + (self.means ** 2).sum(1)
        return d2.argmin(1)

    def reconstruct(self, x: Tensor | np.ndarray) -> np.ndarray:
        """x_hat = m_c + U_c U_c^T (x - m_c) for the region c of each row."""
        x = as_numpy(x).astype(np.float64)
        labels = self.assign(x)
        out = np.empty_like(x)
        for c in np.unique(labels):
            sel = labels == c
            xc = x[sel] - self.means[c]
            out[sel] = self.means[c] + (xc @ self.bases[c]) @ self.bases[c].T
        return out


def mse(x: Tensor | np.ndarray, x_hat: Tensor | np.ndarray) -> float:
    """Mean squared error per entry, (1 / N d) sum ||x - x_hat||^2."""
    return float(((as_numpy(x).astype(np.float64) - as_numpy(x_hat)) ** 2).mean())


# ---- power diagrams of TopK encoders -------------------------------------------------------

def effective_encoder(sae: SAE) -> tuple[Tensor, Tensor]:
    """(W, b) with z = x W + b for raw x: folds the ``b_dec`` pre-subtraction into the bias."""
    W = sae.W_enc.detach()
    b = sae.b_enc.detach()
    if sae.apply_b_dec_to_input:
        b = b - sae.b_dec.detach() @ W
    return W, b


def power_diagram(W_enc: Tensor, b_enc: Tensor) -> tuple[Tensor, Tensor]:
    """Power-diagram parameters of the encoder z = x W_enc + b_enc (W_enc of shape (d, m)).

    Returns sites mu (m, d) with mu_i = w_i / 2 and weights r2 (m,) with
    r_i^2 = ||w_i||^2 / 4 + b_i (r_i^2 may be negative: an "imaginary" radius).
    """
    if W_enc.dim() != 2 or b_enc.shape != (W_enc.shape[1],):
        raise ValueError(f"W_enc must be (d, m) and b_enc (m,), got {tuple(W_enc.shape)} and {tuple(b_enc.shape)}")
    sites = W_enc.t() / 2
    r2 = (W_enc ** 2).sum(0) / 4 + b_enc
    return sites, r2


def power_distance(x: Tensor, sites: Tensor, r2: Tensor) -> Tensor:
    """pi_i(x) = ||x - mu_i||^2 - r_i^2 = ||x||^2 - 2 x.mu_i + ||mu_i||^2 - r_i^2, shape (N, m).

    Evaluated from the sites and weights (not through the identity pi_i = ||x||^2 - z_i).
    """
    return (x * x).sum(-1, keepdim=True) - 2 * x @ sites.t() + (sites * sites).sum(-1) - r2


def topk_sets(scores: Tensor, k: int, largest: bool = True) -> Tensor:
    """Sorted indices of the k largest (or smallest) entries per row, (N, k)."""
    if not isinstance(k, int) or not 1 <= k <= scores.shape[-1]:
        raise ValueError(f"k must be an int in [1, {scores.shape[-1]}], got {k!r}")
    return scores.topk(k, dim=-1, largest=largest).indices.sort(-1).values


def power_diagram_agreement(x: Tensor, W_enc: Tensor, b_enc: Tensor, k: int) -> Tensor:
    """Per row: is the set of the k largest pre-activations the set of the k nearest sites in power distance?

    Computed in float64; the power distance is evaluated from its definition, so agreement is
    a check of the identity pi_i(x) = ||x||^2 - z_i(x), not a restatement of it.
    """
    x, W, b = x.double(), W_enc.double(), b_enc.double()
    sites, r2 = power_diagram(W, b)
    by_pre = topk_sets(x @ W + b, k, largest=True)
    by_power = topk_sets(power_distance(x, sites, r2), k, largest=False)
    return (by_pre == by_power).all(-1)


def kmeans_as_topk(centroids: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """Encoder (W, b) of a TopK (k = 1) SAE whose single active latent is the nearest centroid.

    With w_i = 2 c_i and b_i = -||c_i||^2: the sites are the centroids, all power radii are 0,
    and the power diagram is the Voronoi diagram of the centroids.
    """
    c = torch.as_tensor(as_numpy(centroids), dtype=torch.float64)
    return 2 * c.t(), -(c ** 2).sum(1)


# ---- region (active-set) maps on 2-D inputs --------------------------------------------------

@dataclass
class RegionMap:
    """Active-set labels on a regular 2-D grid: ``labels[i, j]`` for the point (xs[j], ys[i])."""

    xs: np.ndarray
    ys: np.ndarray
    labels: np.ndarray       # (ny, nx) integer region ids
    active_sets: np.ndarray  # (n_regions, m) boolean: the active set of each region id

    @property
    def n_regions(self) -> int:
        return len(self.active_sets)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        return (float(self.xs[0]), float(self.xs[-1]), float(self.ys[0]), float(self.ys[-1]))

    def boundaries(self) -> np.ndarray:
        """Boolean (ny, nx) mask of grid points whose right or upper neighbour lies in another region."""
        lab = self.labels
        edge = np.zeros_like(lab, dtype=bool)
        edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
        edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
        return edge


def grid_2d(xlim: tuple[float, float], ylim: tuple[float, float], resolution: int = 300
            ) -> tuple[np.ndarray, np.ndarray, Tensor]:
    """xs, ys and the (ny * nx, 2) float32 grid points, row-major over (y, x)."""
    if not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an int >= 2, got {resolution!r}")
    xs, ys = np.linspace(*xlim, resolution), np.linspace(*ylim, resolution)
    gx, gy = np.meshgrid(xs, ys)
    return xs, ys, torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)


def region_map(active: Callable[[Tensor], Tensor], xlim: tuple[float, float] = (-2, 2),
               ylim: tuple[float, float] = (-2, 2), resolution: int = 300) -> RegionMap:
    """Label every point of a 2-D grid by its active set.

    ``active(x)`` maps (N, 2) points to an (N, m) boolean (or numeric, non-zero = active) tensor,
    e.g. ``lambda x: sae.encode(x) != 0`` or :func:`topk_active`.
    """
    xs, ys, pts = grid_2d(xlim, ylim, resolution)
    with torch.no_grad():
        act = as_numpy(active(pts)) != 0
    if act.ndim != 2 or act.shape[0] != len(pts):
        raise ValueError(f"active must return an (N, m) array for N={len(pts)} points, got shape {act.shape}")
    sets, inverse = np.unique(act, axis=0, return_inverse=True)
    return RegionMap(xs, ys, inverse.reshape(len(ys), len(xs)), sets)


def topk_active(W_enc: Tensor, b_enc: Tensor, k: int) -> Callable[[Tensor], Tensor]:
    """Active-set function of a TopK selection: the k largest pre-activations x W + b."""
    def active(x: Tensor) -> Tensor:
        pre = x.double() @ W_enc.double() + b_enc.double()
        return torch.zeros_like(pre, dtype=torch.bool).scatter(-1, pre.topk(k, -1).indices, True)
    return active


def power_active(sites: Tensor, r2: Tensor, k: int) -> Callable[[Tensor], Tensor]:
    """Active-set function of the k-th order power diagram: the k sites nearest in power distance."""
    def active(x: Tensor) -> Tensor:
        pi = power_distance(x.double(), sites.double(), r2.double())
        return torch.zeros_like(pi, dtype=torch.bool).scatter(-1, pi.topk(k, -1, largest=False).indices, True)
    return active
