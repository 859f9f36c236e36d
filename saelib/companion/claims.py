"""The claims table: each paper claim, the number measured here, and a verdict computed from it.

The verdict model (``docs/uncertainty.md``; :func:`decide`). A claim states beforehand its statistic,
its direction, a decision margin m >= 0 and where its uncertainty comes from. With [lo, hi] the
interval of the effect *in the claimed direction*:

* ``reproduced`` if lo >= m; ``partly`` if 0 < lo < m; ``not reproduced`` if lo <= 0 and hi < m;
  ``inconclusive`` if lo <= 0 and hi >= m (the interval straddles the margin), or when a stated
  precondition fails (e.g. "fewer dead latents" against a baseline that has none).
* Equivalence claims ("comparable", "within 10%"): ``reproduced`` if the whole interval lies inside
  [-m, m], ``not reproduced`` if it lies wholly outside, ``inconclusive`` otherwise.
* A claim without uncertainty (``uncertainty="none"``) is at most ``partly``.
* A claim "at every setting" (every k, width, data fraction) is scored on its weakest setting
  (:func:`weakest_setting`): the claim holds only as strongly as the setting where it holds least.

Checks (identities, gates, a metric validated on a toy) are a separate table (``add_check``): shown,
saved and compared by nbval, never counted as reproductions.

Verdicts are never typed in. ``show()`` displays the full tables (numbers and intervals);
``verdicts()`` prints only verdicts and rounded estimates, the stable part nbval compares.
"""
from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

import pandas as pd

from ..metrics.uncertainty import Interval
from ..utils import atomic_path, check_choice, check_range, figures_dir

REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "partly", "not reproduced", "inconclusive"
Verdict = Literal["reproduced", "partly", "not reproduced", "inconclusive"]
Direction = Literal["greater", "less"]
"""``"greater"``: the claim is that the statistic is above 0 (e.g. baseline FVU - method FVU); ``"less"``: below 0."""
ClaimKind = Literal["effect", "equivalence"]
Uncertainty = Literal["seeds", "bootstrap", "seeds+bootstrap", "none"]


def decide(lo: float, hi: float, margin: float, kind: ClaimKind = "effect", uncertainty: Uncertainty = "seeds",
           precondition: bool = True) -> Verdict:
    """The verdict for an effect whose interval *in the claimed direction* is [lo, hi] (module docstring)."""
    check_choice("kind", kind, get_args(ClaimKind))
    check_choice("uncertainty", uncertainty, get_args(Uncertainty))
    check_range("margin", margin, 0)
    if not precondition:  # before the interval check: a failed precondition may leave no interval at all
        return INCONCLUSIVE
    if math.isnan(lo) or math.isnan(hi) or lo > hi:
        raise ValueError(f"interval must satisfy lo <= hi (no NaN), got [{lo}, {hi}]")
    if kind == "equivalence":
        verdict = (REPRODUCED if -margin <= lo and hi <= margin else
                   NOT_REPRODUCED if hi < -margin or lo > margin else INCONCLUSIVE)
    else:
        verdict = (REPRODUCED if lo >= margin else PARTLY if lo > 0 else
                   NOT_REPRODUCED if hi < margin else INCONCLUSIVE)
    if uncertainty == "none" and verdict == REPRODUCED:
        return PARTLY
    return verdict


_STRENGTH = {NOT_REPRODUCED: 0, INCONCLUSIVE: 1, PARTLY: 2, REPRODUCED: 3}
NO_SETTING = Interval(math.nan, math.nan, math.nan, 0, "no compared setting")


def weakest_setting(intervals: Mapping[Hashable, Interval], margin: float, kind: ClaimKind = "effect",
                    direction: Direction = "greater") -> tuple[Hashable | None, Interval]:
    """The aggregate of a claim "at every setting": the (setting, interval) with the weakest verdict.

    Each setting is scored alone by :func:`decide`; the weakest verdict decides (not reproduced <
    inconclusive < partly < reproduced), so one setting that is clearly not reproduced makes the claim
    not reproduced. Ties go to the lowest lower bound in the claimed direction (effect claims) or the
    bound farthest from 0 (equivalence). A setting without an interval (NaN: not measured, e.g. not
    bracketed) counts as inconclusive and goes first among those. With no setting, returns
    ``(None, NO_SETTING)``. In both cases pass the failed precondition to ``add_claim``.
    """
    check_choice("direction", direction, get_args(Direction))
    if not intervals:
        return None, NO_SETTING

    def strength(item):
        iv = item[1]
        lo, hi = (iv.lo, iv.hi) if direction == "greater" else (-iv.hi, -iv.lo)
        if math.isnan(lo) or math.isnan(hi):
            return _STRENGTH[INCONCLUSIVE], -math.inf
        tie = lo if kind == "effect" else -max(abs(lo), abs(hi))
        return _STRENGTH[decide(lo, hi, margin, kind)], tie

    return min(intervals.items(), key=strength)


@dataclass
class Claim:
    claim: str
    paper: str
    measured: str
    verdict: str
    kind: str = "claim"
    statistic: str = ""
    estimate: float | None = None
    interval: list[float] | None = None
    margin: float | None = None
    direction: str | None = None
    n_seeds: int | None = None
    uncertainty: str | None = None
    precondition: str | None = None
    test: str = "effect"
    """Which rule of :func:`decide` scored it: ``"effect"`` or ``"equivalence"`` (``add_claim``'s ``kind``)."""


@dataclass
class Check:
    check: str
    measured: str
    passed: bool
    kind: str = field(default="check")


class ClaimsTable:
    """Collects claims for one notebook run."""

    def __init__(self, notebook: str, preset: str, seed: int) -> None:
        self.notebook, self.preset, self.seed = notebook, preset, seed
        self.claims: list[Claim] = []
        self.checks: list[Check] = []

    def add_claim(self, claim: str, statistic: str, interval: Interval, margin: float, direction: Direction,
                  uncertainty: Uncertainty, n_seeds: int, measured: str = "", paper: str = "",
                  kind: ClaimKind = "effect", precondition: tuple[bool, str] | None = None) -> Verdict:
        """Record a claim and compute its verdict from ``interval`` (the statistic's estimate and CI).

        ``statistic`` says what was measured (e.g. "FVU(TopK) - FVU(ReLU-L1) at L0 32, paired over
        seeds"); ``direction`` says which sign the paper claims; ``precondition`` is (holds, reason),
        e.g. ``(baseline_dead > 0, "the baseline has dead latents")``; when it fails the verdict is
        inconclusive and the reason is recorded.
        """
        check_choice("direction", direction, get_args(Direction))
        lo, hi = (interval.lo, interval.hi) if direction == "greater" else (-interval.hi, -interval.lo)
        holds, reason = precondition if precondition is not None else (True, None)
        verdict = decide(lo, hi, margin, kind, uncertainty, bool(holds))
        def finite(v: float) -> float | None:
            return None if math.isnan(v) else float(v)
        self.claims.append(Claim(claim, paper, measured, verdict, "claim", statistic, finite(interval.estimate),
                                 [finite(interval.lo), finite(interval.hi)], margin, direction, n_seeds, uncertainty,
                                 None if holds else f"failed: {reason}", kind))
        return verdict

    def add_check(self, check: str, passed: bool, measured: str = "") -> bool:
        """Record a sanity check (identity, gate, toy validation): shown and saved, never a reproduction."""
        self.checks.append(Check(check, measured, bool(passed)))
        return bool(passed)

    def frame(self) -> pd.DataFrame:
        cols = ["claim", "paper", "statistic", "measured", "estimate", "interval", "margin", "uncertainty",
                "n_seeds", "verdict"]
        return pd.DataFrame([asdict(c) for c in self.claims], columns=cols)

    def checks_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.checks], columns=["check", "measured", "passed"])

    def n_reproduced(self) -> int:
        return sum(c.verdict == REPRODUCED for c in self.claims)

    def tally(self) -> dict[str, int]:
        """Claims per verdict (checks are not counted)."""
        return {v: sum(c.verdict == v for c in self.claims) for v in get_args(Verdict)}

    def show(self):
        """The full table as a styled DataFrame (renders as HTML in Jupyter)."""
        return self.frame().style.hide(axis="index").set_properties(**{"text-align": "left"})

    def verdicts(self, digits: int = 2) -> str:
        """Stable plain-text lines: verdict, claim and its estimate rounded to ``digits``; checks; the tally."""
        lines = [f"[{c.verdict:>14}] {c.claim}" + ("" if c.estimate is None else f"  (estimate {c.estimate:.{digits}f})")
                 for c in self.claims]
        lines += [f"[{'check passed' if c.passed else 'CHECK FAILED':>14}] {c.check}" for c in self.checks]
        line = f"{self.n_reproduced()}/{len(self.claims)} claims reproduced ({self.preset} preset)"
        n_inc = self.tally()[INCONCLUSIVE]
        if n_inc:
            line += f"; {n_inc} inconclusive"
        if self.checks:
            line += f"; checks {sum(c.passed for c in self.checks)}/{len(self.checks)} passed"
        lines.append(line)
        return "\n".join(lines)

    def save(self) -> str:
        """Write ``figures/<notebook>/claims.json`` (atomically) and return it as text."""
        doc = {"notebook": self.notebook, "preset": self.preset, "seed": self.seed,
               "claims": [asdict(c) for c in self.claims]}
        if self.checks:
            doc["checks"] = [asdict(c) for c in self.checks]
        text = json.dumps(doc, indent=2)
        with atomic_path(figures_dir(self.notebook) / "claims.json") as tmp:
            tmp.write_text(text)
        return text
