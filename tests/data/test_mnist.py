import gzip

import numpy as np
import pytest

from saelib.data.mnist import load_mnist


def test_mnist_default_is_real_shuffled_and_scaled():
    X, y = load_mnist(seed=0)
    assert X.shape == (5000, 784) and float(X.min()) == 0.0 and float(X.max()) == 1.0
    assert sorted(np.bincount(y.numpy()).tolist()) == [500] * 10
    assert (y[:20] != y[0]).any()  # shuffled (the raw file is sorted by label)
    X2, y2 = load_mnist(seed=0)
    assert (y2 == y).all()


def test_mnist_from_idx_files(tmp_path):
    imgs = (np.arange(3 * 784) % 256).astype(np.uint8).reshape(3, 28, 28)
    head = bytes([0, 0, 8, 3]) + b"".join(int(v).to_bytes(4, "big") for v in (3, 28, 28))
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(head + imgs.tobytes())
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (3).to_bytes(4, "big") + bytes([7, 1, 4]))
    X, y = load_mnist(str(tmp_path), seed=0)
    assert X.shape == (3, 784) and sorted(y.tolist()) == [1, 4, 7]
    with pytest.raises(ValueError, match="source must be"):
        load_mnist(str(tmp_path / "missing"))
