import gzip

import numpy as np
import pytest

from saelib.images import load_mnist
from saelib.text import load_corpus, tokenize_and_chunk


def test_local_corpus_split_is_fixed_and_disjoint():
    ds = load_corpus()
    assert len(ds["train"]) > 300 and 30 < len(ds["eval"]) < 60
    assert set(ds["train"]["text"]).isdisjoint(list(ds["eval"]["text"]))
    assert set(ds["train"]["source"]) == {"wiki", "lee"}
    assert "'''" not in ds["train"]["text"][0]
    with pytest.raises(ValueError, match="corpus must be one of"):
        load_corpus("local:nope")


def test_tokenize_and_chunk_shapes(tiny_lm):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    chunks = tokenize_and_chunk(load_corpus("local:gensim-lee")["eval"], tok, ctx_len=16, max_tokens=100)
    assert chunks.shape == (7, 16)
    with pytest.raises(ValueError, match="ctx_len must be"):
        tokenize_and_chunk(load_corpus("local:gensim-lee")["eval"], tok, ctx_len=1)


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


def test_hub_style_corpus_path_on_local_json(tmp_path):
    """The online path (datasets.load_dataset) exercised on a JSON-lines file made here."""
    import json
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"body": f"document number {i}"}) for i in range(40)))
    ds = load_corpus("json", text_field="body", data_files=str(path))
    assert len(ds["train"]) == 38 and len(ds["eval"]) == 2
    assert set(ds["train"]["text"]).isdisjoint(list(ds["eval"]["text"]))
