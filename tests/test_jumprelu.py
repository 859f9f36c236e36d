"""JumpReLU: the STE theta-gradient against finite differences of the expected loss; positivity; the
(L0/T - 1)^2 penalty variant."""
import pytest
import torch

from saelib.sae import SAE
from saelib.sparsity import JumpReLU
from saelib.ste import closed_form_grad, expected_loss, fd_theta_grad, ste_theta_grad
from saelib.train import TrainConfig, train_sae

THETAS = torch.tensor([0.5, 1.0, 1.5])
# Tolerance: the batch-averaged STE is a kernel density estimate of d E[L] / d theta. Here its
# bias is O(bandwidth) (~1.3% at eps = 0.05, because the loss jumps at z = theta) and its Monte
# Carlo standard error at 4M samples is ~1%; over 5 seeds the worst error measured was 2.6%.
REL_TOL = 0.05


def test_quadrature_finite_differences_match_the_closed_form():
    assert torch.allclose(fd_theta_grad(THETAS), closed_form_grad(THETAS), rtol=1e-6)


@pytest.mark.parametrize("l0_target", [None, 0.5])
def test_batch_averaged_ste_gradient_matches_finite_differences(l0_target):
    fd = fd_theta_grad(THETAS, l0_target=l0_target)
    ste = ste_theta_grad(THETAS, bandwidth=0.05, n_samples=4_000_000, l0_target=l0_target, seed=0)
    assert torch.allclose(ste, fd, rtol=REL_TOL, atol=0)


def test_single_sample_loss_is_flat_in_theta_but_the_expectation_is_not():
    """Why an STE is needed: for one sample the loss is piecewise constant in theta."""
    s = JumpReLU(1, init_threshold=1.0, bandwidth=0.1)
    z = torch.tensor([[0.3]])
    before = ((0.2 * z - s(z, torch.ones(1))) ** 2).sum()
    with torch.no_grad():
        s.threshold.add_(0.01)
    assert ((0.2 * z - s(z, torch.ones(1))) ** 2).sum() == before
    assert expected_loss(THETAS + 0.01) != expected_loss(THETAS)


def test_l0_target_penalty_value_and_validation():
    s = JumpReLU(4, init_threshold=0.5, bandwidth=0.1, l0_target=2.0)
    pre = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])  # L0 = (3 + 1) / 2 = 2 -> penalty 0
    assert s.penalty(pre, None, torch.ones(4)).item() == 0.0
    assert s.penalty(2 * torch.ones(1, 4), None, torch.ones(4)).item() == pytest.approx((4 / 2 - 1) ** 2)
    assert JumpReLU(4).penalty(pre, None, torch.ones(4)).item() == 2.0
    with pytest.raises(ValueError, match="l0_target must be None or > 0"):
        JumpReLU(4, l0_target=0.0)


def test_threshold_is_projected_positive():
    s = JumpReLU(3, init_threshold=0.1)
    with torch.no_grad():
        s.threshold.copy_(torch.tensor([-1.0, 0.0, 0.2]))
    f = s(torch.tensor([[-0.5, 0.5, 0.1]]), torch.ones(3))
    assert s.threshold.tolist() == pytest.approx([JumpReLU.MIN_THRESHOLD, JumpReLU.MIN_THRESHOLD, 0.2])
    assert f.tolist() == [[0.0, 0.5, 0.0]]  # a negative pre-activation never passes


def test_training_with_a_strong_penalty_keeps_theta_positive_and_round_trips(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1200, 12, generator=g)
    sae = SAE(12, 24, "jumprelu", init_threshold=0.05, bandwidth=0.5, l0_target=3.0, seed=0)
    res = train_sae(sae, x, TrainConfig(epochs=2, batch_size=200, lr=5e-2, beta1=0.0, sparsity_coeff=1.0,
                                        auxk_coeff=0.0, progress=False))
    assert (res.sae.sparsifier.threshold > 0).all()  # projected after every step, the last one included
    back = SAE.load(res.sae.save(tmp_path / "j"))
    assert back.sparsifier.l0_target == 3.0
    assert torch.equal(back.encode(x[:10]), res.sae.encode(x[:10]))
