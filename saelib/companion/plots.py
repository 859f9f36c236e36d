"""House style for every figure, the one save helper (``figures/<notebook>/<name>.png``), the
drawings of the spline-geometry notebook (region maps, decoder-atom grids), the PAM notebooks'
test-MSE-vs-epoch curves (:func:`plot_test_mse`, notebooks 09 and 10) and the committed claims'
intervals on one scale (:func:`plot_claim_intervals`, :func:`plot_seed_values`; ``docs/uncertainty.md``)."""
from __future__ import annotations

import math
import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal, Mapping, NamedTuple, Sequence, get_args

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from ..papers.geometry import RegionMap
from ..utils import as_numpy, atomic_path, check_choice, figures_dir
from .claims import decide

PALETTE = "colorblind"
VERDICT_COLORS = {"reproduced": "#0173b2", "partly": "#56b4e9", "not reproduced": "#d55e00", "inconclusive": "#949494"}
"""One colour per verdict, from the colour-blind-safe palette (blue: supported, vermilion: against, grey: neither)."""
VERDICT_MARKERS = {"reproduced": "o", "partly": "D", "not reproduced": "X", "inconclusive": "s"}
"""One marker per verdict, so that the verdict reads without colour too."""
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
                    baseline: float | None = None, baseline_label: str = "predict the mean (variance)",
                    train: bool = False) -> plt.Figure:
    """Test MSE against epoch, one panel per setting (e.g. activation), one line per method and seed.

    ``histories[setting, method, seed]`` is a training history with columns ``epoch`` and ``test_mse``
    (its first row, before training, is left out); ``styles[method]`` the ``plot`` keywords of that
    method (colour, marker, label). Seed ``seed`` is drawn with markers and labelled; the others faint,
    unlabelled. ``title`` is formatted with ``name``, ``seed`` and ``n_faint``; ``baseline``, if given,
    is a dotted grey horizontal line (e.g. the test set's variance: the MSE of predicting the mean).
    ``train=True`` adds seed ``seed``'s training MSE (column ``train_mse``, where recorded) as a dashed line of the
    method's colour, so a gap between training and test error shows.
    """
    fig, axes = plt.subplots(1, len(settings), figsize=(7.5 * len(settings), 4.8), squeeze=False)
    for ax, name in zip(axes[0], settings):
        for m in methods:
            for s in seeds:
                h = histories[name, m, s]
                style = styles[m] if s == seed else {**styles[m], "label": None, "alpha": 0.35, "lw": 1}
                ax.plot(h["epoch"][1:], h["test_mse"][1:], ms=5 if s == seed else 0, **style)
                if train and s == seed and "train_mse" in h and h["train_mse"].notna().any():
                    ax.plot(h["epoch"][1:], h["train_mse"][1:], color=styles[m].get("color"), ls="--", lw=1.2)
        if train:
            ax.plot([], [], color="0.3", ls="--", lw=1.2, label=f"training MSE (seed {seed}, dashed)")
        ax.set(yscale="log", xlabel="epoch", ylabel=ylabel, title=title.format(name=name, seed=seed, n_faint=len(seeds) - 1))
        ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        if baseline is not None:
            ax.axhline(baseline, color="grey", ls=":", lw=1.2, label=baseline_label)
        ax.legend(fontsize=9)
    return fig


# ---- the committed claims on one scale (docs/uncertainty.md) ----------------------------------

Panel = Literal["effect", "margin 0", "equivalence"]
PANEL_XLABEL = {
    "effect": "effect / margin  (0 = no effect, 1 = the claim's margin; symmetric log beyond ±1)",
    "margin 0": "effect / its largest |bound|  (margin 0: the tolerance is inside the statistic, only the sign decides)",
    "equivalence": "effect / margin  (reproduced iff the whole interval lies in [-1, 1])",
}
PANEL_TITLE = {"effect": "Effect claims", "margin 0": "Effect claims with margin 0",
               "equivalence": "Equivalence claims (\"comparable\", \"within x%\")"}


class ScaledClaim(NamedTuple):
    """A stored claim's estimate and interval in the claimed direction, divided by ``scale``."""

    notebook: str
    claim: str
    verdict: str
    panel: Panel
    estimate: float
    lo: float
    hi: float
    scale: float    # the margin, or for a margin of 0 the interval's largest |bound|


def oriented(c: Mapping) -> tuple[float, float, float] | None:
    """(estimate, lo, hi) of a stored claim *in the claimed direction*, or None without a finite interval.

    claims.json keeps the statistic's own sign (``ClaimsTable.add_claim`` flips a ``"less"`` claim only
    to score it), so here a ``"less"`` claim becomes (-estimate, -hi, -lo): the interval ``decide`` saw.
    A missing estimate is taken as the interval's midpoint.
    """
    lo, hi = c.get("interval") or (None, None)
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    est = c.get("estimate")
    est = (lo + hi) / 2 if est is None or not math.isfinite(est) else est
    if c.get("direction") == "less":
        return -est, -hi, -lo
    if c.get("direction") not in (None, "greater"):
        raise ValueError(f"direction must be 'greater' or 'less', got {c.get('direction')!r}")
    return est, lo, hi


def claim_test(c: Mapping, equivalence: Collection[tuple[str, str]] = ()) -> str:
    """The rule that scored a stored claim: its ``test`` field; for a claims.json written before that field
    existed, ``"equivalence"`` if (notebook, claim) is in ``equivalence``, else ``"effect"``."""
    if "test" in c:
        return c["test"]
    return "equivalence" if (c.get("notebook"), c["claim"]) in equivalence else "effect"


def leave_out_reason(c: Mapping) -> str | None:
    """Why a stored claim has no interval to draw: ``"failed precondition"``, ``"no interval"``, or None."""
    if c.get("precondition"):
        return "failed precondition"
    if c.get("margin") is None or oriented(c) is None:
        return "no interval"
    return None


def scale_claims(claims: Sequence[Mapping], equivalence: Collection[tuple[str, str]] = ()
                 ) -> tuple[list[ScaledClaim], dict[str, list[Mapping]]]:
    """Each drawable claim (``kind == "claim"``, a finite interval, its precondition held) on its panel's
    scale, and the others by :func:`leave_out_reason`. Each claim dict carries its ``notebook``."""
    drawn, left = [], {}
    for c in claims:
        if c.get("kind", "claim") != "claim":
            continue
        reason = leave_out_reason(c)
        if reason is not None:
            left.setdefault(reason, []).append(c)
            continue
        est, lo, hi = oriented(c)
        m = float(c["margin"])
        panel = "equivalence" if claim_test(c, equivalence) == "equivalence" else "effect" if m > 0 else "margin 0"
        scale = m if m > 0 else max(abs(lo), abs(hi)) or 1.0
        drawn.append(ScaledClaim(c.get("notebook", ""), c["claim"], c["verdict"], panel, est / scale, lo / scale,
                                 hi / scale, scale))
    return drawn, left


def short_label(c: ScaledClaim, width: int = 70) -> str:
    """'05 · claim', cut at word boundaries to at most ``width`` characters of claim; a closing parenthesis
    (what tells "(FVU)" from "(ΔLM)") is kept, itself cut at its first ';' or ','."""
    text = c.claim
    if len(text) > width:
        head, paren = text, ""
        if text.endswith(")") and "(" in text:
            cut = text.rindex("(")
            head, paren = text[:cut].rstrip(), text[cut:]
            if len(paren) > width // 3:
                paren = re.split(r"[;,]", paren, maxsplit=1)[0].rstrip() + "…)"
        room = width - (len(paren) + 1 if paren else 0)
        if len(head) > room:
            head = head[: room - 1].rsplit(" ", 1)[0].rstrip(",;") + "…"
        text = f"{head} {paren}" if paren else head
    return f"{c.notebook[:2]} · {text}"


def _draw_rows(ax: plt.Axes, rows: Sequence[ScaledClaim], clip: float | None) -> int:
    """One horizontal interval and estimate marker per row, top to bottom; returns how many ends were clipped."""
    n_clipped = 0
    for y, r in enumerate(rows):
        color, marker = VERDICT_COLORS[r.verdict], VERDICT_MARKERS[r.verdict]
        lo, hi = r.lo, r.hi
        if clip is not None:
            lo, hi = max(lo, -clip), min(hi, clip)
            for end, at, m in ((r.lo, -clip, "<"), (r.hi, clip, ">")):
                if abs(end) > clip:
                    ax.plot(at, y, marker=m, color=color, ms=9, clip_on=False, zorder=4)
                    n_clipped += 1
        ax.hlines(y, lo, hi, color=color, lw=3, zorder=3)
        if clip is None or abs(r.estimate) <= clip:
            ax.plot(r.estimate, y, marker=marker, color=color, mec="white", mew=0.8, ms=8, ls="", zorder=5)
    ax.set_yticks(range(len(rows)), [short_label(r) for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    return n_clipped


def _decorate(ax: plt.Axes, panel: Panel, rows: Sequence[ScaledClaim], clip: float | None) -> None:
    """Reference lines, scale and labels of one panel."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    line = dict(color="black", lw=1.1, zorder=2)
    if panel == "effect":
        ax.set_xscale("symlog", linthresh=1, linscale=1.5)
        ticks = [t for t in (-1000, -100, -10, -1, 0, 1, 10, 100, 1000) if clip is None or abs(t) <= clip]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}".replace("-", "\u2212")))
        lim = clip if clip is not None else max(2.0, *(max(abs(r.lo), abs(r.hi)) for r in rows))
        ax.set_xlim(-lim, lim)
        marks = {0: ("-", "no effect", "right"), 1: ("--", "margin", "left")}
    elif panel == "margin 0":
        ax.set_xlim(-1.15, 1.15)
        marks = {0: ("-", "0 = the tolerance", "center")}
    else:
        ax.axvspan(-1, 1, color="0.92", zorder=0)
        lim = max(1.5, *(max(abs(r.lo), abs(r.hi)) * 1.1 for r in rows))
        ax.set_xlim(-lim, lim)
        marks = {-1: ("--", "−margin", "center"), 0: (":", "0", "center"), 1: ("--", "margin", "center")}
    top = ax.get_xaxis_transform()
    for x, (ls, text, ha) in marks.items():
        ax.axvline(x, ls=ls, **line)
        ax.text(x, 1.01, f" {text} " if ha == "center" else (f"{text} " if ha == "right" else f" {text}"),
                transform=top, ha=ha, va="bottom", fontsize=9.5)
    ax.set_xlabel(PANEL_XLABEL[panel], fontsize=10)
    ax.set_title(PANEL_TITLE[panel], loc="left", fontsize=12, pad=17)
    ax.tick_params(axis="y", labelsize=9.5)


def plot_claim_intervals(claims: Sequence[Mapping], equivalence: Collection[tuple[str, str]] = (),
                         clip: float | None = 1000.0, width: float = 13.0) -> plt.Figure:
    """A forest plot of every scored claim: its interval in the claimed direction, in units of its margin.

    ``claims`` are claims.json entries, each with its ``notebook`` added; ``equivalence`` names the
    (notebook, claim) pairs scored as equivalence claims when the entries lack a ``test`` field
    (:func:`claim_test`). One panel per kind of scale (:data:`PANEL_XLABEL`): effect claims with a
    margin (0 and 1 are drawn), effect claims with margin 0, equivalence claims ([-1, 1] shaded).
    Colour and marker give the stored verdict; ends beyond ``clip`` margins are drawn as arrows at the
    axis edge. Claims without an interval or with a failed precondition are counted below the panels.
    """
    from matplotlib.lines import Line2D

    drawn, left = scale_claims(claims, equivalence)
    panels = [p for p in get_args(Panel) if any(r.panel == p for r in drawn)]
    if not panels:
        raise ValueError("no claim with a finite interval and a holding precondition to draw")
    rows = {p: [r for r in drawn if r.panel == p] for p in panels}
    heights = [len(rows[p]) + 2.6 for p in panels]
    height = 0.27 * sum(heights) + 1.2
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, height), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    n_clipped = 0
    for ax, p in zip(axes[:, 0], panels):
        n_clipped += _draw_rows(ax, rows[p], clip if p == "effect" else None)
        _decorate(ax, p, rows[p], clip)
    handles = [Line2D([], [], color=VERDICT_COLORS[v], marker=VERDICT_MARKERS[v], mec="white", lw=3, ms=8, label=v)
               for v in VERDICT_COLORS]
    fig.legend(handles=handles, loc="upper center", ncol=4, fontsize=10, bbox_to_anchor=(0.5, 1.0), frameon=False,
               title="stored verdict: colour and marker; line: the 95% interval in the claimed direction")
    notes = [f"Drawn: {len(drawn)} claims. Not drawn: "
             + ("; ".join(f"{len(v)} with {k}" for k, v in sorted(left.items())) or "none") + "."]
    if n_clipped:
        notes.append(f"Arrows: {n_clipped} interval end(s) beyond ±{clip:g} margins, cut at the axis edge.")
    fig.text(0.01, 0.0, " ".join(notes), fontsize=9.5, ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.3 / height, 1, 1 - 0.75 / height))
    return fig


_LABEL_BOX = dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85)


def plot_seed_values(ax: plt.Axes, per_seed: Mapping[int, float], interval: tuple[float, float, float], margin: float,
                     verdict: str, xlabel: str, title: str) -> None:
    """One claim's per-seed values (each with what ``decide`` says of that seed alone: no uncertainty, so at
    most ``partly``) above the interval over all seeds (``interval`` = estimate, lo, hi; ``verdict`` its
    stored verdict), with lines at 0 and the margin, all in the claim's own units."""
    seeds = list(per_seed)
    for y, s in enumerate(seeds):
        v = decide(per_seed[s], per_seed[s], margin, uncertainty="none")
        ax.plot(per_seed[s], y, marker=VERDICT_MARKERS[v], color=VERDICT_COLORS[v], mec="white", ms=10, ls="", zorder=5)
        ax.annotate(f"alone: {v}", (per_seed[s], y), xytext=(0, 8), textcoords="offset points", ha="center",
                    va="bottom", fontsize=9.5, color="0.2", bbox=_LABEL_BOX)
    y = len(seeds)
    est, lo, hi = interval
    ax.hlines(y, lo, hi, color=VERDICT_COLORS[verdict], lw=3.5, zorder=3)
    ax.plot(est, y, marker=VERDICT_MARKERS[verdict], color=VERDICT_COLORS[verdict], mec="white", ms=10, zorder=5)
    ax.annotate(f"{len(seeds)} seeds: {verdict}", (est, y), xytext=(0, 8), textcoords="offset points", ha="center",
                va="bottom", fontsize=9.5, fontweight="bold", color="0.1", bbox=_LABEL_BOX)
    ax.axvline(0, color="black", lw=1.1, zorder=2)
    ax.axvline(margin, color="black", lw=1.1, ls="--", zorder=2)
    top = ax.get_xaxis_transform()
    ax.text(0, 1.01, "0", transform=top, ha="center", va="bottom", fontsize=9.5)
    ax.text(margin, 1.01, f"margin {margin:g}", transform=top, ha="left", va="bottom", fontsize=9.5)
    ax.set_yticks(range(len(seeds) + 1), [f"seed {s}" for s in seeds] + [f"paired t, 95%\nover {len(seeds)} seeds"])
    ax.set_ylim(len(seeds) + 0.7, -0.7)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=11, pad=18)
