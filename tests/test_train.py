import pytest
import torch

from saelib.metrics.reconstruction import evaluate
from saelib.sae import SAE
from saelib.train import TrainConfig, TrainingDiverged, check_training_data, lr_factor, train_sae


def synthetic(n=6000, d=24, m=48, k=3, seed=0):
    """Sparse non-negative combinations of m random unit directions: an SAE can recover them."""
    g = torch.Generator().manual_seed(seed)
    D = torch.nn.functional.normalize(torch.randn(m, d, generator=g), dim=1)
    idx = torch.rand(n, m, generator=g).argsort(1)[:, :k]
    c = torch.zeros(n, m).scatter(1, idx, torch.rand(n, k, generator=g) + 0.5)
    return c @ D * 10


@pytest.mark.parametrize("field,value,msg", [
    ("lr", 0.0, "lr must be in"), ("batch_size", 0, "batch_size must be in"),
    ("warmup_frac", 1.5, "warmup_frac must be in"), ("sparse", "maybe", "sparse must be one of"),
    ("matmul_precision", "low", "matmul_precision must be one of"), ("epochs", -1, "epochs must be in"),
])
def test_config_rejects_bad_values_naming_the_field(field, value, msg):
    with pytest.raises(ValueError, match=msg):
        TrainConfig(**{field: value})


def test_lr_schedule_warmup_and_decay():
    f = [lr_factor(s, 100, 0.1, 0.2) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[50] == 1.0
    assert f[80] == pytest.approx(1.0) and f[90] == pytest.approx(0.5) and f[99] == pytest.approx(0.05)


def test_golden_topk_training():
    """Fixed seed, small run: FVU and L0 within a tolerance (catches silent regressions)."""
    x = synthetic()
    sae = SAE(24, 48, "topk", k=3, seed=0)
    res = train_sae(sae, x, TrainConfig(epochs=8, batch_size=256, lr=1e-2, progress=False, seed=0))
    m = evaluate(res.sae, x[:2000])
    assert m["l0"] <= 3.0
    assert m["fvu"] == pytest.approx(0.131, abs=0.03)  # measured 0.131 when written
    assert res.history["fvu"].iloc[-1] < res.history["fvu"].iloc[0] / 4
    assert list(res.history.columns)[:4] == ["step", "tokens", "lr", "loss"]


def test_relu_l1_penalty_trades_l0_for_fvu():
    """A larger L1 coefficient gives a sparser, less accurate ReLU SAE."""
    x = synthetic()
    res = {c: evaluate(train_sae(SAE(24, 48, "relu", seed=0), x,
                                 TrainConfig(epochs=8, batch_size=256, lr=3e-3, sparsity_coeff=c,
                                             auxk_coeff=0, progress=False)).sae, x[:2000])
           for c in (0.1, 1.0)}
    assert res[1.0]["l0"] < res[0.1]["l0"]
    assert res[0.1]["fvu"] < res[1.0]["fvu"] < 0.5


def test_training_is_deterministic_and_returns_raw_scale_sae():
    x = synthetic(n=2000)
    runs = [train_sae(SAE(24, 48, "topk", k=3, seed=1), x, TrainConfig(epochs=2, batch_size=200, progress=False))
            for _ in range(2)]
    assert torch.equal(runs[0].sae.W_enc, runs[1].sae.W_enc)
    assert runs[0].input_scale != 1.0
    # the folded SAE works on raw activations: its reconstruction is on x's scale
    assert evaluate(runs[0].sae, x)["norm_ratio"] == pytest.approx(1.0, abs=0.3)


def test_checkpoints_and_callbacks(tmp_path):
    seen = []
    cfg = TrainConfig(epochs=1, batch_size=100, progress=False, checkpoint_dir=str(tmp_path),
                      checkpoint_every=5, callbacks=[lambda st: seen.append(st.step)])
    train_sae(SAE(24, 48, "topk", k=3), synthetic(n=1000), cfg)
    assert seen == list(range(10))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_0000005", "step_0000010"]


def test_data_shape_is_checked():
    with pytest.raises(ValueError, match="data must have shape"):
        train_sae(SAE(24, 48, "topk", k=3), torch.randn(10, 5))


def test_loss_terms_see_the_batch_and_change_training():
    x = synthetic(n=1000)
    seen: list[tuple[int, bool]] = []

    def pull_b_enc_down(st):
        # the callback already knows which rows form this batch; the term sees that batch, scaled
        seen.append((st.step, torch.allclose(st.x, x[st.batch_index] * st.x.norm(dim=1).mean()
                                             / x[st.batch_index].norm(dim=1).mean(), rtol=1e-4)))
        return 10.0 * st.sae.b_enc.pow(2).sum() + 0 * st.out.x_hat.sum()

    base = TrainConfig(epochs=1, batch_size=100, progress=False)
    plain = train_sae(SAE(24, 48, "topk", k=3, seed=0), x, base)
    extra = train_sae(SAE(24, 48, "topk", k=3, seed=0), x,
                      TrainConfig(epochs=1, batch_size=100, progress=False, loss_terms={"b_enc_l2": pull_b_enc_down}))
    assert [s for s, _ in seen] == list(range(10)) and all(ok for _, ok in seen)
    assert "b_enc_l2" in extra.history and extra.history["b_enc_l2"].iloc[-1] >= 0
    assert extra.sae.b_enc.norm() < plain.sae.b_enc.norm()
    assert "loss_terms" not in base.as_dict()


# ---- guards: bad data, divergence, interruption, checkpoints on the raw scale ----------------------

def _raw_data(n=2000, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * 7 + 3


@pytest.mark.parametrize("bad,match", [
    (lambda x: x.numpy(), "must be a torch.Tensor"),
    (lambda x: x.long(), "floating point"),
    (lambda x: x[:0], "no rows"),
    (lambda x: x.index_fill(0, torch.tensor([17]), float("nan")), "non-finite values .* first at row 17"),
    (lambda x: torch.zeros_like(x), "all zero"),
])
def test_bad_data_is_refused_before_the_first_step(bad, match):
    with pytest.raises((TypeError, ValueError), match=match):
        train_sae(SAE(16, 32, "topk", k=4, seed=0), bad(_raw_data()), TrainConfig(progress=False))


@pytest.mark.parametrize("value", [3e38, 1e-45])
def test_data_whose_norm_overflows_or_underflows_is_still_accepted(value):
    """The one-pass norm settles the usual case; an overflowing (inf) or underflowing (0) norm of finite,
    non-zero data falls back to the element-wise checks, which accept it."""
    check_training_data(torch.full((10, 16), value), 16)
    with pytest.raises(ValueError, match="non-finite values .* first at row 3"):
        check_training_data(torch.full((10, 16), value).index_fill(0, torch.tensor([3]), float("inf")), 16)


@pytest.mark.parametrize("lr", [1e12, 1e30])
def test_a_diverging_run_stops_with_the_step_and_keeps_the_last_good_state(lr):
    sae = SAE(16, 32, "relu", seed=0)
    cfg = TrainConfig(epochs=3, batch_size=100, lr=lr, warmup_frac=0.0, sparsity_coeff=1e-3, progress=False,
                      log_every=1)
    with pytest.raises(TrainingDiverged, match=r"training stopped at step \d+ of 60: the loss") as err:
        train_sae(sae, _raw_data(), cfg)
    assert "weights from step" in str(err.value)
    assert all(bool(torch.isfinite(p).all()) for p in sae.parameters())     # the restored state is finite
    assert not sae.training and sae.metadata["folded_input_scale"] and "stopped_at_step" in sae.metadata


def test_an_interrupted_run_is_left_on_the_raw_scale():
    x = _raw_data()

    def interrupt(state):
        if state.step == 5:
            raise KeyboardInterrupt

    sae = SAE(16, 32, "topk", k=4, seed=0)
    with pytest.raises(KeyboardInterrupt):
        train_sae(sae, x, TrainConfig(epochs=2, batch_size=100, progress=False, callbacks=[interrupt]))
    assert not sae.training and sae.metadata["stopped_at_step"] == 5 and sae.metadata["folded_input_scale"]
    assert evaluate(sae, x)["fvu"] < 1.5       # works on raw activations (unfolded it would be far off)


def test_mid_training_checkpoints_read_raw_activations(tmp_path):
    x = _raw_data()
    cfg = TrainConfig(epochs=1, batch_size=100, progress=False, checkpoint_dir=str(tmp_path), checkpoint_every=20)
    res = train_sae(SAE(16, 32, "topk", k=4, seed=0), x, cfg)
    last = SAE.load(tmp_path / "step_0000020")
    assert last.metadata["folded_input_scale"] and last.metadata["checkpoint_step"] == 20
    # the last checkpoint is the final model, so both read raw x identically
    assert torch.allclose(last(x[:64]), res.sae(x[:64]), atol=1e-5)


@pytest.mark.parametrize("field,value,error,match", [
    ("lr", "1e-3", TypeError, "lr must be a number, got str"),
    ("lr", float("inf"), ValueError, "lr must be finite"),
    ("batch_size", True, TypeError, "batch_size must be an int, got bool"),
    ("batch_size", 2.5, TypeError, "batch_size must be an int, got float"),
    ("normalize_input", "False", TypeError, "normalize_input must be True or False"),
    ("unit_norm_decoder", 0, TypeError, "unit_norm_decoder must be True or False"),
    ("beta2", 1.0, ValueError, r"beta2 must be in \[0, 1\)"),
    ("epochs", float("inf"), ValueError, "epochs must be in"),
    ("auxk_k", 2.5, TypeError, "auxk_k must be an int"),
    ("seed", -1, ValueError, "seed must be in"),
])
def test_wrong_types_are_named(field, value, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**{field: value})
