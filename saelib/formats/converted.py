"""What every converter returns: a checkpoint in saelib's own terms, ready for ``SAE`` to build from.

``cfg`` holds saelib's keys (``d_in``, ``d_sae``, ``sparsifier``, ``sparsifier_kwargs``,
``apply_b_dec_to_input``, ``metadata``), ``tensors`` saelib's names and shapes (``W_enc`` (d_in, d_sae),
``b_enc``, ``W_dec`` (d_sae, d_in), ``b_dec``, and the sparsifier's state such as ``threshold``).
``input_scale`` = (s_in, s_out), when set, is folded in after loading (``SAE.fold_input_scale_``): the
SAE was trained on s_in x and predicts s_out x, the loaded one reads and writes raw x.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from torch import Tensor

from ..checkpoint import CheckpointError

BASE_TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec")


class Converted(NamedTuple):
    """A checkpoint converted to saelib's config and tensor names (module docstring)."""

    cfg: dict[str, Any]
    tensors: dict[str, Tensor]
    input_scale: tuple[float, float] | None = None


def require(cfg: dict[str, Any], key: str, source: str) -> Any:
    """cfg[key], or a CheckpointError naming the key and the file."""
    if key not in cfg:
        raise CheckpointError(f"{source} lacks the key {key!r}")
    return cfg[key]


def refuse_extra_tensors(tensors: dict[str, Tensor], known: set[str], source: str) -> None:
    """Tensors this converter does not know would be silently dropped: refuse them, named."""
    extra = sorted(set(tensors) - known)
    if extra:
        raise CheckpointError(f"{source} holds tensors saelib cannot represent: {extra} (known: {sorted(known)})")
