"""Ready-made training callbacks (saelib.callbacks): K annealing and snapshots."""
from types import SimpleNamespace

import pytest

from saelib.callbacks import KAnnealing, Snapshots
from saelib.sae import SAE
from saelib.sweep import preact_quantile
from saelib.train import TrainConfig, train_sae

from .helpers import data


def test_k_annealing_schedule_and_callback():
    sched = KAnnealing(288, 32, frac=0.1)
    assert sched.k_at(0.0) == 288 and sched.k_at(0.05) == 160 and sched.k_at(0.1) == 32 and sched.k_at(0.7) == 32
    state = SimpleNamespace(sae=SimpleNamespace(sparsifier=SimpleNamespace(k=0)), frac=0.025)
    sched(state)
    assert state.sae.sparsifier.k == 224
    with pytest.raises(ValueError, match="k_start must be in"):
        KAnnealing(10, 32)
    with pytest.raises(ValueError, match="frac must be in"):
        KAnnealing(64, 32, frac=0.0)


def test_snapshots_and_preact_quantile():
    x = data(n=600)
    sae = SAE(12, 24, "jumprelu", init_threshold=0.5, bandwidth=0.3, seed=0)
    q = preact_quantile(sae, x, 0.9)
    assert 0 < q < 10
    snap = Snapshots(lambda s: s.sparsifier.threshold, every=2)
    train_sae(sae, x, TrainConfig(epochs=1, batch_size=100, sparsity_coeff=0.1, progress=False, callbacks=[snap]))
    assert snap.steps == [0, 2, 4, 5] and snap.values[0].shape == (24,)
    with pytest.raises(ValueError, match="q must be in"):
        preact_quantile(sae, x, 1.5)
