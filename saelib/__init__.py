"""saelib: the small library behind the SAE paper companion.

The layout is the architecture; imports flow one way, left to right (``tests/test_layers.py``
checks it)::

    core           sae, checkpoint, formats/, fastpath, zipf, distributed, sparsifiers/, losses, train, callbacks, utils
      -> data/          lm, text, harvest, mnist, synthetic, words
      -> metrics/       reconstruction, splice, matching, splitting, absorption
      -> orchestration  sweep, multiseed, store, train_ddp
      -> papers/        llama_scope(_release), generalisation, gradient_sae, pam, geometry, jumprelu_toy
      -> companion/     notebook, presets, claims, scoreboard, plots, examples
      -> notebooks

Names in the code, and what the papers call them:

* number of latents: ``d_sae`` (SAE), ``width`` (sweep runs), ``n_latents`` (sparsifiers and losses),
  ``m`` or ``F`` in equations; the input dimension is ``d_in`` (``d`` in equations).
* sparsity coefficient lambda: ``sparsity_coeff`` (TrainConfig), ``lam`` (sweep runs),
  ``l1_coeff`` (PAM); k is the number of active latents of the TopK family.
* the sparsifier (activation function): ``sparsifier`` (SAE), ``arch`` (sweep runs); ``cfg.json``
  stores it as both ``sparsifier`` and SAELens's ``architecture``.

Concepts (L0, FVU, Delta LM loss, dead latents, ...) are defined in ``docs/glossary.md``.
"""
from .sparsifiers import SPARSIFIERS, Sparsifier, make_sparsifier, register
from .checkpoint import CheckpointError
from .sae import SAE
from .train import TrainConfig, TrainResult, train_sae
from .utils import cache_dir, seed_everything

__all__ = ["SAE", "CheckpointError", "SPARSIFIERS", "Sparsifier", "make_sparsifier", "register",
           "TrainConfig", "TrainResult", "train_sae", "cache_dir", "seed_everything"]
__version__ = "0.1.0"
