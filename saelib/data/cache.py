"""The data caches' one file format: tensors and their JSON description in one safetensors file,
with a sha256 of the tensors in its header, verified on every load.

:func:`load_or_build` returns the cached tensors, or builds them (and writes the file atomically)
when the file is missing, truncated, bit-flipped, from an older format or otherwise unreadable:
a bad cache file is rebuilt with a warning that names it, never returned and never fatal.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Callable

from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..checkpoint import tensors_digest
from ..utils import atomic_path

FORMAT = "saelib-cache-1"

Built = tuple[dict[str, Tensor], dict[str, Any]]


class CorruptCache(ValueError):
    """A cache file that cannot be trusted (unreadable, wrong format, or its tensors fail the hash)."""


def write(path: Path, tensors: dict[str, Tensor], info: dict[str, Any]) -> None:
    tensors = {k: v.contiguous().cpu() for k, v in tensors.items()}
    meta = {"format": FORMAT, "info": json.dumps(info), "sha256": tensors_digest(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def read(path: Path) -> Built:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises several types for damaged files
        raise CorruptCache(f"unreadable ({err})") from err
    if meta.get("format") != FORMAT:
        raise CorruptCache(f"not in the current cache format ({FORMAT})")
    if tensors_digest(tensors) != meta.get("sha256"):
        raise CorruptCache("its tensors do not match the hash stored when it was written")
    return tensors, json.loads(meta["info"])


def load_or_build(path: Path, build: Callable[[], Built]) -> Built:
    """The verified tensors and info at ``path``, or ``build()``'s, written there first (module docstring)."""
    path = Path(path)
    if path.exists():
        try:
            return read(path)
        except CorruptCache as err:
            warnings.warn(f"cache file {path} is {err}: rebuilding it", stacklevel=2)
    tensors, info = build()
    write(path, tensors, info)
    return tensors, info
