"""The checkpoint folder: SAELens's layout (``cfg.json`` + ``sae_weights.safetensors``), written safely.

* **Nothing is lost.** :func:`write` refuses a path that is a file, or a folder holding anything other
  than a checkpoint's two files (a run folder, a project), naming the path. It never removes a folder:
  each file is written to a temporary name beside it and renamed into place (``os.replace``), so a
  crash leaves the old file or the new one, never half of one.
* **Nothing is silently wrong.** The weights file carries, in its safetensors header, the config and a
  sha256 of the tensors. :func:`read` takes the config from that header (so a load racing a save sees
  one version's config *with* that version's weights: one file, one atomic rename), checks the hash
  (a flipped bit is caught) and refuses non-finite tensors, naming them. Checkpoints without the header
  (SAELens, saelib before this format) load from ``cfg.json`` after the finiteness check; the SAE then
  checks shapes. Other libraries' layouts are converted in :mod:`saelib.formats`, through
  :func:`read_safetensors` (safetensors only: nothing here calls ``torch.load``).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save_file
from torch import Tensor

from .utils import atomic_path

WEIGHTS_FILE = "sae_weights.safetensors"
CFG_FILE = "cfg.json"
FORMAT = "saelib-2"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, unreadable, corrupt, or disagrees with its cfg."""


def tensors_digest(tensors: dict[str, Tensor]) -> str:
    """sha256 over the tensors' names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")  # atomic_path's leftovers after a kill


def write(directory: str | Path, tensors: dict[str, Tensor], cfg: dict[str, Any]) -> Path:
    """Write a checkpoint folder (module docstring); refuse to replace anything that is not one."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"{directory} is a file, not a checkpoint folder: save into a new or empty folder")
    if directory.is_dir():
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in (CFG_FILE, WEIGHTS_FILE)
                         and not _is_temp(p.name))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise CheckpointError(f"{directory} exists and is not an SAE checkpoint (it holds {shown}); saving would "
                                  f"replace its contents: save into a new or empty folder")
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    cfg_text = json.dumps(cfg, indent=2, default=str)
    meta = {"format": FORMAT, "cfg": cfg_text, "sha256": tensors_digest(tensors)}
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    with atomic_path(directory / CFG_FILE) as tmp:
        tmp.write_text(cfg_text)
    return directory


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        cfg = json.loads(text)
        if not isinstance(cfg, dict):
            raise TypeError(f"a JSON object is needed, got {type(cfg).__name__}")
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{source} is not a valid SAE config ({err})") from err
    return cfg


def read(directory: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(cfg, tensors) of a checkpoint folder, verified as the module docstring says."""
    directory = Path(directory)
    cfg_path, w_path = directory / CFG_FILE, directory / WEIGHTS_FILE
    if not directory.is_dir():
        raise CheckpointError(f"SAE checkpoint directory not found: {directory}")
    if not w_path.is_file():
        raise CheckpointError(f"SAE checkpoint {directory} is missing {WEIGHTS_FILE}")
    cfg = read_json(cfg_path) if cfg_path.is_file() else None
    meta, tensors = _open(w_path)
    if meta.get("format") == FORMAT:
        if tensors_digest(tensors) != meta.get("sha256"):
            raise CheckpointError(f"{w_path}: the weights do not match the hash stored when they were saved: "
                                  f"the file is corrupt")
        cfg = _parse(meta.get("cfg", ""), f"the header of {w_path}")  # the weights' own version of the cfg
    elif cfg is None:
        raise CheckpointError(f"SAE checkpoint {directory} is missing {CFG_FILE}")
    _check_finite(w_path, tensors)
    return cfg, tensors


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from ``path`` (a config file), or CheckpointError naming the file."""
    return _parse(Path(path).read_text(), str(path))


def read_safetensors(path: str | Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    """(header metadata, tensors) of one safetensors file; non-finite tensors are refused, named.
    safetensors holds no code, so reading one runs none (unlike ``torch.load`` of a pickle)."""
    meta, tensors = _open(path)
    _check_finite(path, tensors)
    return meta, tensors


def _open(path: str | Path) -> tuple[dict[str, str], dict[str, Tensor]]:
    # One read of the bytes, then header and tensors from them: ``safe_open`` re-opens the file by name
    # for the tensors, so a save racing this load could pair one version's header with another's weights.
    try:
        data = Path(path).read_bytes()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        return header.get("__metadata__") or {}, load(data)
    except Exception as err:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"{path} is corrupt or unreadable ({err})") from err


def _check_finite(path: str | Path, tensors: dict[str, Tensor]) -> None:
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor {name!r} has non-finite values (NaN or inf)")
