"""The claims table: each paper claim, the number measured here, and a verdict computed from it.

Verdicts are never typed in: ``check`` takes the boolean tests that decide them.
``show()`` displays the full table (numbers included); ``verdicts()`` prints only the
claim and its verdict, the stable part that nbval compares on every test run.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import pandas as pd

from ..utils import atomic_path, figures_dir

REPRODUCED, PARTLY, NOT_REPRODUCED = "reproduced", "partly", "not reproduced"


@dataclass
class Claim:
    claim: str
    paper: str
    measured: str
    verdict: str


class ClaimsTable:
    """Collects claims for one notebook run."""

    def __init__(self, notebook: str, preset: str, seed: int) -> None:
        self.notebook, self.preset, self.seed = notebook, preset, seed
        self.claims: list[Claim] = []

    def check(self, claim: str, measured: str, reproduced: bool, partly: bool = False, paper: str = "") -> str:
        """Record a claim; verdict = reproduced if ``reproduced``, else partly if ``partly``, else not reproduced."""
        verdict = REPRODUCED if reproduced else PARTLY if partly else NOT_REPRODUCED
        self.claims.append(Claim(claim, paper, measured, verdict))
        return verdict

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.claims], columns=["claim", "paper", "measured", "verdict"])

    def n_reproduced(self) -> int:
        return sum(c.verdict == REPRODUCED for c in self.claims)

    def show(self):
        """The full table as a styled DataFrame (renders as HTML in Jupyter)."""
        return self.frame().style.hide(axis="index").set_properties(**{"text-align": "left"})

    def verdicts(self) -> str:
        """Stable plain-text lines: verdict and claim; plus the tally."""
        lines = [f"[{c.verdict:>14}] {c.claim}" for c in self.claims]
        lines.append(f"{self.n_reproduced()}/{len(self.claims)} claims reproduced ({self.preset} preset)")
        return "\n".join(lines)

    def save(self) -> str:
        """Write ``figures/<notebook>/claims.json`` (atomically) and return it as text."""
        doc = {"notebook": self.notebook, "preset": self.preset, "seed": self.seed,
               "claims": [asdict(c) for c in self.claims]}
        text = json.dumps(doc, indent=2)
        with atomic_path(figures_dir(self.notebook) / "claims.json") as tmp:
            tmp.write_text(text)
        return text
