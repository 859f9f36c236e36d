"""One rank of tests/test_distributed.py's 2-process run (launched by torchrun, never collected by pytest).

Trains every case of ``CASES`` data-parallel, tries every refusal of ``REFUSED``, checks BatchTopK's
gathered top-k on ties, and rank 0 saves what it saw to ``argv[1]`` for the test to compare with one
process on the whole batch.
"""
from __future__ import annotations

import sys

import torch

from saelib import SAE, TrainConfig, train_sae
from saelib.callbacks import KAnnealing
from saelib.losses import AuxZipfLoss
from saelib.sparsifiers.batchtopk import flat_topk_indices, gathered_topk_indices
from saelib.sparsifiers.feature_choice import column_top_mask, gathered_column_top_mask

D, M = 12, 48


def make_data(n: int = 1024, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, D, generator=g) @ torch.randn(D, D, generator=g) + 0.4


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{"lr": 3e-3, "batch_size": 64, "progress": False, "seed": 2, "log_every": 1, **kw})


# name: (sparsifier, sparsifier kwargs, TrainConfig kwargs); each trains in a fraction of a second
CASES = {
    "topk_sparse_auxk": ("topk", {"k": 2}, {"dead_window_tokens": 64}),
    "topk_dense_auxk_clip": ("topk", {"k": 2}, {"dead_window_tokens": 64, "sparse": "off", "grad_clip": 0.5}),
    "batchtopk_sparse": ("batchtopk", {"k": 3, "threshold_start": 2}, {"dead_window_tokens": 128}),
    "batchtopk_dense": ("batchtopk", {"k": 3, "threshold_start": 2}, {"sparse": "off"}),
    "mutual_choice": ("mutual_choice", {"k": 3, "threshold_start": 2}, {}),
    "feature_choice_uniform": ("feature_choice", {"k": 3, "threshold_start": 2}, {}),
    "feature_choice_zipf_dense": ("feature_choice", {"k": 3, "allocation": "zipf", "threshold_start": 2},
                                  {"sparse": "off"}),
    "feature_choice_zipf_global": ("feature_choice", {"k": 3, "allocation": "zipf",
                                                      "threshold_mode": "global", "threshold_start": 2}, {}),
    "relu_l1": ("relu", {}, {"sparsity_coeff": 0.05, "normalize_input": False}),
    "jumprelu": ("jumprelu", {}, {"sparsity_coeff": 0.01}),
}
CALLBACK_CASES = {"topk_kannealing": ("topk", {"k": 2}, {"epochs": 1.0})}  # callbacks are built fresh per run


def build(name: str) -> tuple[SAE, TrainConfig]:
    sp, skw, ckw = {**CASES, **CALLBACK_CASES}[name]
    extra = {"callbacks": [KAnnealing(8, 2, 0.5)]} if name in CALLBACK_CASES else {}
    return SAE(D, M, sp, seed=1, **skw), cfg(**ckw, **extra)


REFUSED = {
    "atm": lambda: (SAE(D, M, "atm", seed=1), cfg(sparsity_coeff=0.01)),
    "jumprelu_l0_target": lambda: (SAE(D, M, "jumprelu", l0_target=4.0, seed=1), cfg(sparsity_coeff=0.01)),
    "loss_terms": lambda: (SAE(D, M, "topk", k=2, seed=1), cfg(loss_terms={"zipf": AuxZipfLoss(M)})),
    "odd_batch": lambda: (SAE(D, M, "topk", k=2, seed=1), cfg(batch_size=63)),
}


def ties_check(dp) -> dict:
    """Gathered top-k on values with many ties: exactly n_total kept over the ranks, the right multiset."""
    g = torch.Generator().manual_seed(5)
    whole = torch.randint(0, 6, (2, 40), generator=g).float()  # rank r holds whole[r]
    n_total = 17
    mine = gathered_topk_indices(whole[dp.rank], n_total, dp)
    kept = whole[dp.rank][mine]
    every = dp.gather(torch.nn.functional.pad(kept, (0, 80 - len(kept)), value=-1.0))
    count = int(dp.sum(torch.tensor([len(mine)])))
    ref = whole.reshape(-1)[flat_topk_indices(whole.reshape(-1), n_total)].sort().values
    got = every.reshape(-1)[every.reshape(-1) >= 0].sort().values
    # each column's top m_i over both ranks' rows, on tied values: exactly min(m_i, positives) per column
    cols = torch.randint(0, 4, (2, 10, 6), generator=g).float() - 1.0  # rank r holds rows cols[r]
    m = torch.tensor([0, 1, 3, 5, 20, 2])
    mask = gathered_column_top_mask(cols[dp.rank], m, dp)
    per_col = dp.sum(mask.sum(0))
    whole_mask = column_top_mask(cols.reshape(20, 6), m)
    kept_vals = dp.gather(torch.where(mask, cols[dp.rank], torch.zeros(()))).reshape(20, 6).sort(0).values
    ref_vals = torch.where(whole_mask, cols.reshape(20, 6), torch.zeros(())).sort(0).values
    return {"count": count, "same_values": bool(torch.equal(ref, got)), "sorted": bool((mine[1:] > mine[:-1]).all()),
            "column_counts": bool(torch.equal(per_col, whole_mask.sum(0))),
            "column_values": bool(torch.equal(kept_vals, ref_vals))}


def main(out: str) -> None:
    from saelib import distributed

    dp = distributed.init("gloo", timeout_s=60)
    try:
        data = make_data()
        result: dict = {"world_size": dp.world_size, "trained": {}, "refused": {}}
        for name in [*CASES, *CALLBACK_CASES]:
            sae, c = build(name)
            res = train_sae(sae, data, c, data_parallel=dp)
            result["trained"][name] = {"state": res.sae.state_dict(), "history": res.history, "scale": res.input_scale}
        for name, make in REFUSED.items():
            sae, c = make()
            try:
                train_sae(sae, data, c, data_parallel=dp)
                result["refused"][name] = None
            except ValueError as err:
                result["refused"][name] = str(err)
        other = data.clone()
        if dp.rank == 1:
            other[0, 0] += 1.0
        try:
            train_sae(SAE(D, M, "topk", k=2, seed=1), other, cfg(), data_parallel=dp)
            result["refused"]["different_data"] = None
        except ValueError as err:
            result["refused"]["different_data"] = str(err)
        result["ties"] = ties_check(dp)
        if dp.is_main:
            torch.save(result, out)
    finally:
        distributed.close()


if __name__ == "__main__":
    main(sys.argv[1])
