"""Paper-specific methods, one module per paper (each names the notebooks that use it):
``llama_scope`` and ``llama_scope_release`` (01), ``generalisation`` (01), ``gradient_sae`` (05),
``pam`` (09, 10), ``geometry`` (09), ``jumprelu_toy`` (03). The sparsifiers the papers introduce
live in :mod:`saelib.sparsifiers`.
"""
