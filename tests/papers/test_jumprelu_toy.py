"""The JumpReLU toy (saelib.papers.jumprelu_toy): the STE theta-gradient against finite differences of the
expected loss."""
import pytest
import torch

from saelib.papers.jumprelu_toy import closed_form_grad, expected_loss, fd_theta_grad, ste_theta_grad
from saelib.sparsifiers.jumprelu import JumpReLU

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
