"""Adaptive Temporal Masking, *reconstructed* from the abstract of Li & Ren (Oct 2025, arXiv 2510.08855).

No code or full text was available: every constant below is our choice (named in the notebook).

A ReLU SAE with the decoder-norm-weighted L1 penalty (:class:`saelib.sparsifiers.relu.ReLU`) that keeps,
per latent i, exponential moving averages (decay ``decay``) of

    m_i = mean f_i over the tokens where f_i > 0          (magnitude when active)
    p_i = fraction of tokens with f_i > 0                 (firing frequency)
    r_i = mean over tokens of |f_i| * ||d_i||             (reconstruction contribution)

computed from the *unmasked* codes ReLU(z) of each training batch. Importance is a weighted sum
of z-scored logs (z-scored over latents):

    I_i = w_m z(log m_i) + w_p z(log p_i) + w_r z(log r_i)

After ``warmup_steps`` optimiser steps, tau = mean(I) - c std(I); a latent with I_i < tau is
masked (its code set to exactly 0 for the next training step) with probability
sigmoid((tau - I_i) / T), T annealed geometrically from ``temp_start`` to ``temp_end`` over
``anneal_steps``; at most ``max_mask_frac`` of the latents (the least important) are eligible.
Masks are resampled after every step from a generator seeded with ``mask_seed``; a masked latent
gets no gradient that step and is left to recover (no auxiliary loss). Eval mode never masks.

``max_mask_prob`` < 1 caps each masking probability (the notebook's *recovering mask*, an extension of
ours): a latent below tau still trains on at least a (1 - max_mask_prob) share of the steps in
expectation, so its importance, tracked from its unmasked codes, can rise back above tau. With the
default 1.0 the mask is as reconstructed above, where a latent masked with probability near 1 gets no
gradient, keeps its low importance and stays masked.

Used by: notebook 06.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..utils import check_range
from .base import register
from .relu import ReLU

_EPS = 1e-8


def zscore(v: Tensor) -> Tensor:
    """(v - mean) / std over the last dimension (std floored at 1e-8)."""
    return (v - v.mean()) / v.std().clamp_min(_EPS)


def importance_score(mag: Tensor, freq: Tensor, contrib: Tensor,
                     weights: tuple[float, float, float] = (1 / 3, 1 / 3, 1 / 3)) -> Tensor:
    """I = w_m z(log m) + w_p z(log p) + w_r z(log r) (our reconstruction of the abstract's combination)."""
    w_m, w_p, w_r = weights
    logs = [torch.log(t.clamp_min(0) + _EPS) for t in (mag, freq, contrib)]
    return w_m * zscore(logs[0]) + w_p * zscore(logs[1]) + w_r * zscore(logs[2])


def mask_probabilities(importance: Tensor, c: float, temperature: float, max_mask_frac: float,
                       max_mask_prob: float = 1.0) -> tuple[Tensor, float]:
    """Per-latent masking probability and the threshold tau = mean(I) - c std(I).

    p_i = min(sigmoid((tau - I_i) / T), max_mask_prob) for I_i < tau, else 0; only the
    floor(max_mask_frac * n) least important latents below tau may be masked.
    """
    tau = float(importance.mean() - c * importance.std())
    below = importance < tau
    cap = int(math.floor(max_mask_frac * importance.numel()))
    if int(below.sum()) > cap:
        keep = torch.zeros_like(below)
        if cap > 0:
            keep[importance.topk(cap, largest=False).indices] = True
        below &= keep
    probs = torch.sigmoid((tau - importance) / temperature).clamp_max(max_mask_prob) * below
    return probs, tau


@register
class ATM(ReLU):
    """ReLU-L1 SAE with adaptive temporal masking (Li & Ren 2025, reconstructed; see module doc)."""

    name = "atm"

    def __init__(self, n_latents: int, decay: float = 0.99, weights: tuple[float, float, float] | list[float] = (1 / 3, 1 / 3, 1 / 3),
                 c: float = 1.5, warmup_steps: int = 50, anneal_steps: int = 200, temp_start: float = 1.0,
                 temp_end: float = 0.1, max_mask_frac: float = 0.1, max_mask_prob: float = 1.0, mask_seed: int = 0,
                 record: bool = True) -> None:
        super().__init__()
        check_range("n_latents", n_latents, 1)
        check_range("decay", decay, 0, 1)
        if len(weights) != 3 or any(w < 0 for w in weights):
            raise ValueError(f"weights must be 3 non-negative numbers (magnitude, frequency, contribution), got {weights!r}")
        check_range("c", c, 0)
        check_range("warmup_steps", warmup_steps, 0)
        check_range("anneal_steps", anneal_steps, 1)
        check_range("temp_start", temp_start, 0, lo_open=True)
        check_range("temp_end", temp_end, 0, lo_open=True)
        check_range("max_mask_frac", max_mask_frac, 0, 1)
        check_range("max_mask_prob", max_mask_prob, 0, 1)
        check_range("mask_seed", mask_seed, 0)
        self.n_latents, self.decay, self.weights = int(n_latents), float(decay), tuple(float(w) for w in weights)
        self.c, self.warmup_steps, self.anneal_steps = float(c), int(warmup_steps), int(anneal_steps)
        self.temp_start, self.temp_end, self.max_mask_frac = float(temp_start), float(temp_end), float(max_mask_frac)
        self.max_mask_prob = float(max_mask_prob)
        self.mask_seed, self.record = int(mask_seed), bool(record)
        for buf in ("atm_mag", "atm_freq", "atm_contrib"):
            self.register_buffer(buf, torch.zeros(n_latents))
        self.register_buffer("atm_mask", torch.zeros(n_latents, dtype=torch.bool))
        self.register_buffer("atm_steps", torch.tensor(0, dtype=torch.long))
        self.gen = torch.Generator().manual_seed(self.mask_seed)
        self._pending: tuple[Tensor, Tensor, Tensor] | None = None
        # mask dynamics, one entry per optimiser step (not saved in checkpoints)
        self.mask_history: list[Tensor] = []
        self.tau_history: list[float] = []
        self.importance_history: list[Tensor] = []

    # ---- state --------------------------------------------------------------------
    def temperature(self, step: int | None = None) -> float:
        """T(t): geometric anneal temp_start -> temp_end over anneal_steps after the warm-up."""
        step = int(self.atm_steps) if step is None else step
        frac = min(1.0, max(0.0, (step - self.warmup_steps) / self.anneal_steps))
        return self.temp_start * (self.temp_end / self.temp_start) ** frac

    def importance(self) -> Tensor:
        """Current importance I_i of every latent (from the EMAs)."""
        return importance_score(self.atm_mag, self.atm_freq, self.atm_contrib, self.weights)

    @torch.no_grad()
    def update_stats_(self, codes: Tensor, dec_norm: Tensor) -> None:
        """One EMA update of magnitude / frequency / contribution from a batch of (unmasked) codes."""
        codes = codes.detach().reshape(-1, codes.shape[-1])
        active = codes > 0
        n_act = active.sum(0)
        freq = n_act.float() / codes.shape[0]
        mag = codes.sum(0) / n_act.clamp_min(1)
        contrib = codes.abs().mean(0) * dec_norm.detach()
        if int(self.atm_steps) == 0:  # first batch: take the values as they are (no bias toward 0)
            self.atm_mag.copy_(mag)
            self.atm_freq.copy_(freq)
            self.atm_contrib.copy_(contrib)
        else:
            b = self.decay
            fired = n_act > 0  # magnitude-when-active only moves for latents that fired
            self.atm_mag.copy_(torch.where(fired, b * self.atm_mag + (1 - b) * mag, self.atm_mag))
            self.atm_freq.mul_(b).add_((1 - b) * freq)
            self.atm_contrib.mul_(b).add_((1 - b) * contrib)
        self.atm_steps += 1

    @torch.no_grad()
    def resample_mask_(self) -> None:
        """Draw the mask used by the next training forward (none during the warm-up)."""
        step = int(self.atm_steps)
        if step < self.warmup_steps:
            self.atm_mask.zero_()
            tau = math.nan
        else:
            imp = self.importance()
            probs, tau = mask_probabilities(imp, self.c, self.temperature(step), self.max_mask_frac, self.max_mask_prob)
            self.atm_mask.copy_(torch.rand(probs.shape, generator=self.gen) < probs.cpu())
        if self.record:
            self.mask_history.append(self.atm_mask.detach().cpu().clone())
            self.tau_history.append(tau)
            self.importance_history.append(self.importance().cpu() if step > 0 else torch.zeros(self.n_latents))

    # ---- sparsifier interface -------------------------------------------------------
    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:
        codes = torch.relu(pre)
        if not self.training:
            return codes
        self._pending = (codes.detach(), dec_norm.detach())
        if bool(self.atm_mask.any()):
            codes = codes * (~self.atm_mask).to(codes.dtype)
        return codes

    def after_step_(self) -> None:
        if self._pending is None:
            return
        codes, dec_norm = self._pending
        self._pending = None
        self.update_stats_(codes, dec_norm)
        self.resample_mask_()

    def data_parallel_problem(self) -> str | None:
        return ("atm updates its masking statistics from each step's codes, which a rank sees only for its own "
                "rows: the ranks' masks would drift apart; train it in one process")

    def masked_fraction(self) -> Tensor:
        """(steps,) fraction of latents masked at each recorded step."""
        if not self.mask_history:
            return torch.zeros(0)
        return torch.stack(self.mask_history).float().mean(1)

    def config(self) -> dict[str, Any]:
        return {"n_latents": self.n_latents, "decay": self.decay, "weights": list(self.weights), "c": self.c,
                "warmup_steps": self.warmup_steps, "anneal_steps": self.anneal_steps,
                "temp_start": self.temp_start, "temp_end": self.temp_end, "max_mask_frac": self.max_mask_frac,
                "max_mask_prob": self.max_mask_prob, "mask_seed": self.mask_seed, "record": self.record}
