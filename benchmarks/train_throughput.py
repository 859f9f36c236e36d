"""TopK SAE training throughput: dense autograd vs the sparse fast path, against this machine's matmul peak.

    python benchmarks/train_throughput.py [--d 576] [--latents 9216] [--k 32] [--batch 4096] [--steps 6]

Writes benchmarks/results/train_throughput.json and prints a table. FLOPs counted per step:
dense path 8 B d m (encoder and decoder forward + weight gradients; no input gradient);
sparse path 2 B d m (dense encoder forward) + 6 B k d (gathered decode, its gradient, sparse
encoder gradient). "Achieved" = counted FLOPs / wall time, reported against the fp32 GEMM peak
measured in the same run (a 4096^3 matmul).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from saelib.utils import gemm_gflops as gemm_peak
from saelib.sae import SAE


def step_rate(sae: SAE, x: torch.Tensor, sparse: bool, steps: int) -> float:
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4, fused=True)
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        out = sae.forward_train(x, sparse=sparse)
        loss = (out.x_hat - x).pow(2).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sae.project_decoder_grad_()
        opt.step()
        sae.normalize_decoder_()
        if i:  # first step warms caches and allocators
            times.append(time.perf_counter() - t)
    return len(x) / (sum(times) / len(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=576)
    ap.add_argument("--latents", type=int, default=9216)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=6)
    a = ap.parse_args()
    torch.manual_seed(0)
    x = torch.randn(a.batch, a.d)
    d, m, k, B = a.d, a.latents, a.k, a.batch
    rows = []
    for precision in ("highest", "medium"):
        torch.set_float32_matmul_precision(precision)
        peak = gemm_peak(precision, reps=4)
        for sparse in (False, True):
            tps = step_rate(SAE(d, m, "topk", k=k, seed=0), x, sparse, a.steps)
            flops = (2 * B * d * m + 6 * B * k * d) if sparse else 8 * B * d * m
            gflops = flops * tps / B / 1e9
            rows.append({"path": "sparse" if sparse else "dense", "matmul_precision": precision,
                         "tokens_per_s": round(tps), "achieved_gflops": round(gflops, 1),
                         "gemm_peak_gflops": round(peak, 1), "fraction_of_peak": round(gflops / peak, 3)})
    torch.set_float32_matmul_precision("highest")
    print(f"TopK SAE training step, d={d}, latents={m}, k={k}, batch={B}, threads={torch.get_num_threads()}")
    print(f"{'path':<8}{'precision':<11}{'tokens/s':>10}{'GFLOP/s':>10}{'peak':>8}{'of peak':>9}")
    for r in rows:
        print(f"{r['path']:<8}{r['matmul_precision']:<11}{r['tokens_per_s']:>10,}{r['achieved_gflops']:>10}"
              f"{r['gemm_peak_gflops']:>8}{r['fraction_of_peak']:>9.0%}")
    out = Path(__file__).parent / "results" / "train_throughput.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"shape": vars(a), "threads": torch.get_num_threads(), "torch": torch.__version__,
                               "machine": platform.processor() or platform.machine(), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
