"""Ready-made ``TrainConfig.callbacks``: each is called with the :class:`~saelib.train.TrainState`
before every step's forward pass.

* :class:`KAnnealing`: k falls linearly over the first steps (Llama Scope, He et al. 2024, Sec. 3.2).
* :class:`Snapshots`: a copy of ``fn(sae)`` every ``every`` steps (e.g. JumpReLU thresholds, or the
  dictionaries that :mod:`saelib.multiseed` compares across seeds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from .sae import SAE
from .train import TrainState
from .utils import check_range


@dataclass
class KAnnealing:
    """Training callback: k falls linearly from ``k_start`` to ``k_end`` over the first ``frac``
    of the steps, then stays at ``k_end`` (Llama Scope: k_start = d_model / 2, frac = 0.1)."""

    k_start: int
    k_end: int
    frac: float = 0.1

    def __post_init__(self) -> None:
        check_range("k_end", self.k_end, 1)
        check_range("k_start", self.k_start, self.k_end)
        check_range("frac", self.frac, 0, 1, lo_open=True)

    def k_at(self, progress: float) -> int:
        """k after a fraction ``progress`` of training."""
        t = min(1.0, max(0.0, progress) / self.frac)
        return int(round(self.k_start + t * (self.k_end - self.k_start)))

    def __call__(self, state: TrainState) -> None:
        state.sae.sparsifier.k = self.k_at(state.frac)


class Snapshots:
    """Training callback: every ``every`` steps, store ``fn(sae)`` (detached, on CPU) with the step.

    The state is the one before that step's update, so step s holds the weights after s updates.
    ``first``: include step 0 (the initialisation); ``last``: include the final step too.
    e.g. ``Snapshots(lambda sae: sae.sparsifier.threshold)`` records JumpReLU thresholds.
    """

    def __init__(self, fn: Callable[[SAE], Tensor], every: int = 50, first: bool = True, last: bool = True) -> None:
        check_range("every", every, 1)
        self.fn, self.every, self.first, self.last = fn, every, first, last
        self.steps: list[int] = []
        self.values: list[Tensor] = []

    def __call__(self, state: TrainState) -> None:
        if ((state.step % self.every == 0 and (state.step > 0 or self.first))
                or (self.last and state.step == state.n_steps - 1)):
            self.steps.append(state.step)
            self.values.append(self.fn(state.sae).detach().cpu().clone())
