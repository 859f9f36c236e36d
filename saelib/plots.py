"""House style for every figure, and the one save helper (``figures/<notebook>/<name>.png``)."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import seaborn as sns

from .utils import atomic_path, repo_root

PALETTE = "colorblind"


def set_style() -> None:
    """Seaborn whitegrid, colour-blind-safe palette, readable fonts."""
    sns.set_theme(style="whitegrid", palette=PALETTE, context="notebook", font_scale=1.1)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "axes.titleweight": "bold",
                                "figure.autolayout": False, "legend.frameon": True})


def colors(n: int) -> list:
    """``n`` colours from the colour-blind-safe palette."""
    return sns.color_palette(PALETTE, n)


def figures_dir(notebook: str) -> Path:
    """``<repo>/figures/<notebook>`` (override the root with ``$SAELIB_FIGURES``)."""
    import os

    root = Path(os.environ.get("SAELIB_FIGURES", repo_root() / "figures"))
    return root / notebook


def save_figure(fig: plt.Figure, notebook: str, name: str) -> Path:
    """Save ``fig`` atomically as ``figures/<notebook>/<name>.png`` and return the path."""
    if not name or "/" in name:
        raise ValueError(f"name must be a plain file stem, got {name!r}")
    path = figures_dir(notebook) / f"{name}.png"
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def log_axis(ax: plt.Axes, axis: str = "x", ticks: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)) -> None:
    """Log scale with plain-number tick labels at 1-2-5 steps (no overlapping minor labels)."""
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(FixedLocator(list(ticks)))
    target.set_major_formatter(ScalarFormatter())
    target.set_minor_formatter(NullFormatter())
