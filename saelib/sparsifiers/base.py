"""Sparsifiers: the non-linearity that turns pre-activations into sparse codes.

Every sparsifier shares one small interface, so the SAE and the training loop never
branch on the architecture:

* ``forward(pre, dec_norm)`` -> dense codes (differentiable w.r.t. ``pre``);
* ``penalty(pre, codes, dec_norm)`` -> the sparsity term added to the loss (unscaled;
  the trainer multiplies by ``TrainConfig.sparsity_coeff`` and its warm-up);
* for the TopK family (``supports_sparse = True``) also ``select(pre, dec_norm)`` ->
  (rows, cols) of the active entries, rows sorted, used by the sparse fast path
  (TopK, BatchTopK and its alias Mutual Choice).

New sparsifiers register themselves with :func:`register` and are then saved/loaded by name;
``saelib/sparsifiers/__init__.py`` imports every family, so that import *is* the registry listing.

Two conventions for learned statistics coexist (both pinned by tests): BatchTopK and Feature
Choice update their EMAs inside ``forward``/``select`` in training mode; ATM stashes the codes in
``forward`` and updates in ``after_step_``; JumpReLU projects its threshold in both.

The sparse path's invariant: a kept value equals ``ReLU(pre[row, col])`` (``SAE.active_values``).
A sparsifier that keeps other values (``TopKAbs``: signed) must not set ``supports_sparse``.
"""
from __future__ import annotations

import inspect
import math
import warnings
from contextlib import contextmanager
from typing import Any, ClassVar, Iterator

import torch
from torch import Tensor, nn

SPARSIFIERS: dict[str, type["Sparsifier"]] = {}


def register(cls: type["Sparsifier"]) -> type["Sparsifier"]:
    """Class decorator: make a sparsifier constructible by name (``make_sparsifier``)."""
    SPARSIFIERS[cls.name] = cls
    return cls


def make_sparsifier(name: str, n_latents: int | None = None, **kwargs: Any) -> "Sparsifier":
    """Build a registered sparsifier by name, e.g. ``make_sparsifier("topk", k=32)``.

    Sparsifiers with per-latent state (e.g. JumpReLU thresholds) take ``n_latents``; the SAE
    passes its width, other sparsifiers ignore it.
    """
    if name not in SPARSIFIERS:
        raise ValueError(f"sparsifier must be one of {sorted(SPARSIFIERS)}, got {name!r}")
    cls = SPARSIFIERS[name]
    if n_latents is not None and "n_latents" in inspect.signature(cls.__init__).parameters:
        kwargs["n_latents"] = n_latents
    return cls(**kwargs)


class Sparsifier(nn.Module):
    """Base class. Subclasses set ``name`` and implement ``forward``."""

    name: ClassVar[str] = "base"
    supports_sparse: ClassVar[bool] = False

    def forward(self, pre: Tensor, dec_norm: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, pre: Tensor, dec_norm: Tensor) -> tuple[Tensor, Tensor]:
        """Active entries as (rows, cols), rows sorted ascending. TopK family only."""
        raise NotImplementedError(f"{self.name} has no sparse path")

    def penalty(self, pre: Tensor, codes: Tensor, dec_norm: Tensor) -> Tensor:
        """Sparsity penalty per token, averaged over the batch. Zero by default."""
        return pre.new_zeros(())

    def config(self) -> dict[str, Any]:
        """Constructor kwargs, stored in cfg.json so ``SAE.load`` can rebuild this object."""
        return {}

    def after_step_(self) -> None:
        """Called by the training loop after every optimiser step (e.g. to project parameters)."""

    def data_parallel_problem(self) -> str | None:
        """Why training cannot split this sparsifier's batch across processes (None: it can).

        Per-token rules give each rank's rows the codes they would get in the whole batch, and a
        penalty that is a mean over tokens averages correctly with the gradients; a rule that needs
        the whole batch must gather it (BatchTopK does) or say here why not."""
        return None


class BatchRule:
    """Mixin for batch-level rules (BatchTopK / Mutual Choice, Feature Choice).

    In training the rule needs the whole batch; at inference a threshold estimated during training
    (the ``threshold`` buffer; entries < 0 are not estimated yet) replaces it. ``batch_rule()``
    forces the batch rule in eval mode, without state updates, to compare the two.

    Data-parallel training sets ``_dp`` (a :class:`saelib.distributed.DataParallel`) while it runs; a rule
    refuses it (``data_parallel_problem``) unless it gathers what it needs from the other ranks.
    """

    name: ClassVar[str]
    threshold: Tensor
    threshold_start: int
    training: bool
    _force_batch_rule: bool = False
    _dp: Any = None  # the saelib.distributed.DataParallel of a data-parallel training run, else None

    def data_parallel_problem(self) -> str | None:
        return (f"{self.name} selects over the whole batch and does not gather it across processes: "
                f"train it in one process")

    @property
    def has_threshold(self) -> bool:
        return bool((self.threshold >= 0).any())

    @contextmanager
    def batch_rule(self) -> Iterator["BatchRule"]:
        """Use the training-time batch rule even in eval mode (the threshold is not updated)."""
        prev, self._force_batch_rule = self._force_batch_rule, True
        try:
            yield self
        finally:
            self._force_batch_rule = prev

    @torch.no_grad()
    def calibrate_threshold_(self, pre: Tensor) -> Tensor:
        """Set the inference threshold from calibration pre-activations ``pre`` (M, F) taken as *one* batch
        (our estimator, beside the training-time moving average of the smallest kept activation):
        theta = the largest pre-activation the batch rule leaves out (per latent for per-latent thresholds,
        clamped at 0), so that ``pre > theta`` keeps on ``pre`` what the batch rule keeps, up to ties (exactly
        only where the threshold has the rule's own granularity: not a global theta for per-column Feature Choice).
        A quantile estimate: no lag behind training and no lost entry at the strict ``>``. Returns theta."""
        if pre.dim() != 2:
            raise ValueError(f"pre must be (tokens, latents), got shape {tuple(pre.shape)}")
        was = self.training
        self.eval()
        try:
            with self.batch_rule():
                kept = self(pre, torch.ones(pre.shape[1], dtype=pre.dtype, device=pre.device)) > 0
        finally:
            self.train(was)
        left_out = pre.masked_fill(kept, -math.inf)
        per_latent = getattr(self, "threshold_mode", "global") == "per_latent"
        theta = (left_out.amax(0) if per_latent else left_out.amax()).clamp_min(0)
        self.threshold.copy_(theta.reshape(self.threshold.shape))
        return theta

    def _use_batch_rule(self) -> bool:
        if self.training or self._force_batch_rule:
            return True
        if not self.has_threshold:
            warnings.warn(f"{self.name}: no inference threshold estimated yet (train for more than "
                          f"threshold_start={self.threshold_start} batches); using the batch rule", stacklevel=3)
            return True
        return False
