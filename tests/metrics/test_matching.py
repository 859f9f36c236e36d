"""Known answers for the matching toolbox (Paulo & Belrose 2025; Song et al. 2025)."""
import numpy as np
import pytest
import torch

from saelib.metrics.matching import (MatrixTooLargeError, check_fits, cosine_matrix, gt_mcc, hungarian,
                                     match_dictionaries, matched_cosine, mcc, normalize_rows, pw_mcc,
                                     random_dictionary_cosines, threshold_sweep)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_CACHE", str(tmp_path))


def _dict(n=64, d=32, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def _permuted_copy(w, seed=1, scale=True):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(w.shape[0], generator=g)
    s = torch.rand(w.shape[0], 1, generator=g) + 0.5 if scale else 1.0
    return (w * s)[perm], perm


def test_permuted_sign_preserved_copy_is_identical():
    a = _dict()
    b, perm = _permuted_copy(a)
    assert mcc(a, b) == pytest.approx(1.0, abs=1e-6)
    m = match_dictionaries(a, b, a, b)
    assert np.array_equal(m.partner_dec[perm.numpy()], np.arange(len(a)))  # B[j] = A[perm[j]] -> A[perm[j]] matches j
    assert m.shared(0.7).mean() == 1.0 and m.shared(0.7, "strict").mean() == 1.0
    assert m.summary()["equal"] == 1.0


def test_sign_flipped_latents_read_minus_one_and_are_not_shared():
    a = _dict()
    b, perm = _permuted_copy(a, scale=False)
    flipped = torch.zeros(len(a), dtype=torch.bool)
    flipped[:10] = True
    b[flipped] = -b[flipped]
    c = cosine_matrix(a, b)
    # cosine of each latent of B with its source latent in A
    src = c[perm, torch.arange(len(a))]
    assert torch.allclose(src[flipped], torch.tensor(-1.0), atol=1e-6)
    assert torch.allclose(src[~flipped], torch.tensor(1.0), atol=1e-6)
    # forced onto their true partners, the flipped latents read -1
    partner = np.empty(len(a), dtype=np.int64)
    partner[perm.numpy()] = np.arange(len(a))
    mc = matched_cosine(c, partner)
    assert np.allclose(mc[perm[flipped].numpy()], -1.0, atol=1e-6)
    # under the Hungarian assignment they are never matched to their flipped copy nor shared
    m = match_dictionaries(a, b, a, b)
    shared = m.shared(0.7)
    assert shared.sum() == (~flipped).sum().item()
    assert not shared[perm[flipped].numpy()].any()
    assert mcc(a, b) < 1 - 0.5 * flipped.float().mean().item()


def test_fully_flipped_copy_has_low_mcc():
    a = _dict(64, 256)
    assert mcc(a, -a) < 0.15


def test_random_dictionaries_have_low_mcc():
    a, b = _dict(64, 256, 0), _dict(64, 256, 1)
    assert mcc(a, b) < 0.25
    m = match_dictionaries(a, b, a, b)
    assert m.shared(0.7).sum() == 0
    assert pw_mcc([a, b, _dict(64, 256, 2)]) < 0.25


def test_dead_and_zero_latents_never_match():
    a = _dict()
    b = a.clone()
    b[3] = 0.0
    alive = torch.ones(len(a), dtype=torch.bool)
    alive[5] = False
    m = match_dictionaries(a, b, a, b, alive_b=alive)
    cos = m.cos_dec
    assert cos[3] == 0 and cos[5] == 0
    assert not m.shared(0.0)[[3, 5]].any()
    assert normalize_rows(b)[3].abs().sum() == 0


def test_hungarian_rectangular_and_gt_mcc():
    a = _dict(8, 16)
    b = torch.cat([a[torch.tensor([2, 0, 1, 7, 6, 5, 4, 3])], _dict(4, 16, 9)])  # over-complete copy
    assert gt_mcc(a, b) == pytest.approx(1.0, abs=1e-6)
    p = hungarian(cosine_matrix(b, a))
    assert (p == -1).sum() == 4  # 12 rows, 8 columns


def test_threshold_sweep_monotone_and_bounds():
    a = _dict()
    b = a + 0.5 * _dict(seed=3)
    sw = threshold_sweep(match_dictionaries(a, b, a, b + 0.3 * _dict(seed=4)))
    for col in ("decoder", "encoder", "both", "strict"):
        assert (np.diff(sw[col]) <= 1e-12).all()
    assert (sw["both"] <= np.minimum(sw["decoder"], sw["encoder"]) + 1e-12).all()
    assert (sw["strict"] <= sw["both"] + 1e-12).all()
    assert sw[sw.threshold == 0]["decoder"].item() == 1.0


def test_memory_guard_refuses_with_a_clear_message():
    with pytest.raises(MatrixTooLargeError, match="GiB"):
        check_fits(100_000, 100_000, max_bytes=2**30)
    with pytest.raises(MatrixTooLargeError):
        mcc(_dict(), _dict(), max_bytes=1000)
    check_fits(10, 10)


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="criterion"):
        match_dictionaries(_dict(), _dict()).shared(0.7, "both-ish")
    with pytest.raises(ValueError, match="threshold"):
        match_dictionaries(_dict(), _dict()).shared(1.5)
    with pytest.raises(ValueError, match="same dimension"):
        cosine_matrix(_dict(8, 4), _dict(8, 5))
    with pytest.raises(ValueError, match="dicts"):
        pw_mcc([_dict()])
    with pytest.raises(ValueError, match="2-D"):
        mcc(torch.zeros(3), torch.zeros(3))


def test_random_dictionary_cosines_are_the_chance_level_and_fall_with_dimension():
    a = random_dictionary_cosines(64, 32, seed=3)
    assert a.shape == (32,) and np.array_equal(a, random_dictionary_cosines(64, 32, seed=3))
    assert np.abs(a).max() <= 1 + 1e-12
    # one direction in R^1 is +-1, so its matched cosine is +-1
    assert abs(random_dictionary_cosines(1, 1, seed=0)[0]) == pytest.approx(1.0)
    # the Hungarian maximum beats a fixed pairing, and chance falls as d grows (about sqrt(2 log m / d))
    low_d, high_d = (np.median(random_dictionary_cosines(d, 64, seed=0)) for d in (8, 512))
    assert low_d > 0.4 > 0.2 > high_d > 0
    with pytest.raises(ValueError, match="width"):
        random_dictionary_cosines(8, 0)
