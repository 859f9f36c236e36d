"""The SAE store: train once, load everywhere; keys change with everything that determines the SAE."""
import pytest
import torch

from saelib.store import remember, stored_keys, train_cached
from saelib.train import TrainConfig

from .helpers import data


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))


CFG = TrainConfig(epochs=1, batch_size=256, lr=1e-3, progress=False)


def test_second_call_loads_the_same_sae_without_training():
    x = data()
    first, key = train_cached(x, 32, "topk", CFG, seed=3, k=4)
    again, key2 = train_cached(x, 32, "topk", TrainConfig(epochs=1, batch_size=256, lr=1e-3, progress=True),
                               seed=3, k=4)   # progress does not change the SAE: same entry
    assert key == key2 and stored_keys() == [key]
    a, b = first.sae.state_dict(), again.sae.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not again.sae.training and again.input_scale == first.input_scale
    assert again.history["fvu"].tolist() == pytest.approx(first.history["fvu"].tolist(), rel=1e-12)
    assert torch.equal(again.sae(x[:50]), first.sae(x[:50]))


def test_key_changes_with_seed_config_data_and_sparsifier():
    x = data()
    _, base = train_cached(x, 32, "topk", CFG, seed=0, k=4)
    _, seed = train_cached(x, 32, "topk", CFG, seed=1, k=4)
    _, lr = train_cached(x, 32, "topk", TrainConfig(epochs=1, batch_size=256, lr=2e-3, progress=False), seed=0, k=4)
    _, dat = train_cached(x * 1.01, 32, "topk", CFG, seed=0, k=4)
    _, kk = train_cached(x, 32, "topk", CFG, seed=0, k=5)
    _, named = train_cached(x, 32, "topk", CFG, seed=0, data_key="harvest abc rows 0:1500", k=4)
    assert len({base, seed, lr, dat, kk, named}) == 6


def test_unhashable_training_is_refused_not_guessed():
    x = data()
    cfg = TrainConfig(epochs=1, batch_size=256, progress=False, callbacks=[lambda state: None])
    with pytest.raises(ValueError, match="extra_key"):
        train_cached(x, 32, "topk", cfg, k=4)
    with pytest.raises(ValueError, match="state_dict"):
        train_cached(x, 32, "atm", CFG)


def test_remember_computes_once_per_name():
    x = data()
    _, key = train_cached(x, 32, "topk", CFG, k=4)
    calls = []
    value = remember(key, "fvu on x", lambda: calls.append(1) or {"fvu": 0.25})
    assert value == {"fvu": 0.25} and remember(key, "fvu on x", lambda: calls.append(1) or {}) == value
    assert len(calls) == 1
    with pytest.raises(ValueError, match="no stored SAE"):
        remember("0" * 16, "x", dict)
