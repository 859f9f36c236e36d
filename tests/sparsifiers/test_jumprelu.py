"""JumpReLU (saelib.sparsifiers.jumprelu): forward and STE gradients; positivity; the (L0/T - 1)^2 penalty
variant; checkpoint round trips."""
import pytest
import torch

from saelib.sae import SAE
from saelib.sparsifiers.jumprelu import JumpReLU
from saelib.train import TrainConfig, train_sae


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


def test_jumprelu_forward_and_ste_gradients():
    s = JumpReLU(n_latents=3, init_threshold=1.0, bandwidth=0.2)
    z = torch.tensor([[0.5, 1.05, 2.0]], requires_grad=True)
    f = s(z, torch.ones(3))
    assert f[0].tolist() == pytest.approx([0.0, 1.05, 2.0])
    f.sum().backward()
    assert z.grad.tolist() == [[0.0, 1.0, 1.0]]  # exact gradient H(z - theta)
    # only latent 1 lies within eps/2 of theta: d/dtheta = -(theta/eps) K(.) = -5
    assert s.threshold.grad.tolist() == pytest.approx([0.0, -5.0, 0.0])
    s.threshold.grad = None
    z2 = z.detach().requires_grad_(True)
    s.penalty(z2, None, torch.ones(3)).backward()
    assert z2.grad is None and s.threshold.grad.tolist() == pytest.approx([0.0, -5.0, 0.0])


def test_jumprelu_round_trips_through_checkpoint(tmp_path):
    sae = SAE(4, 6, "jumprelu", init_threshold=0.3)
    with torch.no_grad():
        sae.sparsifier.threshold.copy_(torch.arange(6.0))
    sae.save(tmp_path / "j")
    back = SAE.load(tmp_path / "j")
    assert torch.equal(back.sparsifier.threshold, torch.arange(6.0))
    from safetensors.torch import load_file
    assert "threshold" in load_file(str(tmp_path / "j" / "sae_weights.safetensors"))
