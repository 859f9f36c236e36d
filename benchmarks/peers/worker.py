"""One library's TopK SAE training step, timed in its own process (started by ``benchmarks/peer_throughput.py``).

    python benchmarks/peers/worker.py --lib {saelib,sparsify,saelens} --data rows.npy --latents M --batch B

Imports torch, numpy and the one library named by ``--lib`` (nothing else of this repo), so it runs in
that library's own virtual environment. It builds the library's TopK SAE (d_in from the data, ``--latents``
latents, k), runs ``--warmup`` untimed and ``--steps`` timed steps of the library's own training step on
consecutive rows of the data, and prints one line: ``RESULT_TAG`` followed by a JSON object.

What one step is, per library (each as its own trainer does it; no dead-latent AuxK anywhere: no latent
is dead within a few steps, and sparsify's default ``auxk_alpha`` is 0):

* saelib: the real loop of the notebooks, ``saelib.train.train_sae`` (sparse TopK fast path, dataset
  normalisation, unit-norm decoder with gradient projection, fused Adam). A callback marks the start of
  every step; step i lasts from mark i to mark i+1, so one extra step runs at the end and is not timed.
* sparsify: the body of ``sparsify.Trainer``'s hook and step for ``loss_fn="fvu"``: unit-norm decoder,
  ``SparseCoder.forward`` (fused TopK encoder, embedding-bag decoder) with the batch's total variance,
  FVU backward, ``remove_gradient_parallel_to_decoder_directions``, ``torch.optim.Adam`` (its trainer's
  choice without bitsandbytes), dead-latent counters. Its linear LR schedule is left out (constant lr).
* saelens: ``SAETrainer.step`` itself on a ``TopKTrainingSAE`` (sparse COO activations, no decoder-norm
  rescale): training forward pass, MSE, backward, grad-norm clip at 1, Adam, its firing statistics.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from importlib import metadata
from typing import Callable

import numpy as np
import torch
from torch import Tensor

RESULT_TAG = "PEER_RESULT "
DISTRIBUTIONS = {"saelib": "saelib", "sparsify": "eai-sparsify", "saelens": "sae-lens"}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def time_steps(step: Callable[[Tensor], float], x: Tensor, batch: int, n: int) -> tuple[list[float], list[float]]:
    """Run ``step`` on n consecutive batches of ``x``; its wall times (s) and the losses it returned."""
    times, losses = [], []
    for i in range(n):
        t = time.perf_counter()
        losses.append(step(x[i * batch: (i + 1) * batch]))
        times.append(time.perf_counter() - t)
    return times, losses


def run_saelib(x: Tensor, a: argparse.Namespace) -> dict:
    from saelib.sae import SAE
    from saelib.train import TrainConfig, train_sae

    marks: list[float] = []
    sae = SAE(x.shape[1], a.latents, "topk", k=a.k, seed=0)
    cfg = TrainConfig(epochs=1.0, batch_size=a.batch, lr=a.lr, progress=False, auxk_coeff=0.0, warmup_frac=0.0,
                      decay_frac=0.0, log_every=10 ** 9, matmul_precision=a.matmul_precision,
                      callbacks=[lambda state: marks.append(time.perf_counter())])
    res = train_sae(sae, x[: (a.warmup + a.steps + 1) * a.batch], cfg)
    steps = np.diff(marks).tolist()
    assert len(steps) == a.warmup + a.steps, (len(marks), a.warmup, a.steps)
    hist = res.history  # logged at step 0 and at the last (untimed) step only
    return {"step_s": steps[a.warmup:], "n_params": n_params(res.sae), "loss_kind": "sum-of-squares per token",
            "loss_first": float(hist["loss"].iloc[0]), "loss_last": float(hist["loss"].iloc[-1]),
            "losses": hist["loss"].tolist(), "notes": "train_sae: sparse TopK path, unit-norm decoder, fused Adam"}


def run_sparsify(x: Tensor, a: argparse.Namespace) -> dict:
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(0)
    sae = SparseCoder(x.shape[1], SparseCoderConfig(num_latents=a.latents, k=a.k), "cpu", dtype=torch.float32)
    opt = torch.optim.Adam(sae.parameters(), lr=a.lr)
    since_fired = torch.zeros(a.latents, dtype=torch.long)
    did_fire = torch.zeros(a.latents, dtype=torch.bool)
    sae.b_dec.data = x[: a.batch].mean(0)  # the trainer's step-0 initialisation

    def step(xb: Tensor) -> float:
        sae.set_decoder_norm_to_unit_norm()
        total_variance = (xb - xb.mean(0)).pow(2).sum()
        out = sae(x=xb, y=xb, dead_mask=None, total_variance=total_variance)
        did_fire[out.latent_indices.flatten()] = True
        fvu = float(out.fvu.detach())
        (out.fvu + out.multi_topk_fvu / 8).backward()  # auxk_alpha = 0; multi_topk_fvu is a zero tensor
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        with torch.no_grad():
            since_fired.add_(len(xb))
            since_fired[did_fire] = 0
            did_fire.zero_()
        return fvu

    time_steps(step, x, a.batch, a.warmup)
    times, losses = time_steps(step, x[a.warmup * a.batch:], a.batch, a.steps)
    return {"step_s": times, "n_params": n_params(sae), "loss_kind": "FVU", "loss_first": losses[0],
            "loss_last": losses[-1], "losses": losses,
            "notes": "Trainer hook+step, loss_fn=fvu, torch.optim.Adam, eager embedding-bag decoder, no LR schedule"}


def run_saelens(x: Tensor, a: argparse.Namespace) -> dict:
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.training.sae_trainer import SAETrainer

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=x.shape[1], d_sae=a.latents, k=a.k, use_sparse_activations=True,
                                                rescale_acts_by_decoder_norm=False, dtype="float32", device="cpu"))
    n_steps = a.warmup + a.steps
    cfg = SAETrainerConfig(total_training_samples=n_steps * a.batch, train_batch_size_samples=a.batch, lr=a.lr,
                           lr_end=a.lr, device="cpu", autocast=False)
    trainer = SAETrainer(cfg=cfg, sae=sae, data_provider=iter(()))

    def step(xb: Tensor) -> float:
        out = trainer.step(xb)
        trainer.n_training_steps += 1  # as SAETrainer.fit does after each step
        return out.loss.item()

    time_steps(step, x, a.batch, a.warmup)
    times, losses = time_steps(step, x[a.warmup * a.batch:], a.batch, a.steps)
    return {"step_s": times, "n_params": n_params(sae), "loss_kind": "sum-of-squares per token",
            "loss_first": losses[0], "loss_last": losses[-1], "losses": losses,
            "notes": "SAETrainer.step, TopKTrainingSAE use_sparse_activations=True, rescale_acts_by_decoder_norm=False"}


RUNNERS = {"saelib": run_saelib, "sparsify": run_sparsify, "saelens": run_saelens}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", choices=sorted(RUNNERS), required=True)
    ap.add_argument("--data", required=True, help=".npy of float32 rows (N, d_in)")
    ap.add_argument("--latents", type=int, required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--matmul-precision", choices=["highest", "high", "medium"], default="highest")
    a = ap.parse_args()
    if a.warmup < 1 or a.steps < 1:
        ap.error("--warmup and --steps must be >= 1")
    torch.set_num_threads(a.threads)
    torch.set_float32_matmul_precision(a.matmul_precision)  # saelib's train_sae sets the same from its config
    rows = (a.warmup + a.steps + 1) * a.batch
    data = np.load(a.data, mmap_mode="r")
    if data.shape[0] < rows:
        raise SystemExit(f"{a.data} has {data.shape[0]} rows, need {rows}")
    x = torch.from_numpy(np.array(data[:rows], dtype=np.float32))
    t0 = time.perf_counter()
    out = RUNNERS[a.lib](x, a)
    wall = time.perf_counter() - t0
    step_s = out["step_s"]
    finite = all(math.isfinite(v) for v in out["losses"])
    print(RESULT_TAG + json.dumps({
        "lib": a.lib, "version": metadata.version(DISTRIBUTIONS[a.lib]), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "matmul_precision": torch.get_float32_matmul_precision(),
        "d_in": x.shape[1], "latents": a.latents, "k": a.k, "batch": a.batch, "lr": a.lr,
        "warmup": a.warmup, "steps": a.steps, "train_wall_s": wall, "losses_finite": finite,
        "tokens_per_s": [a.batch / t for t in step_s], **out}), flush=True)


if __name__ == "__main__":
    main()
