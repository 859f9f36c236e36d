"""First-letter absorption metric (Chanin et al. 2024 / SAEBench): known answers on a planted toy."""
import numpy as np
import pytest
import torch
from torch import nn

from saelib.data.synthetic import parent_child_toy
from saelib.metrics.absorption import (Probe, absorption_per_token, k_sparse_main_latents, measure_absorption,
                                       split_indices, train_probe)


class _CodeSAE(nn.Module):
    """An 'SAE' that returns given codes: lets a test plant absorption exactly."""

    def __init__(self, codes, W_dec):
        super().__init__()
        self.codes, self.W_dec, self.b_dec = codes, W_dec, torch.zeros(W_dec.shape[1])

    def encode(self, x):
        return self.codes


def _toy_sae(absorbing: bool):
    toy, feats, coef = parent_child_toy(n=4000, n_children=4, n_other=4, p_child=0.5, seed=1)
    n_child = 4
    codes, W_dec = coef.clone(), feats.clone()
    if absorbing:  # child latent j's decoder becomes (a + b_j)/sqrt(2) and carries the parent on its tokens
        for j in range(1, 1 + n_child):
            on = coef[:, j] > 0
            W_dec[j] = (feats[0] + feats[j]) / 2 ** 0.5
            codes[on, j] = coef[on, 0] * 2 ** 0.5
            codes[on, 0] = 0.0
    tr, te = split_indices(len(toy.labels), 0.3, 0)
    probe = Probe(torch.stack([-feats[0], feats[0]]), np.ones(2), tr, te, toy.labels.numpy())
    child_rate = float((coef[te][toy.labels[te] == 1, 1:1 + n_child] > 0).any(1).float().mean())
    return toy, _CodeSAE(codes, W_dec), probe, child_rate


def test_planted_absorption_is_measured_exactly():
    toy, sae, probe, child_rate = _toy_sae(absorbing=True)
    res = measure_absorption(sae, toy, probe, classes=[1], names=None, max_k=1)
    row = res.per_class.iloc[0]
    assert row["main_latents"] == [0] and res.n_pass == 1
    assert res.mean_fraction == pytest.approx(child_rate, abs=1e-6)  # every child token fully absorbed
    assert res.full_rate == pytest.approx(child_rate, abs=1e-6)
    assert 0.4 < child_rate < 0.6
    words = row["word_fractions"]
    assert len(words) == row["n_words"] and words.mean() == pytest.approx(row["absorption_fraction"])


def test_ideal_dictionary_has_no_absorption():
    toy, sae, probe, _ = _toy_sae(absorbing=False)
    res = measure_absorption(sae, toy, probe, classes=[1], names=None, max_k=1)
    assert res.mean_fraction == 0.0 and res.full_rate == 0.0


def test_partial_absorption_fraction():
    # one token: A = 1 along p; main latent carries 0.25, an aligned absorber 0.75
    W_dec = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    codes = torch.tensor([[0.25, 0.75 / 0.6]])
    frac, full = absorption_per_token(codes, torch.tensor([[1.0, 0.0]]), W_dec, torch.tensor([1.0, 0.0]), [0])
    assert float(frac[0]) == pytest.approx(0.75) and not bool(full[0])


def test_k_sparse_probe_grows_k_only_on_f1_jumps():
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(400, generator=g) < 0.5
    half = torch.rand(400, generator=g) < 0.5
    codes = torch.zeros(400, 5)
    codes[:, 0] = (pos & half).float()        # the letter splits over latents 0 and 1
    codes[:, 1] = (pos & ~half).float() * 0.9
    codes[:, 2] = torch.rand(400, generator=g) * 0.01
    main, f1s = k_sparse_main_latents(codes[:300], pos[:300], codes[300:], pos[300:], max_k=4)
    assert sorted(main) == [0, 1] and f1s[1] == pytest.approx(1.0)


def test_probe_on_separable_classes_and_bad_input():
    toy, feats, _ = parent_child_toy(n=2000, seed=0)
    probe = train_probe(toy)
    assert probe.f1.min() > 0.99 and float(probe.directions[1] @ feats[0]) > 0.8
    with pytest.raises(ValueError, match="d must be"):
        parent_child_toy(d=4)
    with pytest.raises(ValueError, match="f1_gate"):
        measure_absorption(None, toy, probe, f1_gate=2.0)
