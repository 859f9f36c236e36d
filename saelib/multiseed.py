"""Train the same SAE several times, changing only the initialisation seed.

Paulo & Belrose (2025, arXiv 2501.16615) and Song et al. (2025, arXiv 2505.20254) compare SAEs
"identical but for the random seed": same data, same data order, same hyper-parameters. Here
the data order comes from ``TrainConfig.seed`` (kept fixed, the *data seed*) and the weights
from ``SAE(..., seed=init_seed)``, one run per init seed.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import pandas as pd
from torch import Tensor

from .callbacks import Snapshots
from .metrics.matching import gt_mcc, match_dictionaries, match_saes, pw_mcc
from .metrics.reconstruction import evaluate
from .sae import SAE
from .train import TrainConfig, train_sae
from .utils import check_choice

Directions = Literal["decoder", "encoder"]


class Snapshot(NamedTuple):
    """Unit-free copies of one SAE's directions during training (decoder rows, encoder columns)."""

    step: int
    tokens: int
    W_dec: Tensor  # (d_sae, d_in)
    W_enc_T: Tensor  # (d_sae, d_in)


class MultiSeedResult(NamedTuple):
    saes: list[SAE]
    metrics: pd.DataFrame          # one row per init seed: seed, l0, fvu, dead_frac, ...
    densities: list[Tensor]        # per-latent firing density on the evaluation data, per seed
    histories: list[pd.DataFrame]
    snapshots: list[list[Snapshot]]  # per seed, every ``snapshot_every`` steps (empty if None)

    def alive(self) -> list[Tensor]:
        """Per seed: latents that fired at least once on the evaluation data."""
        return [d > 0 for d in self.densities]


def train_seeds(data: Tensor, d_sae: int, sparsifier: str, seeds: list[int] | tuple[int, ...],
                cfg: TrainConfig, eval_data: Tensor | None = None, snapshot_every: int | None = None,
                **sparsifier_kwargs: Any) -> MultiSeedResult:
    """One SAE per init seed in ``seeds``, all trained on ``data`` in the same order (``cfg.seed``).

    ``snapshot_every`` (steps) records the directions during training, plus the final ones.
    Metrics (L0, FVU, dead fraction, densities) are measured on ``eval_data`` (default ``data``).
    """
    if len(seeds) < 1 or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct ints, got {seeds!r}")
    if snapshot_every is not None and (not isinstance(snapshot_every, int) or snapshot_every < 1):
        raise ValueError(f"snapshot_every must be a positive int or None, got {snapshot_every!r}")
    eval_data = data if eval_data is None else eval_data
    saes, rows, dens, hists, snaps = [], [], [], [], []
    bs = min(cfg.batch_size, data.shape[0])
    for seed in seeds:
        dec = Snapshots(lambda sae: sae.W_dec, snapshot_every, first=False, last=False) if snapshot_every else None
        enc = Snapshots(lambda sae: sae.W_enc.T, snapshot_every, first=False, last=False) if snapshot_every else None
        callbacks = list(cfg.callbacks) + ([dec, enc] if snapshot_every else [])
        run_cfg = dataclasses.replace(cfg, callbacks=callbacks)
        sae = SAE(data.shape[1], d_sae, sparsifier, seed=seed, **sparsifier_kwargs)
        res = train_sae(sae, data, run_cfg)
        store: list[Snapshot] = []
        if snapshot_every:
            store = [Snapshot(s, s * bs, d, e) for s, d, e in zip(dec.steps, dec.values, enc.values)]
            n_steps = int(res.history["step"].iloc[-1]) + 1
            store.append(Snapshot(n_steps, n_steps * bs, res.sae.W_dec.detach().cpu().clone(),
                                  res.sae.W_enc.detach().T.cpu().clone()))
        ev = evaluate(res.sae, eval_data)
        dens.append(ev.densities)
        rows.append({"seed": seed, "d_sae": d_sae, "sparsifier": sparsifier, **sparsifier_kwargs, "l0": ev.l0,
                     "fvu": ev.fvu, "explained_variance": ev.explained_variance, "dead_frac": ev.dead_frac,
                     "window_tokens": ev.window_tokens, "norm_ratio": ev.norm_ratio, "gamma": ev.gamma,
                     "cosine": ev.cosine})
        saes.append(res.sae)
        hists.append(res.history)
        snaps.append(store)
    return MultiSeedResult(saes, pd.DataFrame(rows), dens, hists, snaps)


def dictionaries(result: MultiSeedResult, which: Directions = "decoder") -> list[Tensor]:
    """Per seed, the (d_sae, d_in) direction matrix: ``"decoder"`` (W_dec) or ``"encoder"`` (W_enc^T)."""
    check_choice("which", which, get_args(Directions))
    return [s.W_dec.detach() if which == "decoder" else s.W_enc.detach().T for s in result.saes]


# ---- analyses over seeds ----------------------------------------------------------------------

def pairwise_summary(result: MultiSeedResult, threshold: float = 0.7) -> pd.DataFrame:
    """Every pair of seeds (i < j): shared (dec AND enc > t), strict, Equal and mean matched cosines
    (Paulo & Belrose 2025), dead latents masked out."""
    alive = result.alive()
    rows = []
    for i, j in itertools.combinations(range(len(result.saes)), 2):
        m = match_saes(result.saes[i], result.saes[j], alive[i], alive[j])
        rows.append({"seed_a": result.metrics["seed"].iloc[i], "seed_b": result.metrics["seed"].iloc[j],
                     **m.summary(threshold)})
    return pd.DataFrame(rows)


def snapshot_scores(result: MultiSeedResult, truth: Tensor | None = None, threshold: float = 0.7) -> pd.DataFrame:
    """Per snapshot: PW-MCC of the decoders (Song et al.), shared fraction of seeds 0 vs 1
    (Paulo & Belrose) and, with a ground truth, the mean GT-MCC over seeds."""
    if not result.snapshots or not result.snapshots[0]:
        raise ValueError("result has no snapshots: train with snapshot_every=...")
    rows = []
    for t in range(len(result.snapshots[0])):
        snaps = [s[t] for s in result.snapshots]
        m = match_dictionaries(snaps[0].W_dec, snaps[1].W_dec, snaps[0].W_enc_T, snaps[1].W_enc_T)
        row = {"step": snaps[0].step, "tokens": snaps[0].tokens, "pw_mcc": pw_mcc([s.W_dec for s in snaps]),
               "shared": float(m.shared(threshold).mean())}
        if truth is not None:
            row["gt_mcc"] = float(np.mean([gt_mcc(truth, s.W_dec) for s in snaps]))
        rows.append(row)
    return pd.DataFrame(rows)
