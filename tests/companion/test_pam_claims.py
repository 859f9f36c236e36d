import numpy as np
import pandas as pd

from saelib.companion.claims import ClaimsTable
from saelib.companion.pam_claims import add_pam_claims
from saelib.papers.pam import METHODS


def _study(pam_factor_low: float, pam_factor_high: float, pam_epochs: int, blow_up_at: float | None = None):
    """A fake data-fraction study (N = 1000 x fraction): PAM's MSE is a fixed factor of Adam's (lower at low
    data; 1000x worse at ``blow_up_at``), and PAM reaches the target after ``pam_epochs`` epochs while both
    Adam variants need 10."""
    rng = np.random.default_rng(0)
    rows, conv = [], {}
    for act in ("topk", "relu"):
        for seed in range(3):
            for f in (0.01, 0.1, 0.5, 1.0):
                adam = 1.0 + 0.01 * rng.standard_normal()
                factor = pam_factor_low if f <= 0.1 else pam_factor_high
                factor *= 1000 if f == blow_up_at else 1
                for m in METHODS:
                    rows.append(dict(activation=act, fraction=f, seed=seed, method=m, n_train=round(1000 * f),
                                     test_mse=adam * factor if m == "pam" else adam))
            for m in METHODS:
                reach = pam_epochs if m == "pam" else 10
                conv[act, m, seed] = pd.DataFrame({"epoch": np.arange(1, 13),
                                                   "test_mse": [2.0 if e < reach else 1.0 for e in range(1, 13)]})
    return pd.DataFrame(rows), conv


def test_pam_claims_reproduced_when_pam_clearly_wins():
    frac, conv = _study(0.5, 0.9, pam_epochs=3)
    claims = ClaimsTable("test", "quick", 0)
    add_pam_claims(claims, frac, conv, ["topk", "relu"], [0, 1, 2], data="toy", n_latents=5)
    assert [c.verdict for c in claims.claims] == ["reproduced"] * 4
    assert all("toy" in c.claim for c in claims.claims)


def test_pam_claims_not_reproduced_when_pam_loses():
    frac, conv = _study(1.2, 1.1, pam_epochs=12)
    claims = ClaimsTable("test", "quick", 0)
    add_pam_claims(claims, frac, conv, ["topk", "relu"], [0, 1, 2], data="toy", n_latents=5)
    verdicts = [c.verdict for c in claims.claims]
    assert verdicts[:2] == ["not reproduced"] * 2 and verdicts[3] == "not reproduced"


def test_pam_claims_score_only_fractions_above_the_interpolation_threshold():
    """With m = 50 latents only N >= 100 (fractions 10%, 50%, 100%) is scored: a blow-up at 1% (N = 10) does not
    count; with m = 300 no fraction <= 10% is scored, so the low-data claim is inconclusive."""
    frac, conv = _study(0.5, 0.9, pam_epochs=3, blow_up_at=0.01)
    claims = ClaimsTable("test", "quick", 0)
    add_pam_claims(claims, frac, conv, ["topk", "relu"], [0, 1, 2], data="toy", n_latents=50)
    assert [c.verdict for c in claims.claims] == ["reproduced"] * 4
    assert abs(claims.claims[0].estimate - 100 * np.log(1 / 0.9)) < 2  # the log-ratio at the weakest (high-data) setting
    claims = ClaimsTable("test", "quick", 0)
    add_pam_claims(claims, frac, conv, ["topk", "relu"], [0, 1, 2], data="toy", n_latents=300)
    low = claims.claims[2]
    assert low.verdict == "inconclusive" and "interpolation threshold" in low.precondition
    assert claims.claims[0].verdict == "reproduced"  # 100% (N = 1000) is still scored


def test_pam_epochs_count_a_never_reached_target_as_one_past_the_last_epoch():
    frac, conv = _study(0.5, 0.9, pam_epochs=3)
    for key, hist in conv.items():
        if key[1] != "pam":  # the baselines end worse than PAM and never reach 1.05 x PAM's final MSE
            conv[key] = hist.assign(test_mse=hist["test_mse"] + 0.5)
    claims = ClaimsTable("test", "quick", 0)
    add_pam_claims(claims, frac, conv, ["topk", "relu"], [0, 1, 2], data="toy", n_latents=5)
    epochs = claims.claims[3]
    assert epochs.estimate == 13 - 3 and epochs.verdict == "reproduced"
