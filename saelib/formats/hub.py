"""Fetch one SAE folder from the Hugging Face hub (online use), only the files of the layouts saelib reads.

``SAE.from_pretrained(repo_id, path)`` calls :func:`fetch`, then loads the folder like ``SAE.load``.
Pickled weights are never downloaded (they are not among the files asked for).
"""
from __future__ import annotations

from pathlib import Path

from ..checkpoint import CheckpointError
from . import LAYOUT_FILES, PICKLE_SUFFIXES


def fetch(repo_id: str, path: str = "", revision: str | None = None, cache_dir: str | Path | None = None,
          token: str | bool | None = None) -> Path:
    """Download ``repo_id``/``path``'s checkpoint files (any known layout) and return the local folder."""
    from huggingface_hub import snapshot_download

    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise ValueError(f"repo_id must be 'owner/name', got {repo_id!r}")
    prefix = path.strip("/")
    files = sorted({f for names in LAYOUT_FILES.values() for f in names})
    patterns = [f"{prefix}/{f}" if prefix else f for f in files]
    root = Path(snapshot_download(repo_id, allow_patterns=patterns, revision=revision, cache_dir=cache_dir,
                                  token=token))
    folder = root / prefix if prefix else root
    if not any((folder / names[-1]).is_file() for names in LAYOUT_FILES.values()):
        raise CheckpointError(f"{repo_id}/{prefix} holds no SAE checkpoint saelib reads "
                              f"(asked for {files}){_what_is_there(repo_id, prefix, revision, token)}")
    return folder


def _what_is_there(repo_id: str, prefix: str, revision: str | None, token: str | bool | None) -> str:
    """A hint for the error: the folder's files, pickles named as refused (best effort: needs the network)."""
    try:
        from huggingface_hub import list_repo_files

        names = [f for f in list_repo_files(repo_id, revision=revision, token=token)
                 if not prefix or f.startswith(prefix + "/")]
    except Exception:  # the hint is optional; the error above stands without it
        return ""
    pickles = [f for f in names if Path(f).suffix in PICKLE_SUFFIXES]
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    hint = f"; it has: {shown or 'nothing'}"
    if pickles:
        hint += f" (pickled weights {pickles[:3]} are refused: torch.load can run arbitrary code)"
    return hint
