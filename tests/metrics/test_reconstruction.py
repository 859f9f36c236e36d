import pytest
import torch

from saelib.metrics.reconstruction import evaluate, fvu, l0
from saelib.sae import SAE


def test_fvu_known_answers():
    x = torch.randn(100, 8) * 3 + 1
    assert fvu(x, x) == 0.0
    assert fvu(x, x.mean(0).expand_as(x)) == pytest.approx(1.0)


def test_l0_counts_nonzeros():
    assert l0(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 5.0]])) == 1.5


def test_evaluate_topk_l0_and_dead():
    sae = SAE(8, 32, "topk", k=4, seed=0)
    with torch.no_grad():
        sae.b_enc.fill_(10.0)
        sae.b_enc[:8] = -1e4  # never fire
    m = evaluate(sae, torch.randn(500, 8), batch_size=64)
    assert m["l0"] == 4.0
    assert m["dead_frac"] >= 8 / 32 and m["window_tokens"] == 500
    assert m["densities"].shape == (32,) and m["densities"].sum().item() == pytest.approx(4.0)


class _Halving(torch.nn.Module):
    """Codes = x; reconstruction = mean + 0.5 (x - mean): FVU 0.25 and best rescale gamma = 2, exactly."""

    def __init__(self, mean):
        super().__init__()
        self.mean, self.d_sae = mean, len(mean)

    def encode(self, x):
        return x

    def decode(self, f):
        return self.mean + 0.5 * (f - self.mean)


def test_evaluate_known_answers_shrinkage_and_fvu():
    x = torch.randn(400, 6, dtype=torch.float64).float() * 2 + 3
    ev = evaluate(_Halving(x.mean(0)), x, batch_size=64)
    assert ev.fvu == pytest.approx(0.25, rel=1e-5) and ev.gamma == pytest.approx(2.0, rel=1e-5)
    assert ev.mse == pytest.approx(((x - x.mean(0)) * 0.5).pow(2).mean().item(), rel=1e-5)
    assert ev.l0 == 6 and ev["fvu"] == ev.fvu and ev.per_sequence is None


def test_evaluate_per_sequence_sums_reassemble_the_totals():
    from saelib.data.harvest import Activations
    torch.manual_seed(0)
    resid, keep = torch.randn(5, 7, 8), torch.rand(5, 7) > 0.2
    keep[:, 0] = False
    acts = Activations(resid, torch.zeros(5, 7, dtype=torch.long), keep)
    sae = SAE(8, 16, "topk", k=3, seed=0)
    ev = evaluate(sae, acts, batch_size=4)
    ps = ev.per_sequence
    assert ps.sse.shape == (5,) and ps.n_tokens.tolist() == keep.sum(1).tolist()
    assert ps.sse.sum() / ps.var.sum() == pytest.approx(ev.fvu, rel=1e-9)
    assert ps.active.sum() / ps.n_tokens.sum() == pytest.approx(ev.l0) and ev.l0 == 3.0
    assert ev.fvu == pytest.approx(evaluate(sae, acts.acts).fvu, rel=1e-6)   # same numbers from a bare tensor
    with pytest.raises(ValueError, match="no splice"):
        ps.delta_lm


def test_evaluate_batch_rule_keeps_the_batch_average_and_refuses_other_sparsifiers():
    x = torch.randn(512, 8)
    sae = SAE(8, 32, "batchtopk", k=4, seed=0)
    ev = evaluate(sae, x, batch_rule=True, batch_size=128)
    assert ev.l0 == pytest.approx(4.0) and ev.l0_per_token.shape == (512,)
    with pytest.raises(ValueError, match="batch_rule=True needs"):
        evaluate(SAE(8, 32, "relu", seed=0), x, batch_rule=True)


def test_evaluate_applies_the_batch_rule_inside_the_splice_too():
    class Recorder:
        """A stand-in splice that records which rule the SAE used when spliced."""
        keep = torch.ones(1, dtype=torch.bool)

        def evaluate(self, sae):
            self.forced = sae.sparsifier._force_batch_rule
            return {"delta_lm_loss": 0.0, "ce_recovered": 1.0}

    sae = SAE(8, 32, "batchtopk", k=4, seed=0)
    rec = Recorder()
    evaluate(sae.eval(), torch.randn(64, 8), rec, batch_rule=True)
    assert rec.forced
    evaluate(sae.eval(), torch.randn(64, 8), rec, batch_rule=False)
    assert not rec.forced
