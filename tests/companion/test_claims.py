import json

import pytest

from saelib.companion.claims import ClaimsTable, decide
from saelib.metrics.uncertainty import Interval
from saelib.utils import figures_dir


def test_claims_verdicts_come_from_the_intervals():
    t = ClaimsTable("zz_test", "quick", 0)
    for name, lo in (("a", 2.0), ("b", 0.5), ("c", -1.0)):
        t.add_claim(name, "x", Interval(lo + 0.5, lo, lo + 0.6 if lo < 0 else lo + 1, 3, "t"), 1.0, "greater", "seeds", 3)
    assert [c.verdict for c in t.claims] == ["reproduced", "partly", "not reproduced"]
    assert t.n_reproduced() == 1
    assert t.verdicts().splitlines()[-1] == "1/3 claims reproduced (quick preset)"
    doc = json.loads(t.save())
    assert doc["claims"][1]["verdict"] == "partly"
    assert json.loads((figures_dir("zz_test") / "claims.json").read_text()) == doc


@pytest.mark.parametrize("lo,hi,verdict", [
    (0.06, 0.2, "reproduced"),        # lo >= m
    (0.05, 0.2, "reproduced"),        # lo == m
    (0.01, 0.2, "partly"),            # 0 < lo < m
    (-0.1, 0.04, "not reproduced"),   # lo <= 0, hi < m
    (-0.3, -0.1, "not reproduced"),   # the opposite effect
    (-0.1, 0.2, "inconclusive"),      # straddles the margin
    (0.0, 0.05, "inconclusive"),      # lo <= 0 and hi >= m
])
def test_effect_verdicts(lo, hi, verdict):
    assert decide(lo, hi, margin=0.05) == verdict


@pytest.mark.parametrize("lo,hi,verdict", [(-0.04, 0.09, "reproduced"), (0.11, 0.3, "not reproduced"),
                                           (-0.5, -0.2, "not reproduced"), (0.05, 0.2, "inconclusive")])
def test_equivalence_verdicts(lo, hi, verdict):
    assert decide(lo, hi, margin=0.1, kind="equivalence") == verdict


def test_no_uncertainty_is_at_most_partly_and_a_failed_precondition_is_inconclusive():
    assert decide(0.5, 0.5, 0.05, uncertainty="none") == "partly"
    assert decide(-0.5, -0.5, 0.05, uncertainty="none") == "not reproduced"
    assert decide(0.5, 0.9, 0.05, precondition=False) == "inconclusive"
    with pytest.raises(ValueError, match="lo <= hi"):
        decide(0.3, 0.1, 0.05)
    with pytest.raises(ValueError, match="margin"):
        decide(0.1, 0.3, -1.0)


def test_add_claim_orients_the_interval_and_saves_the_model_fields():
    t = ClaimsTable("zz_test", "quick", 0)
    # FVU(method) - FVU(baseline) = -0.04 [-0.06, -0.02]; the paper says "lower", margin 0.01
    iv = Interval(-0.04, -0.06, -0.02, 3, "paired t over 3 seeds")
    assert t.add_claim("method has lower FVU", "FVU(method) - FVU(base)", iv, 0.01, "less", "seeds", 3) == "reproduced"
    assert t.add_claim("method has higher FVU", "FVU(method) - FVU(base)", iv, 0.01, "greater", "seeds", 3) \
        == "not reproduced"
    assert t.add_claim("fewer dead latents", "dead(base) - dead(method)", Interval(0, 0, 0, 3, "t"), 0.01, "greater",
                       "seeds", 3, precondition=(False, "the baseline has no dead latents")) == "inconclusive"
    t.add_check("sparse path equals dense", True, "max |diff| 0")
    assert t.tally() == {"reproduced": 1, "partly": 0, "not reproduced": 1, "inconclusive": 1}
    lines = t.verdicts().splitlines()
    assert lines[0] == "[    reproduced] method has lower FVU  (estimate -0.04)"
    assert lines[-2] == "[  check passed] sparse path equals dense"
    assert lines[-1] == "1/3 claims reproduced (quick preset); 1 inconclusive; checks 1/1 passed"
    doc = json.loads(t.save())
    row = doc["claims"][0]
    assert row["interval"] == [-0.06, -0.02] and row["margin"] == 0.01 and row["n_seeds"] == 3
    assert row["uncertainty"] == "seeds" and row["kind"] == "claim" and row["direction"] == "less"
    assert doc["claims"][2]["precondition"] == "failed: the baseline has no dead latents"
    assert doc["checks"] == [{"check": "sparse path equals dense", "measured": "max |diff| 0", "passed": True,
                              "kind": "check"}]


def test_a_failed_precondition_needs_no_interval_and_saves_none(tmp_path, monkeypatch):
    import json
    import math

    from saelib.companion.claims import ClaimsTable, decide
    from saelib.metrics.uncertainty import Interval
    monkeypatch.setenv("SAELIB_FIGURES", str(tmp_path))
    assert decide(math.nan, math.nan, 0.01, precondition=False) == "inconclusive"
    t = ClaimsTable("99_test", "quick", 0)
    v = t.add_claim("A beats B at matched L0", "FVU(B) - FVU(A)", Interval(math.nan, math.nan, math.nan, 1, "-"),
                    0.01, "greater", "seeds", 3, precondition=(False, "L0 target outside the sweep"))
    assert v == "inconclusive"
    row = json.loads(t.save())["claims"][0]
    assert row["estimate"] is None and row["interval"] == [None, None] and "outside" in row["precondition"]


def test_weakest_setting_scores_the_claim_on_its_weakest_setting():
    from saelib.companion.claims import NO_SETTING, weakest_setting
    from saelib.metrics.uncertainty import Interval
    iv = lambda lo, hi: Interval((lo + hi) / 2, lo, hi, 3, "t")
    ok, straddles, fails = iv(2.0, 3.0), iv(-5.0, 3.0), iv(-1.0, 0.5)
    # A clearly failing setting decides even when another setting has a lower lower bound.
    assert weakest_setting({"a": ok, "b": straddles, "c": fails}, margin=1.0) == ("c", fails)
    assert weakest_setting({"a": ok, "b": straddles}, margin=1.0) == ("b", straddles)
    # Ties in verdict: the lowest lower bound in the claimed direction.
    assert weakest_setting({"a": iv(1.5, 2.0), "b": iv(1.2, 9.0)}, margin=1.0)[0] == "b"
    assert weakest_setting({"a": iv(-2.0, -1.5), "b": iv(-9.0, -1.2)}, margin=1.0, direction="less")[0] == "b"
    # Equivalence: the bound farthest from 0 among equal verdicts.
    assert weakest_setting({"a": iv(-0.2, 0.1), "b": iv(-0.1, 0.5)}, margin=1.0, kind="equivalence")[0] == "b"
    # A setting without an interval is inconclusive; a setting that clearly fails still decides.
    missing = iv(float("nan"), float("nan"))
    assert weakest_setting({"a": ok, "b": missing}, margin=1.0)[0] == "b"
    assert weakest_setting({"a": fails, "b": missing}, margin=1.0)[0] == "a"
    assert weakest_setting({}, margin=1.0) == (None, NO_SETTING)


def test_saved_claims_say_which_rule_scored_them(tmp_path, monkeypatch):
    """``test`` records add_claim's ``kind``, so a reader of claims.json can re-apply decide (docs/uncertainty.md)."""
    monkeypatch.setenv("SAELIB_FIGURES", str(tmp_path))
    t = ClaimsTable("99_test", "quick", 0)
    iv = Interval(0.02, -0.03, 0.05, 3, "t")
    assert t.add_claim("A is comparable to B", "x", iv, 0.1, "greater", "seeds", 3, kind="equivalence") == "reproduced"
    assert t.add_claim("A beats B", "x", iv, 0.1, "greater", "seeds", 3) == "not reproduced"
    rows = json.loads(t.save())["claims"]
    assert [r["test"] for r in rows] == ["equivalence", "effect"]
    assert all(decide(*r["interval"], r["margin"], r["test"], r["uncertainty"]) == r["verdict"] for r in rows)
