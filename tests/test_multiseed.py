"""The multi-seed helper (saelib.multiseed) and the SAE-level matching helpers it feeds."""
import pytest
import torch

from saelib import TrainConfig
from saelib.metrics.matching import match_saes, per_latent_mcc, shared_counts
from saelib.multiseed import dictionaries, pairwise_summary, snapshot_scores, train_seeds
from saelib.utils import torch_threads


def test_sae_matching_and_multiseed_helper():
    x = torch.randn(512, 8, generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(epochs=1, batch_size=128, progress=False)
    res = train_seeds(x, 16, "topk", [0, 1, 2], cfg, snapshot_every=2, k=2)
    assert len(res.saes) == 3 and list(res.metrics["seed"]) == [0, 1, 2]
    assert [s.step for s in res.snapshots[0]] == [2, 4]  # step 2 + final (4 steps)
    # same data order, different init: different weights
    assert not torch.allclose(res.saes[0].W_dec, res.saes[1].W_dec)
    m = match_saes(res.saes[0], res.saes[0])
    assert m.summary()["shared"] == 1.0
    counts = shared_counts(res.saes, threshold=0.7)
    assert counts.shape == (16,) and counts.min() >= 0 and counts.max() <= 2
    assert per_latent_mcc(dictionaries(res)).shape == (16,)
    pairs = pairwise_summary(res)
    assert len(pairs) == 3 and ((pairs["shared_strict"] <= pairs["shared"]) & (pairs["shared"] <= 1)).all()
    snaps = snapshot_scores(res, truth=res.saes[0].W_dec.detach())
    assert list(snaps["step"]) == [2, 4] and snaps["gt_mcc"].between(-1, 1).all()
    with pytest.raises(ValueError, match="snapshots"):
        snapshot_scores(train_seeds(x, 16, "topk", [0, 1], cfg, k=2))
    n = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == n
    # identical init seed + identical data order -> identical SAE
    again = train_seeds(x, 16, "topk", [1], cfg, k=2)
    assert torch.allclose(again.saes[0].W_dec, res.saes[1].W_dec)
