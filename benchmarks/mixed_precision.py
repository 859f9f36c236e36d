"""Opt-in mixed precision (``TrainConfig(matmul_precision="medium")``: bf16 inside fp32 GEMMs):
its speed-up and its effect on FVU, on the shared real activations.

    python benchmarks/mixed_precision.py [--epochs 3] [--expansion 8]

Trains the same TopK SAE (same seed, same data order) at "highest" and "medium" precision and
evaluates both in full fp32 on the held-out activations. Writes benchmarks/results/mixed_precision.json.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from saelib import SAE, TrainConfig, train_sae
from saelib.companion import shared_activations
from saelib.companion.presets import resolve
from saelib.metrics.reconstruction import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--expansion", type=int, default=8)
    ap.add_argument("--k", type=int, default=32)
    a = ap.parse_args()
    train, held_out = shared_activations(resolve("00_quickstart", "quick"), progress=False)
    d = train.d_model
    rows = []
    for precision in ("highest", "medium"):
        t = time.perf_counter()
        res = train_sae(SAE(d, a.expansion * d, "topk", k=a.k, seed=0), train.acts,
                        TrainConfig(epochs=a.epochs, lr=1e-3, batch_size=4096, matmul_precision=precision,
                                    progress=False))
        dt = time.perf_counter() - t
        ev = evaluate(res.sae, held_out.acts)
        rows.append({"matmul_precision": precision, "train_seconds": round(dt, 1),
                     "tokens_per_s": round(a.epochs * len(train) / dt), "heldout_fvu": round(ev["fvu"], 4)})
    print(f"TopK d={d} latents={a.expansion * d} k={a.k}, {a.epochs} epochs of {len(train):,} tokens")
    for r in rows:
        print(r)
    out = Path(__file__).parent / "results" / "mixed_precision.json"
    out.parent.mkdir(exist_ok=True)
    # tokens/s is only comparable across runs on an idle machine; the load average says how idle it was
    out.write_text(json.dumps({"args": vars(a), "load_average_1min_at_end": os.getloadavg()[0],
                               "results": rows}, indent=2))


if __name__ == "__main__":
    main()
