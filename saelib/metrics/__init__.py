"""Metrics, one module per idea (definitions in ``docs/glossary.md``):

* ``reconstruction``: L0, FVU, :func:`evaluate` (dead fraction, densities, shrinkage ratio; under the
  batch or the inference rule);
* ``splice``: Delta LM loss and CE recovered with the SAE spliced into the LM, per-token CE;
* ``matching``: cosines, Hungarian matching, shared latents, MCC / PW-MCC / GT-MCC;
* ``splitting``: feature splitting against a data-shaped null;
* ``absorption``: the first-letter absorption metric.
"""
