"""Latent dashboards: what one latent means, on one self-contained HTML card.

A card (:func:`latent_card`) shows, for one latent of an SAE on harvested activations: its firing
density, the histogram of its non-zero activations, its top-activating contexts with the token
highlighted (:func:`saelib.companion.examples.top_examples`), the output tokens its decoder row
promotes and suppresses through the unembedding (the logit lens, :func:`saelib.data.lm.logit_lens`;
Bricken et al. 2023, *Towards Monosemanticity*, whose feature pages these follow), and its nearest
latents by decoder cosine (:func:`saelib.metrics.matching.cosine_matrix`). :func:`dashboard` puts
several cards on one page (neighbours on the page link to their card) and saves it beside the
figures, ``figures/<notebook>/<name>.html``.

The HTML is self-contained: inline styles only (no ``<style>``, no script, no external URL; the
histogram is a base64 PNG), so it shows offline, as a static notebook output and on the forge's
notebook viewer. ``scripts/render_dashboard.py`` renders one in headless Chromium.
"""
from __future__ import annotations

import base64
import hashlib
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from ..data.harvest import Activations
from ..data.lm import logit_lens
from ..metrics.matching import cosine_matrix
from ..sae import SAE
from ..utils import atomic_path, check_int, figures_dir
from .examples import Example, examples_html, latent_activations, top_examples

_BOX = "border:1px solid #ccc;border-radius:6px;padding:8px 12px;margin:10px 0;font-family:sans-serif;font-size:13px"
_CHIP = "font-family:monospace;white-space:pre;background:{bg};border-radius:3px;padding:0 3px;margin:1px 2px;display:inline-block"


@dataclass
class LatentCard:
    """Everything a card shows about one latent (the numbers, for tests and notebooks, and ``html()``)."""

    latent: int
    n_tokens: int                      # kept tokens the activations were measured on
    activations: Tensor                # (n_fired,) the latent's non-zero activations
    examples: list[Example]            # top-activating contexts, one per sequence
    promoted: list[tuple[int, str, float]] = field(default_factory=list)    # (token id, text, logit)
    suppressed: list[tuple[int, str, float]] = field(default_factory=list)
    neighbours: list[tuple[int, float]] = field(default_factory=list)       # (latent, decoder cosine)
    denser_than: float | None = None   # fraction of the SAE's latents with a lower density
    title: str = ""

    @property
    def n_fired(self) -> int:
        return len(self.activations)

    @property
    def density(self) -> float:
        """Fraction of the kept tokens on which the latent is non-zero."""
        return self.n_fired / self.n_tokens if self.n_tokens else 0.0

    def html(self, linked: frozenset[int] = frozenset(), anchor: str = "latent-") -> str:
        """The card as an HTML fragment, ``id=anchor + str(latent)``; neighbours in ``linked`` link to
        their card on the same page."""
        density = f"fires on {self.n_fired:,} of {self.n_tokens:,} tokens ({100 * self.density:.3g}%)"
        if self.denser_than is not None:
            density += f", denser than {self.denser_than:.0%} of latents"
        if self.n_fired:
            density += f"; max activation {float(self.activations.max()):.3g}"
        head = (f"<div style='font-size:15px;font-weight:bold'>latent {self.latent}"
                f"{' · ' + html.escape(self.title) if self.title else ''}</div>"
                f"<div style='color:#555;margin:2px 0 6px'>{density}</div>")
        hist = (f"<img alt='activation histogram of latent {self.latent}' style='flex:none' "
                f"src='data:image/png;base64,{_histogram_png(self.activations)}'/>" if self.n_fired else "")
        contexts = (examples_html("top activations", self.examples) if self.examples
                    else "<div style='color:#555'>never fires on these tokens</div>")
        parts = [f"<div id='{anchor}{self.latent}' style='{_BOX}'><div style='display:flex;gap:16px;align-items:flex-start'>"
                 f"<div style='flex:1;min-width:0;overflow-x:auto'>", head, contexts]
        if self.promoted or self.suppressed:
            parts.append(_token_row("promotes", self.promoted, "#d9f0d3") + _token_row("suppresses", self.suppressed, "#f6d3d3"))
        if self.neighbours:
            chips = [(f"<a href='#{anchor}{j}'>{j}</a>" if j in linked else str(j)) + f" <span style='color:#555'>({c:.2f})</span>"
                     for j, c in self.neighbours]
            parts.append(f"<div style='margin-top:4px'><b>nearest latents</b> (decoder cosine): {', '.join(chips)}</div>")
        parts.append(f"</div>{hist}</div></div>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.html()

    def __repr__(self) -> str:  # short: a notebook stores it as the output's text/plain beside the HTML
        return f"LatentCard(latent={self.latent}, density={self.density:.3g}, {len(self.examples)} examples)"


@dataclass
class Dashboard:
    """Several latent cards on one page; ``html()`` is a complete document, ``save`` writes it beside the figures."""

    cards: list[LatentCard]
    title: str = "Latent dashboard"

    def fragment(self) -> str:
        linked = frozenset(c.latent for c in self.cards)
        # anchors unique per dashboard (several may share a notebook page) and stable across runs
        anchor = "d" + hashlib.sha1(f"{self.title}{sorted(linked)}".encode()).hexdigest()[:6] + "-latent-"
        return (f"<div style='max-width:1100px'><div style='font:bold 18px sans-serif;margin:6px 0'>{html.escape(self.title)}</div>"
                + "".join(c.html(linked, anchor) for c in self.cards) + "</div>")

    def html(self) -> str:
        return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"</head><body style='margin:16px;background:#fff;color:#111'>{self.fragment()}</body></html>\n")

    def _repr_html_(self) -> str:
        return self.fragment()

    def __repr__(self) -> str:  # short: a notebook stores it as the output's text/plain beside the HTML
        return f"Dashboard({self.title!r}, latents {[c.latent for c in self.cards]})"

    def save(self, notebook: str, name: str) -> Path:
        """Write the page atomically as ``figures/<notebook>/<name>.html`` (as ``save_figure`` does PNGs)."""
        if not name or "/" in name:
            raise ValueError(f"name must be a plain file stem, got {name!r}")
        path = figures_dir(notebook) / f"{name}.html"
        with atomic_path(path) as tmp:
            tmp.write_text(self.html(), encoding="utf-8")
        return path


def latent_card(sae: SAE, acts: Activations, latent: int, tokenizer, W_U: Tensor | None = None, **kw) -> LatentCard:
    """The card of one ``latent`` (see :func:`dashboard` for the arguments)."""
    return dashboard(sae, acts, [latent], tokenizer, W_U, **kw).cards[0]


@torch.no_grad()
def dashboard(sae: SAE, acts: Activations, latents: list[int], tokenizer, W_U: Tensor | None = None,
              titles: dict[int, str] | None = None, densities: Tensor | None = None, n_examples: int = 8,
              n_output_tokens: int = 8, n_neighbours: int = 5, window: tuple[int, int] = (12, 4),
              title: str = "Latent dashboard") -> Dashboard:
    """Cards for ``latents`` of ``sae`` measured on ``acts`` (one encoding pass for all of them).

    ``tokenizer`` decodes token ids (``decode([id])``); ``W_U`` (V, d) is the unembedding, e.g.
    :func:`saelib.data.lm.unembedding` of the LM (None: no promoted/suppressed tokens, e.g. MNIST);
    ``titles`` an optional label per latent; ``densities`` (d_sae,) the SAE's densities, to rank each
    latent's; ``window`` the context (left, right) of each example.
    """
    if len(latents) == 0:
        raise ValueError("latents must name at least one latent")
    for j in latents:
        check_int("latents[i]", j, 0, sae.d_sae - 1)
    latents = [int(j) for j in latents]
    for name, value in (("n_examples", n_examples), ("n_output_tokens", n_output_tokens), ("n_neighbours", n_neighbours)):
        check_int(name, value, 0)
    if W_U is not None and (W_U.ndim != 2 or W_U.shape[1] != sae.d_in):
        raise ValueError(f"W_U must be (vocab, d_in={sae.d_in}), got {tuple(W_U.shape)}")
    if densities is not None and densities.shape != (sae.d_sae,):
        raise ValueError(f"densities must be ({sae.d_sae},), got {tuple(densities.shape)}")
    values = latent_activations(sae, acts, latents)
    W_dec = sae.W_dec.detach()
    lens = logit_lens(W_dec[latents], W_U) if W_U is not None else None
    cos = cosine_matrix(W_dec[latents], W_dec)
    cos[torch.arange(len(latents)), torch.tensor(latents)] = -float("inf")   # a latent is not its own neighbour
    cards = []
    for i, j in enumerate(latents):
        v = values[:, i]
        card = LatentCard(j, len(v), v[v != 0].cpu(), top_examples(v, acts, tokenizer, n=n_examples, window=window),
                          title=(titles or {}).get(j, ""))
        if lens is not None and n_output_tokens:
            top, bottom = lens[i].topk(n_output_tokens), lens[i].topk(n_output_tokens, largest=False)
            card.promoted = _decoded(top, tokenizer)
            card.suppressed = _decoded(bottom, tokenizer)
        if n_neighbours:
            near = cos[i].topk(min(n_neighbours, sae.d_sae - 1))
            card.neighbours = [(int(k), float(c)) for c, k in zip(near.values, near.indices)]
        if densities is not None:
            card.denser_than = float((densities < densities[j]).float().mean())
        cards.append(card)
    return Dashboard(cards, title)


def _decoded(top: torch.return_types.topk, tokenizer) -> list[tuple[int, str, float]]:
    return [(int(t), tokenizer.decode([int(t)]), float(v)) for v, t in zip(top.values, top.indices)]


def _token_row(label: str, tokens: list[tuple[int, str, float]], bg: str) -> str:
    chips = "".join(f"<span title='{html.escape(repr(s))}: logit {v:+.2f}, id {t}' style='{_CHIP.format(bg=bg)}'>{_visible(s)}</span>"
                    for t, s, v in tokens)
    return f"<div style='margin-top:4px'><b>{label}</b> {chips}</div>"


def _visible(s: str, max_chars: int = 16) -> str:
    """A token's text, escaped, with newlines and tabs shown, cut at ``max_chars`` (the chip's title has it all)."""
    s = s if len(s) <= max_chars else s[: max_chars - 1] + "\u2026"
    return html.escape(s).replace("\n", "&#8629;").replace("\t", "&#8677;") or "&#8709;"


def _histogram_png(values: Tensor, bins: int = 40) -> str:
    """Base64 PNG of the histogram of the non-zero activations (log count axis). Drawn on a bare
    ``Figure`` (not pyplot), so a notebook does not also show it as a figure."""
    fig = Figure(figsize=(3.4, 1.5), dpi=100)
    ax = fig.add_subplot()
    ax.hist(np.asarray(values, dtype=np.float64), bins=bins, color="#0173b2", log=True)
    ax.set_xlabel("activation (non-zero)", fontsize=8)
    ax.set_ylabel("tokens", fontsize=8)
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout(pad=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")
