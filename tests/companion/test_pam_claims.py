import numpy as np
import pandas as pd

from saelib.companion.claims import ClaimsTable
from saelib.companion.pam_claims import add_pam_claims
from saelib.papers.pam import METHODS


def _study(pam_factor_low: float, pam_factor_high: float, pam_epochs: int):
    """A fake data-fraction study: PAM's MSE is a fixed factor of Adam's (lower at low data), and PAM reaches
    the target after ``pam_epochs`` epochs while both Adam variants need 10."""
    rng = np.random.default_rng(0)
    rows, conv = [], {}
    for act in ("topk", "relu"):
        for seed in range(3):
            for f in (0.01, 0.1, 0.5, 1.0):
                adam = 1.0 + 0.01 * rng.standard_normal()
                factor = pam_factor_low if f <= 0.1 else pam_factor_high
                for m in METHODS:
                    rows.append(dict(activation=act, fraction=f, seed=seed, method=m,
                                     test_mse=adam * factor if m == "pam" else adam))
            for m in METHODS:
                reach = pam_epochs if m == "pam" else 10
                conv[act, m, seed] = pd.DataFrame({"epoch": np.arange(1, 13),
                                                   "test_mse": [2.0 if e < reach else 1.0 for e in range(1, 13)]})
    return pd.DataFrame(rows), conv


def test_pam_claims_reproduced_when_pam_clearly_wins():
    frac, conv = _study(0.5, 0.9, pam_epochs=3)
    claims = ClaimsTable("test", "quick", 0)
    add_pam_claims(claims, frac, conv, ["topk", "relu"], [0, 1, 2], data="toy")
    assert [c.verdict for c in claims.claims] == ["reproduced"] * 4
    assert all("toy" in c.claim for c in claims.claims)


def test_pam_claims_not_reproduced_when_pam_loses():
    frac, conv = _study(1.2, 1.1, pam_epochs=12)
    claims = ClaimsTable("test", "quick", 0)
    add_pam_claims(claims, frac, conv, ["topk", "relu"], [0, 1, 2], data="toy")
    verdicts = [c.verdict for c in claims.claims]
    assert verdicts[:2] == ["not reproduced"] * 2 and verdicts[3] == "not reproduced"
