"""Train an SAE on a saved activation file, in one process or data-parallel under ``torchrun``.

    torchrun --nproc_per_node 4 -m saelib.train_ddp acts.safetensors --out runs/topk --expansion 16 --k 32

Under torchrun every rank loads the file, joins the process group (``gloo`` on CPU, ``nccl`` with one
GPU per rank: :mod:`saelib.distributed`) and runs :func:`saelib.train.train_sae` on its slice of each
global batch (``--batch-size`` is the global batch); rank 0 writes ``<out>/sae`` (the SAELens-layout
checkpoint), ``<out>/history.csv`` and, with ``--checkpoint-every``, ``<out>/checkpoints/step_*``.
Run with plain ``python -m saelib.train_ddp`` it trains in one process, exactly as ``train_sae`` does.

The activation file is safetensors: a saelib harvest from the cache (``resid`` and ``keep``: its kept
rows ``resid[keep]``), or any file holding a 2-D float tensor (``--key`` names it when there are several).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import get_args

import torch
from safetensors import safe_open
from torch import Tensor

from . import distributed
from .data import cache
from .sae import SAE
from .sparsifiers import SPARSIFIERS
from .train import MatmulPrecision, SparsePath, TrainConfig, train_sae


def load_activations(path: str | Path, key: str | None = None) -> Tensor:
    """(N, d) training rows from a safetensors file (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"activation file {path} does not exist")
    with safe_open(str(path), framework="pt") as f:
        meta, keys = f.metadata() or {}, list(f.keys())
    if key is None and meta.get("format") == cache.FORMAT and {"resid", "keep"} <= set(keys):
        tensors, _ = cache.read(path)  # hash-verified
        return tensors["resid"][tensors["keep"].bool()].float()
    with safe_open(str(path), framework="pt") as f:
        if key is None:
            matrices = [k for k in keys if len(f.get_slice(k).get_shape()) == 2]
            if len(matrices) != 1:
                raise ValueError(f"{path} holds {len(matrices)} 2-D tensors ({matrices}): pass --key to name one")
            key = matrices[0]
        if key not in keys:
            raise ValueError(f"--key must be one of {keys} (the tensors in {path}), got {key!r}")
        x = f.get_tensor(key)
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"{path}:{key} must be a 2-D float tensor (N, d), got {x.dtype} {tuple(x.shape)}")
    return x.float()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m saelib.train_ddp", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("acts", help="safetensors activation file")
    p.add_argument("--out", required=True, help="output folder (rank 0 writes sae/, history.csv, checkpoints/)")
    p.add_argument("--key", default=None, help="tensor to read from the file (default: a harvest's kept rows, or its only 2-D tensor)")
    width = p.add_mutually_exclusive_group(required=True)
    width.add_argument("--d-sae", type=int, help="number of latents")
    width.add_argument("--expansion", type=int, help="number of latents as a multiple of d")
    p.add_argument("--sparsifier", default="topk", choices=sorted(SPARSIFIERS))
    p.add_argument("--k", type=int, default=None, help="active latents per token (TopK family)")
    p.add_argument("--sparsifier-kwargs", default="{}", help="more sparsifier arguments, as JSON")
    p.add_argument("--init-seed", type=int, default=0, help="the SAE's initialisation seed")
    p.add_argument("--seed", type=int, default=0, help="data order seed (TrainConfig.seed)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=4096, help="global batch (split over the ranks)")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--sparsity-coeff", type=float, default=0.0)
    p.add_argument("--auxk-coeff", type=float, default=1 / 32)
    p.add_argument("--dead-window-tokens", type=int, default=100_000)
    p.add_argument("--no-normalize", action="store_true", help="skip the dataset-wise normalisation")
    p.add_argument("--sparse", default="auto", choices=get_args(SparsePath))
    p.add_argument("--matmul-precision", default="highest", choices=get_args(MatmulPrecision))
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--backend", default="auto", choices=distributed.BACKENDS, help="auto: nccl with GPUs, else gloo")
    p.add_argument("--device", default="auto", help="auto: this rank's GPU under nccl, else cpu")
    p.add_argument("--timeout-s", type=float, default=300.0, help="how long a collective waits for a missing rank")
    p.add_argument("--no-progress", action="store_true")
    return p


def build_sae(args: argparse.Namespace, d_in: int) -> SAE:
    """The SAE the arguments describe (the same on every rank)."""
    kwargs = json.loads(args.sparsifier_kwargs)
    if not isinstance(kwargs, dict):
        raise ValueError(f"--sparsifier-kwargs must be a JSON object, got {args.sparsifier_kwargs!r}")
    if args.k is not None:
        kwargs["k"] = args.k
    d_sae = args.d_sae if args.d_sae is not None else args.expansion * d_in
    return SAE(d_in, d_sae, args.sparsifier, seed=args.init_seed, **kwargs)


def build_config(args: argparse.Namespace, main: bool = True) -> TrainConfig:
    """The TrainConfig the arguments describe."""
    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                       sparsity_coeff=args.sparsity_coeff, auxk_coeff=args.auxk_coeff,
                       dead_window_tokens=args.dead_window_tokens, normalize_input=not args.no_normalize,
                       sparse=args.sparse, matmul_precision=args.matmul_precision, log_every=args.log_every,
                       progress=main and not args.no_progress,
                       checkpoint_dir=str(Path(args.out) / "checkpoints") if args.checkpoint_every else None,
                       checkpoint_every=args.checkpoint_every)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    data = load_activations(args.acts, args.key)
    dp = distributed.init(args.backend, args.timeout_s) if "WORLD_SIZE" in os.environ else None
    try:
        is_main = dp is None or dp.is_main
        device = torch.device(args.device) if args.device != "auto" else (dp.device if dp is not None else torch.device("cpu"))
        sae = build_sae(args, data.shape[1]).to(device)
        cfg = build_config(args, is_main)
        t0 = time.perf_counter()
        res = train_sae(sae, data, cfg, data_parallel=dp)
        seconds = time.perf_counter() - t0
        if is_main:
            out = Path(args.out)
            res.sae.save(out / "sae")
            res.history.to_csv(out / "history.csv", index=False)
            last = res.history.iloc[-1]
            ranks = dp.world_size if dp is not None else 1
            print(f"saved {out / 'sae'}: {len(data):,} rows x {args.epochs:g} epochs on {ranks} process(es) in "
                  f"{seconds:.1f} s ({int(last['tokens']) / seconds:,.0f} tokens/s); last step fvu {last['fvu']:.4f}, "
                  f"l0 {last['l0']:.1f}, dead {last['dead_frac']:.2%}", flush=True)
    finally:
        if dp is not None:
            distributed.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
