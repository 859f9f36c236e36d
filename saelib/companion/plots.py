"""House style for every figure, the one save helper (``figures/<notebook>/<name>.png``), the
drawings of the spline-geometry notebook (region maps, decoder-atom grids) and the PAM notebooks'
test-MSE-vs-epoch curves (:func:`plot_test_mse`, notebooks 09 and 10)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Mapping, Sequence, get_args

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from ..papers.geometry import RegionMap
from ..utils import as_numpy, atomic_path, check_choice, figures_dir

PALETTE = "colorblind"
RegionColor = Literal["region", "latent"]
Axis = Literal["x", "y"]


def set_style() -> None:
    """Seaborn whitegrid, colour-blind-safe palette, readable fonts."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook", font_scale=1.1)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold",
                                "figure.autolayout": False, "legend.frameon": True})


def colors(n: int) -> list:
    """``n`` colours from the colour-blind-safe palette."""
    return sns.color_palette(PALETTE, n)


def save_figure(fig: plt.Figure, notebook: str, name: str) -> Path:
    """Save ``fig`` atomically as ``figures/<notebook>/<name>.png`` and return the path."""
    if not name or "/" in name:
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    path = figures_dir(notebook) / f"{name}.png"
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def log_axis(ax: plt.Axes, axis: Axis = "x", ticks: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)) -> None:
    """Log scale with plain-number tick labels at 1-2-5 steps (no overlapping minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    check_choice("axis", axis, get_args(Axis))
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(FixedLocator(list(ticks)))
    target.set_major_formatter(ScalarFormatter())
    target.set_minor_formatter(NullFormatter())


# ---- spline geometry (notebook 09) -------------------------------------------------------------

def plot_regions(ax, rm: RegionMap, data: torch.Tensor | np.ndarray | None = None, overlay: RegionMap | None = None,
                 sites: torch.Tensor | np.ndarray | None = None, r2: torch.Tensor | np.ndarray | None = None,
                 cmap: str = "tab20", overlay_label: str = "power-diagram boundary", color_by: RegionColor = "region") -> None:
    """Draw region colours, optional data points, another map's boundaries (dashed) and power circles.

    ``color_by="latent"`` colours a region by its lowest-index active latent (stable colours across
    maps of the same latents, e.g. k = 1); ``"region"`` by its region id. Circles have radius
    sqrt(r_i^2) where r_i^2 > 0 (sites with r_i^2 <= 0 are drawn as crosses only).
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    check_choice("color_by", color_by, get_args(RegionColor))
    lab = rm.active_sets.argmax(1)[rm.labels] if color_by == "latent" else rm.labels
    ax.imshow(lab % 20, origin="lower", extent=rm.extent, cmap=cmap, vmin=0, vmax=19, alpha=0.55,
              interpolation="nearest", aspect="equal")
    handles = []
    if data is not None:
        d = as_numpy(data)
        ax.scatter(d[:, 0], d[:, 1], s=6, c="k", alpha=0.6, lw=0)
        handles.append(Line2D([], [], ls="", marker="o", ms=4, c="k", label="data"))
    if overlay is not None:
        ax.contour(overlay.xs, overlay.ys, overlay.labels, levels=np.arange(overlay.n_regions) + 0.5,
                   colors="k", linewidths=1.2, linestyles="--")
        handles.append(Line2D([], [], ls="--", c="k", label=overlay_label))
    if sites is not None:
        s = as_numpy(sites)
        ax.scatter(s[:, 0], s[:, 1], marker="X", s=70, c="crimson", edgecolor="white", lw=0.8, zorder=5)
        handles.append(Line2D([], [], ls="", marker="X", ms=8, c="crimson", label="site $\\mu_i$"))
        if r2 is not None:
            for (cx, cy), rr in zip(s, as_numpy(r2)):
                if rr > 0:
                    ax.add_patch(plt.Circle((cx, cy), float(np.sqrt(rr)), fill=False, color="crimson", lw=1.0, alpha=0.8))
            handles.append(Line2D([], [], ls="-", c="crimson", label="radius $r_i$"))
    ax.set(xlim=rm.extent[:2], ylim=rm.extent[2:], xlabel="$x_1$", ylabel="$x_2$")
    if handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)


def atom_grid(vectors: torch.Tensor | np.ndarray, shape: tuple[int, int] = (28, 28), ncol: int = 8, pad: int = 1) -> np.ndarray:
    """Tile rows of ``vectors`` (n, h*w) into one image, each tile scaled to [-1, 1] by its max |value|.

    NaN padding separates tiles (shown as the background colour by imshow).
    """
    v = as_numpy(vectors).astype(np.float64)
    h, w = shape
    if v.ndim != 2 or v.shape[1] != h * w:
        raise ValueError(f"vectors must be (n, {h * w}) for shape={shape}, got {v.shape}")
    n = len(v)
    nrow = -(-n // ncol)
    out = np.full((nrow * (h + pad) - pad, ncol * (w + pad) - pad), np.nan)
    for i, vec in enumerate(v):
        r, c = divmod(i, ncol)
        out[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = \
            vec.reshape(h, w) / max(np.abs(vec).max(), 1e-12)
    return out


def plot_test_mse(histories: Mapping[tuple[str, str, int], pd.DataFrame], settings: Sequence[str],
                    methods: Sequence[str], seeds: Sequence[int], seed: int, styles: Mapping[str, dict],
                    ylabel: str, title: str = "{name}: test MSE vs epoch (seed {seed} marked, {n_faint} more seeds faint)",
                    baseline: float | None = None, baseline_label: str = "predict the mean (variance)") -> plt.Figure:
    """Test MSE against epoch, one panel per setting (e.g. activation), one line per method and seed.

    ``histories[setting, method, seed]`` is a training history with columns ``epoch`` and ``test_mse``
    (its first row, before training, is left out); ``styles[method]`` the ``plot`` keywords of that
    method (colour, marker, label). Seed ``seed`` is drawn with markers and labelled; the others faint,
    unlabelled. ``title`` is formatted with ``name``, ``seed`` and ``n_faint``; ``baseline``, if given,
    is a dotted grey horizontal line (e.g. the test set's variance: the MSE of predicting the mean).
    """
    fig, axes = plt.subplots(1, len(settings), figsize=(7.5 * len(settings), 4.8), squeeze=False)
    for ax, name in zip(axes[0], settings):
        for m in methods:
            for s in seeds:
                h = histories[name, m, s]
                style = styles[m] if s == seed else {**styles[m], "label": None, "alpha": 0.35, "lw": 1}
                ax.plot(h["epoch"][1:], h["test_mse"][1:], ms=5 if s == seed else 0, **style)
        ax.set(yscale="log", xlabel="epoch", ylabel=ylabel, title=title.format(name=name, seed=seed, n_faint=len(seeds) - 1))
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if baseline is not None:
            ax.axhline(baseline, color="grey", ls=":", lw=1.2, label=baseline_label)
        ax.legend(fontsize=9)
    return fig
