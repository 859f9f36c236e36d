"""Harvest and splice throughput on the shared quick-preset activations, and the bf16 tail's effect on CE.

    python benchmarks/splice_throughput.py [--seqs 32] [--harvest-seqs 32] [--reps 2] [--threads 2]

* Harvest: tokens/s of the harvest (``residual_at``, and the whole ``_harvest`` minus the cache write:
  tokenising the split, the forward, the keep mask) against a bare forward of embeddings and blocks
  0 .. layer on the same tokens, and whether the harvested residual equals the bare one bit for bit;
  the fixed cost (tokenising the split) projected onto the quick preset's train and eval harvests.
* Splice: tokens/s (sequences x ctx_len through the tail per second) of one spliced evaluation of a
  stored SAE: the code before this benchmark ("legacy": the head on every position, the log-softmax over
  a transposed view), fp32 now and ``tail_dtype="bfloat16"``; and, on the first ``--seqs`` held-out
  sequences, the clean, zero-ablated and spliced CE and Delta LM of each precision for three SAEs of
  notebook 00's quick recipe (loaded from the store, trained into it if missing).

Times are the best of ``--reps`` interleaved repetitions. Writes benchmarks/results/splice_throughput.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from saelib.companion.presets import resolve
from saelib.data.harvest import _harvest, harvest
from saelib.data.lm import LMTail, decoder_layers, load_lm, residual_at
from saelib.data.text import chunk_split, load_corpus
from saelib.metrics.splice import Splice
from saelib.store import sae_key, stored_keys, tensor_digest, train_cached
from saelib.train import TrainConfig


@torch.no_grad()
def bare_forward(lm, tokens: torch.Tensor, layer: int) -> torch.Tensor:
    """Embeddings and blocks 0 .. layer, nothing else: the floor for a harvest."""
    inner = lm.model
    h = inner.embed_tokens(tokens)
    pos = torch.arange(tokens.shape[1]).unsqueeze(0)
    rope = inner.rotary_emb(h, pos)
    for block in decoder_layers(lm)[: layer + 1]:
        out = block(h, attention_mask=None, position_ids=pos, position_embeddings=rope, use_cache=False)
        h = out[0] if isinstance(out, tuple) else out
    return h


@torch.no_grad()
def legacy_ce(splice: Splice, tail: LMTail, replace, fp64: bool = False) -> float:
    """Mean CE as ``Splice.sequence_ce`` computed it before (head on all positions, transposed log-softmax);
    ``fp64``: the same logits' CE with the log-softmax in float64 (the reference for both CE kernels)."""
    total = 0.0
    for i in range(0, len(splice.tokens), splice.batch_size):
        r = splice.resid[i: i + splice.batch_size].clone()
        k = splice.keep[i: i + splice.batch_size]
        r[k] = replace(r[k])
        logits = tail(r)[:, 1:-1]
        tgt = splice.tokens[i: i + splice.batch_size, 2:]
        if fp64:
            logits = logits.double()
        total += float(F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none").double().sum())
    return total / splice.n_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, default=32, help="held-out sequences in the splice")
    ap.add_argument("--harvest-seqs", type=int, default=32, help="sequences harvested for the harvest timing")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the quick notebooks run on 2 cores)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    load_start = os.getloadavg()[0]
    s = resolve("00_quickstart", "quick")
    common = dict(model=s.model, layer=s.layer, corpus=s.corpus, ctx_len=s.ctx_len, order=s.data_order,
                  progress=False)
    train = harvest(split="train", n_tokens=s.n_train_tokens, **common)
    held_out = harvest(split="eval", n_tokens=s.n_eval_tokens, **common)
    lm, tok = load_lm(s.model)
    T = s.ctx_len

    # ---- harvest vs a bare forward to the hook layer (same tokens, same batches)
    tokens = held_out.tokens[: a.harvest_seqs]
    bs = 16  # harvest()'s default batch

    def batched(f: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], torch.Tensor]:
        return lambda: torch.cat([f(tokens[i: i + bs]) for i in range(0, len(tokens), bs)])
    bare = batched(lambda t: bare_forward(lm, t, s.layer))
    hook = batched(lambda t: residual_at(lm, t, s.layer))
    whole = lambda: _harvest(s.model, s.layer, s.corpus, "eval", a.harvest_seqs * T, T, 10.0, bs, "cpu",  # noqa: E731
                             False, s.data_order)[0]["resid"]
    bare()  # warm-up
    t_bare, t_hook, t_whole = [], [], []
    for _ in range(a.reps):
        for f, ts in ((bare, t_bare), (hook, t_hook), (whole, t_whole)):
            t = time.perf_counter()
            out = f()
            ts.append(time.perf_counter() - t)
            if f is bare:
                ref = out
            elif not torch.equal(out, ref):
                raise AssertionError("the harvest differs from the bare forward")
    n_tok = tokens.numel()
    bare_tps, hook_tps = n_tok / min(t_bare), n_tok / min(t_hook)
    # the harvest's cost besides the forward is fixed per call (tokenising the whole split): project it
    # onto the quick preset's harvests (train: n_train_tokens; eval: the whole held-out split)
    projected = {}
    for split, n in (("train", len(train.tokens) * T), ("eval", len(held_out.tokens) * T)):
        t = time.perf_counter()
        chunk_split(load_corpus(s.corpus)[split], tok, T, max_tokens=n, order=s.data_order)
        fixed = time.perf_counter() - t
        projected[split] = {"tokens": n, "tokenize_s": round(fixed, 2),
                            "slowdown_vs_bare": round((n / hook_tps + fixed) / (n / bare_tps) - 1, 3)}
    harv = {"sequences": a.harvest_seqs, "tokens": n_tok, "batch": bs, "layer": s.layer,
            "bare_forward_tokens_per_s": round(bare_tps), "residual_at_tokens_per_s": round(hook_tps),
            "residual_at_slowdown_vs_bare": round(min(t_hook) / min(t_bare) - 1, 3),
            "whole_harvest_tokens_per_s": round(n_tok / min(t_whole)),
            "whole_harvest_fixed_s": round(min(t_whole) - min(t_hook), 2),
            "projected_quick_harvests": projected, "bit_identical_to_bare": True,
            "held_out_harvest_equals_bare": bool(torch.equal(held_out.resid[:a.harvest_seqs], ref))}

    # ---- the SAEs: notebook 00's quick recipe, from the store
    data_key = tensor_digest(train.acts)
    cfg = TrainConfig(epochs=s.epochs, lr=s.lr, batch_size=s.batch_size, progress=False)
    m = s.expansion * train.d_model
    l1 = s.l1_coeffs[0]
    recipes = {f"topk k={s.k} seed 0": ("topk", 0, dict(k=s.k), {}),
               f"topk k={s.k} seed 1": ("topk", 1, dict(k=s.k), {}),
               f"relu l1={l1:g} seed 0": ("relu", 0, {}, dict(sparsity_coeff=l1, auxk_coeff=0.0))}
    saes, from_store = {}, {}
    for name, (arch, seed, kw, over) in recipes.items():
        c = replace(cfg, seed=seed, **over)
        from_store[name] = sae_key(train.d_model, m, arch, kw, True, seed, c, data_key) in stored_keys()
        saes[name] = train_cached(train.acts, m, arch, c, seed=seed, data_key=data_key, **kw)[0].sae

    # ---- splice: construction (clean + zero) and CE per precision
    t = time.perf_counter()
    s32 = Splice(held_out, max_seqs=a.seqs)
    build32 = time.perf_counter() - t
    t = time.perf_counter()
    s16 = Splice(held_out, max_seqs=a.seqs, tail_dtype="bfloat16")
    build16 = time.perf_counter() - t
    ev32 = {n: s32.evaluate(sae) for n, sae in saes.items()}
    ev16 = {n: s16.evaluate(sae) for n, sae in saes.items()}
    legacy_tail = LMTail(lm, s.layer)
    leg = {"clean": legacy_ce(s32, legacy_tail, lambda r: r), "zero": legacy_ce(s32, legacy_tail, torch.zeros_like),
           **{n: legacy_ce(s32, legacy_tail, sae) for n, sae in saes.items()}}
    clean64 = legacy_ce(s32, legacy_tail, lambda r: r, fp64=True)

    first = next(iter(saes.values()))
    timed = {"legacy": lambda: legacy_ce(s32, legacy_tail, first), "float32": lambda: s32.evaluate(first),
             "bfloat16": lambda: s16.evaluate(first)}
    times: dict[str, list[float]] = {k: [] for k in timed}
    for _ in range(a.reps):  # interleaved, so a change in the machine's load hits all three alike
        for k, f in timed.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    n_tok = s32.tokens.numel()
    tps = {k: round(n_tok / min(v)) for k, v in times.items()}

    def diff(x: float, y: float) -> float:
        return float(f"{x - y:.3g}")
    ce = {"clean": {"legacy": leg["clean"], "float32": s32.ce_clean, "bfloat16": s16.ce_clean,
                    "float32_fp64_log_softmax": clean64},
          "zero": {"legacy": leg["zero"], "float32": s32.ce_zero, "bfloat16": s16.ce_zero}}
    for n in saes:
        ce[n] = {"legacy": leg[n], "float32": ev32[n]["ce_spliced"], "bfloat16": ev16[n]["ce_spliced"],
                 "delta_lm_legacy": leg[n] - leg["clean"], "delta_lm_float32": ev32[n]["delta_lm_loss"],
                 "delta_lm_bfloat16": ev16[n]["delta_lm_loss"], "ce_recovered_float32": ev32[n]["ce_recovered"],
                 "ce_recovered_bfloat16": ev16[n]["ce_recovered"]}
    for n, row in ce.items():
        row["bf16_minus_fp32"] = diff(row["bfloat16"], row["float32"])
        row["fp32_minus_legacy"] = diff(row["float32"], row["legacy"])
        if n in saes:
            row["delta_lm_bf16_minus_fp32"] = diff(row["delta_lm_bfloat16"], row["delta_lm_float32"])
            row["delta_lm_fp32_minus_legacy"] = diff(row["delta_lm_float32"], row["delta_lm_legacy"])
            row["ce_recovered_bf16_minus_fp32"] = diff(row["ce_recovered_bfloat16"], row["ce_recovered_float32"])
    splice = {"sequences": len(s32.tokens), "ctx_len": T, "predictions": s32.n_tokens, "batch": s32.batch_size,
              "tokens_per_s": tps, "speedup_float32_vs_legacy": round(tps["float32"] / tps["legacy"], 2),
              "speedup_bfloat16_vs_legacy": round(tps["bfloat16"] / tps["legacy"], 2),
              "speedup_bfloat16_vs_float32": round(tps["bfloat16"] / tps["float32"], 2),
              "construct_s": {"float32": round(build32, 2), "bfloat16": round(build16, 2)},
              "saes": {n: {"width": m, "loaded_from_store": from_store[n]} for n in saes},
              "ce_nats": ce}

    print(f"threads {a.threads}, load average {load_start:.2f} at start")
    print(f"harvest L{s.layer}: bare forward {harv['bare_forward_tokens_per_s']} tok/s, residual_at "
          f"{harv['residual_at_tokens_per_s']} ({harv['residual_at_slowdown_vs_bare']:+.1%}), whole harvest "
          f"{harv['whole_harvest_tokens_per_s']} (+{harv['whole_harvest_fixed_s']} s fixed); bit-identical; "
          + ", ".join(f"projected {k} harvest {v['slowdown_vs_bare']:+.1%} vs bare" for k, v in projected.items()))
    print(f"splice ({len(s32.tokens)} seqs x {T}): " + ", ".join(f"{k} {v} tok/s" for k, v in tps.items()))
    for n, row in ce.items():
        extra = (f", dLM bf16-fp32 {row['delta_lm_bf16_minus_fp32']:+.2e}, dLM fp32-legacy "
                 f"{row['delta_lm_fp32_minus_legacy']:+.2e}") if n in saes else ""
        print(f"  {n:<22} CE fp32 {row['float32']:.5f}  bf16-fp32 {row['bf16_minus_fp32']:+.2e}  "
              f"fp32-legacy {row['fp32_minus_legacy']:+.2e}{extra}")
    print(f"  clean CE with an fp64 log-softmax: {clean64:.6f} (legacy {leg['clean'] - clean64:+.2e}, "
          f"fp32 {s32.ce_clean - clean64:+.2e})")
    out = Path(__file__).parent / "results" / "splice_throughput.json"
    out.parent.mkdir(exist_ok=True)
    # tokens/s is only comparable across runs on an idle machine; the load average says how idle it was
    out.write_text(json.dumps({"args": vars(a), "threads": torch.get_num_threads(), "torch": torch.__version__,
                               "machine": platform.processor() or platform.machine(),
                               "load_average_1min_at_start": load_start,
                               "load_average_1min_at_end": os.getloadavg()[0],
                               "harvest": harv, "splice": splice}, indent=2))


if __name__ == "__main__":
    main()
