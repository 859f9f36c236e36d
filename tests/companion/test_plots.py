import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from saelib.companion.plots import plot_test_mse, save_figure  # noqa: E402


def test_save_figure_writes_png_atomically():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, "zz_test", "line")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in path.parent.glob(".*")] == []
    with pytest.raises(ValueError, match="plain file stem"):
        save_figure(fig, "zz_test", "a/b")


def test_plot_test_mse_one_panel_per_setting_seed_marked():
    import pandas as pd
    hist = lambda f: pd.DataFrame({"epoch": [0, 1, 2, 3], "test_mse": [9.0, f, f / 2, f / 4]})  # noqa: E731
    methods, seeds = ["a", "b"], [0, 1, 2]
    histories = {(n, m, s): hist(1.0 + s) for n in ("X", "Y") for m in methods for s in seeds}
    styles = {"a": dict(color="C0", marker="o", label="A"), "b": dict(color="C1", marker="s", label="B")}
    fig = plot_test_mse(histories, ["X", "Y"], methods, seeds, 0, styles, ylabel="mse", baseline=0.5)
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_title() == "X: test MSE vs epoch (seed 0 marked, 2 more seeds faint)"
    assert len(axes[0].lines) == 2 * 3 + 1 and axes[0].get_yscale() == "log" and axes[1].get_ylabel() == "mse"
    first = axes[0].lines[0]
    assert list(first.get_xdata()) == [1, 2, 3] and first.get_label() == "A"      # the pre-training row is left out
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["A", "B", "predict the mean (variance)"]
    plt.close(fig)
    for h in histories.values():
        h["train_mse"] = h["test_mse"] / 2
    fig = plot_test_mse(histories, ["X", "Y"], methods, seeds, 0, styles, ylabel="mse", train=True)
    dashed = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--" and len(ln.get_xdata())]
    assert len(dashed) == 2 and list(dashed[0].get_ydata()) == [0.5, 0.25, 0.125]  # seed 0's training MSE, per method
    assert "training MSE (seed 0, dashed)" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    plt.close(fig)


# ---- the committed claims on one scale (docs/uncertainty.md) ----------------------------------

import importlib.util  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402

from saelib.companion.claims import ClaimsTable, decide  # noqa: E402
from saelib.companion.plots import claim_test, oriented, plot_claim_intervals, scale_claims  # noqa: E402
from saelib.metrics.uncertainty import Interval  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _script():
    """scripts/uncertainty_figure.py as a module (registered first: its dataclass needs its module)."""
    import sys
    if "uncertainty_figure" not in sys.modules:
        spec = importlib.util.spec_from_file_location("uncertainty_figure", ROOT / "scripts" / "uncertainty_figure.py")
        sys.modules["uncertainty_figure"] = mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return sys.modules["uncertainty_figure"]


def _rescored(r, c, equivalence=()):
    """decide on the drawn (oriented, scaled) interval: margin 1 on a margin's scale, 0 where the margin is 0."""
    return decide(r.lo, r.hi, 0.0 if r.panel == "margin 0" else 1.0, claim_test(c, equivalence), c["uncertainty"])


def _synthetic(tmp_path, monkeypatch) -> list[dict]:
    """Claims written by ClaimsTable: "less" and "greater", equivalence, margin 0, a failed precondition, no interval."""
    monkeypatch.setenv("SAELIB_FIGURES", str(tmp_path))
    t = ClaimsTable("98_test", "quick", 0)
    iv = lambda est, lo, hi: Interval(est, lo, hi, 3, "t")  # noqa: E731
    t.add_claim("lower FVU", "FVU(A) - FVU(B)", iv(-0.3, -0.5, -0.2), 0.1, "less", "seeds", 3)           # reproduced
    t.add_claim("higher FVU", "FVU(A) - FVU(B)", iv(-0.3, -0.5, -0.2), 0.1, "greater", "seeds", 3)      # not reproduced
    t.add_claim("smaller but there", "x", iv(0.3, 0.1, 0.5), 1.0, "greater", "bootstrap", 1)            # partly
    t.add_claim("comparable", "x", iv(-0.1, -0.4, 0.2), 0.5, "less", "seeds", 3, kind="equivalence")    # reproduced
    t.add_claim("headroom", "10 - rise", iv(2.0, -1.0, 4.0), 0.0, "greater", "bootstrap", 1)            # inconclusive
    t.add_claim("gated", "x", iv(1.0, 0.5, 1.5), 0.1, "greater", "seeds", 3, precondition=(False, "no baseline"))
    t.add_claim("unmeasured", "x", iv(math.nan, math.nan, math.nan), 0.1, "greater", "seeds", 3,
                precondition=(False, "budget"))
    doc = json.loads(t.save())
    return [{**c, "notebook": doc["notebook"]} for c in doc["claims"]]


def test_oriented_flips_a_less_claim_to_the_interval_decide_saw(tmp_path, monkeypatch):
    claims = _synthetic(tmp_path, monkeypatch)
    assert claims[0]["interval"] == [-0.5, -0.2]                   # claims.json keeps the statistic's own sign
    assert oriented(claims[0]) == (0.3, 0.2, 0.5) and oriented(claims[1]) == (-0.3, -0.5, -0.2)
    assert oriented(claims[-1]) is None                            # no interval
    assert oriented({"interval": [1.0, 2.0], "estimate": None, "direction": "greater"}) == (1.5, 1.0, 2.0)


def test_every_drawn_synthetic_claim_gives_back_its_verdict_through_decide(tmp_path, monkeypatch):
    claims = _synthetic(tmp_path, monkeypatch)
    assert [c["verdict"] for c in claims[:5]] == ["reproduced", "not reproduced", "partly", "reproduced", "inconclusive"]
    drawn, left = scale_claims(claims)
    assert [r.panel for r in drawn] == ["effect", "effect", "effect", "equivalence", "margin 0"]
    assert {k: [c["claim"] for c in v] for k, v in left.items()} == {"failed precondition": ["gated", "unmeasured"]}
    assert drawn[0].lo == 2.0 and drawn[0].hi == 5.0               # (0.2, 0.5) / margin 0.1
    assert drawn[4].lo == -0.25 and drawn[4].hi == 1.0             # margin 0: scaled by the largest |bound|
    by_name = {c["claim"]: c for c in claims}
    assert all(_rescored(r, by_name[r.claim]) == r.verdict for r in drawn)


def test_legacy_claims_without_a_test_field_take_the_rule_from_the_given_set():
    c = {"notebook": "02_x", "claim": "comparable", "interval": [-0.2, 0.2], "estimate": 0.0, "margin": 0.5,
         "direction": "greater", "uncertainty": "seeds", "verdict": "reproduced", "precondition": None}
    assert claim_test(c) == "effect" and claim_test(c, {("02_x", "comparable")}) == "equivalence"
    assert claim_test({**c, "test": "effect"}, {("02_x", "comparable")}) == "effect"   # the stored field wins
    assert scale_claims([c], {("02_x", "comparable")})[0][0].panel == "equivalence"


def test_plot_claim_intervals_draws_one_row_per_scored_claim(tmp_path, monkeypatch):
    claims = _synthetic(tmp_path, monkeypatch)
    far = {**claims[2], "claim": "far", "interval": [-5000.0, 20.0], "estimate": 3.0}   # clipped at -1000 margins
    fig = plot_claim_intervals(claims + [far])
    effect, margin0, equiv = fig.axes
    assert [t.get_text() for t in effect.get_yticklabels()] == ["98 · lower FVU", "98 · higher FVU",
                                                                "98 · smaller but there", "98 · far"]
    assert len(margin0.get_yticklabels()) == 1 and len(equiv.get_yticklabels()) == 1
    assert len(effect.collections) == 4 and effect.get_xscale() == "symlog" and effect.get_xlim() == (-1000, 1000)
    assert "effect / margin" in effect.get_xlabel() and "[-1, 1]" in equiv.get_xlabel()
    assert {line.get_xdata()[0] for line in effect.lines if line.get_linestyle() in ("-", "--")} >= {0, 1}
    note = fig.texts[-1].get_text()
    assert "Drawn: 6 claims" in note and "2 with failed precondition" in note and "1 interval end(s)" in note
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["reproduced", "partly", "not reproduced",
                                                                  "inconclusive"]
    plt.close(fig)
    with pytest.raises(ValueError, match="no claim"):
        plot_claim_intervals(claims[-2:])


def test_every_committed_claim_gives_back_its_stored_verdict_through_decide():
    """The figure's orientation and scale are right: decide on what is drawn returns what the notebook stored."""
    s = _script()
    claims, equivalence = s.load_claims(), s.equivalence_in_sources()
    assert claims and equivalence                     # the committed notebooks make equivalence claims
    drawn, left = scale_claims(claims, equivalence)
    by_key = {(c["notebook"], c["claim"]): c for c in claims}
    assert len(by_key) == len(claims)
    mismatched = [r.claim for r in drawn if _rescored(r, by_key[r.notebook, r.claim], equivalence) != r.verdict]
    assert not mismatched, mismatched
    assert s.round_trip(claims, equivalence) == []
    assert all(c["verdict"] == "inconclusive" for c in left.get("failed precondition", []))
    assert len(drawn) + sum(map(len, left.values())) == len(claims)
    assert {r.notebook for r in drawn if r.panel == "equivalence"} <= {nb for nb, _ in equivalence}


def test_the_stored_per_seed_values_give_back_the_stored_intervals():
    s = _script()
    claims = s.load_claims()
    for ex in (s.steering_example(claims), s.width_example(claims)):
        s.check_example(ex)                           # raises when they do not
        assert len(ex.per_seed) == ex.claim["n_seeds"] >= 3 and len(s.one_seed_verdicts(ex)) == len(ex.per_seed)


def test_stored_table_parses_a_displayed_frame_and_refuses_ambiguity(tmp_path):
    s = _script()
    text = "       TopK  g-SAE\nseed              \n0     0.808  0.772\n1       NaN  0.452"
    cell = {"cell_type": "code", "source": ["med = f(x)\n"],
            "outputs": [{"output_type": "execute_result", "data": {"text/plain": [text]}}]}
    nb = tmp_path / "nb.ipynb"
    nb.write_text(json.dumps({"cells": [cell]}))
    t = s.stored_table(nb, "med = ")
    assert list(t.columns) == ["TopK", "g-SAE"] and t.index.name == "seed" and list(t.index) == [0, 1]
    assert t.loc[0, "g-SAE"] == 0.772 and math.isnan(t.loc[1, "TopK"])
    with pytest.raises(ValueError, match="0 code cells"):
        s.stored_table(nb, "nothing like this")
