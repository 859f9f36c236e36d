"""The figures of docs/uncertainty.md, from committed numbers only (no notebook is run):

* ``figures/uncertainty/claim_intervals.png``: every scored claim of every ``figures/*/claims.json``,
  its interval in units of its margin (:func:`saelib.companion.plots.plot_claim_intervals`);
* ``figures/uncertainty/one_seed.png``: two claims' per-seed values, read from the stored outputs of
  their notebooks, beside the interval over the seeds (:func:`saelib.companion.plots.plot_seed_values`).

    python scripts/uncertainty_figure.py            # writes both PNGs and the page's sentences with numbers

The page quotes no number by hand: the sentences with numbers sit between ``<!-- uncertainty:NAME:start -->``
and ``<!-- uncertainty:NAME:end -->`` in docs/uncertainty.md, and this script rewrites them (``run_all.sh``
runs it after every notebook run; tests/test_project.py checks that the page says what it would write).
"""
from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from saelib.companion.claims import decide  # noqa: E402
from saelib.companion.plots import claim_test, oriented, scale_claims  # noqa: E402
from saelib.metrics.uncertainty import paired_t_interval  # noqa: E402

DPI = 120
FOLDER = "uncertainty"
"""``figures/uncertainty/``: not a notebook's folder (the scoreboard and run_all read ``figures/[0-9][0-9]_*``)."""


def load_claims(figures: Path = ROOT / "figures") -> list[dict]:
    """Every claim of every ``figures/<notebook>/claims.json``, each with its ``notebook`` added."""
    out = []
    for path in sorted(figures.glob("[0-9][0-9]_*/claims.json")):
        doc = json.loads(path.read_text())
        out += [{**c, "notebook": doc["notebook"]} for c in doc["claims"]]
    return out


def equivalence_in_sources(notebooks: Path = ROOT / "notebooks") -> set[tuple[str, str]]:
    """(notebook, claim) of every ``add_claim(..., kind="equivalence")`` call in the notebooks' sources:
    which rule scored a claim, for claims.json written before claims carried their ``test`` field."""
    found = set()
    for py in sorted(notebooks.glob("[0-9][0-9]_*.py")):
        for node in ast.walk(ast.parse(py.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_claim"):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            if not (isinstance(kw.get("kind"), ast.Constant) and kw["kind"].value == "equivalence"):
                continue
            name = node.args[0] if node.args else kw.get("claim")
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                raise ValueError(f"{py.name}:{node.lineno}: an equivalence claim's name must be a plain string here")
            found.add((py.stem, name.value))
    return found


def stored_table(ipynb: Path, source_contains: str) -> pd.DataFrame:
    """The DataFrame a notebook cell displayed, parsed back from its stored plain-text output.

    The cell is the one code cell whose source contains ``source_contains``; columns are separated by
    two or more spaces (pandas' layout; a wrapped table is refused), numbers are as displayed (rounded).
    """
    cells = [c for c in json.loads(ipynb.read_text())["cells"]
             if c["cell_type"] == "code" and source_contains in "".join(c["source"])]
    if len(cells) != 1:
        raise ValueError(f"{ipynb.name}: {len(cells)} code cells contain {source_contains!r} (need exactly one)")
    texts = ["".join(o["data"]["text/plain"]) for o in cells[0].get("outputs", [])
             if o.get("output_type") == "execute_result" and "text/plain" in o.get("data", {})]
    if not texts:
        raise ValueError(f"{ipynb.name}: the cell with {source_contains!r} has no stored table")
    lines = [ln for ln in texts[-1].splitlines() if ln.strip()]
    split = lambda ln: re.split(r"\s{2,}", ln.strip())  # noqa: E731
    header = split(lines[0])
    if header[-1] == "\\":
        raise ValueError(f"{ipynb.name}: the stored table is wrapped; cannot parse it")
    body = lines[1:]
    index_name = None
    if body and len(split(body[0])) == 1:   # the index's name on a line of its own ("seed")
        index_name, body = split(body[0])[0], body[1:]
    rows = [split(ln) for ln in body]
    if any(len(r) != len(header) + 1 for r in rows):
        raise ValueError(f"{ipynb.name}: rows do not match the header {header}")
    frame = pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=header)
    frame.index = _numeric(frame.index.to_series()).values
    frame.index.name = index_name
    return frame.apply(_numeric)


def _numeric(col: pd.Series) -> pd.Series:
    """A column of displayed numbers as floats ("NaN" included); a text column (a family name) as it is."""
    try:
        return col.map(float)
    except ValueError:
        return col


@dataclass
class SeedExample:
    """One claim's per-seed differences (as the notebook displayed them) and its stored entry."""

    notebook: str
    claim: dict
    per_seed: dict[int, float]
    digits_scale: float   # the largest rounding error of one displayed per-seed difference
    xlabel: str
    title: str


def steering_example(claims: list[dict]) -> SeedExample:
    """05: median Δ log p of steered tokens per seed, g-SAE - TopK (the claim is their paired t-interval)."""
    t = stored_table(ROOT / "notebooks" / "05_gradient_sae.ipynb", "steering_effect(")
    d = {int(s): float(t.loc[s, "g-SAE"] - t.loc[s, "TopK"]) for s in t.index}
    c = _claim(claims, "05_gradient_sae", "g-SAE latents steer more effectively (qualitative)")
    return SeedExample("05_gradient_sae", c, d, 1e-3, "median Δ log p of own output tokens, g-SAE − TopK (nats)",
                       "05 · g-SAE latents steer more effectively")


def width_example(claims: list[dict], k: int = 32) -> SeedExample:
    """01: FVU(1x) - FVU(4x) of TopK at k per seed, in percent points (the claim's paired t-interval)."""
    t = stored_table(ROOT / "notebooks" / "01_llama_scope.ipynb", "frontier = pd.DataFrame")
    t = t[t["k"] == k]
    fvu = {w: t[t["family"] == f"TopK {w}"].set_index("seed")["FVU"] for w in ("1x", "4x")}
    d = {int(s): float(100 * (fvu["1x"][s] - fvu["4x"][s])) for s in fvu["1x"].index if s in fvu["4x"].index}
    c = _claim(claims, "01_llama_scope", "Wider beats narrower at equal L0 (FVU)")
    return SeedExample("01_llama_scope", c, d, 100 * 1e-3, f"FVU(1x) − FVU(4x), TopK k={k} (percent points)",
                       "01 · Wider beats narrower at equal L0 (FVU)")


def _claim(claims: list[dict], notebook: str, name: str) -> dict:
    hits = [c for c in claims if c["notebook"] == notebook and c["claim"] == name]
    if len(hits) != 1:
        raise ValueError(f"{notebook}: {len(hits)} claims named {name!r}")
    return hits[0]


def check_example(ex: SeedExample) -> None:
    """The displayed per-seed values give back the stored interval (up to their rounding), else raise."""
    d = np.array(list(ex.per_seed.values()))
    iv = paired_t_interval(d, np.zeros_like(d))
    est, lo, hi = oriented(ex.claim)
    tol = 5 * ex.digits_scale   # rounding moves the mean by <= digits_scale, the t half-width by a few more
    if len(d) != ex.claim["n_seeds"] or max(abs(iv.estimate - est), abs(iv.lo - lo), abs(iv.hi - hi)) > tol:
        raise ValueError(f"{ex.notebook}: per-seed values {ex.per_seed} give {iv.rounded()}, stored "
                         f"{est:.3f} [{lo:.3f}, {hi:.3f}] over {ex.claim['n_seeds']} seeds")


def one_seed_verdicts(ex: SeedExample) -> list[str]:
    """What ``decide`` says of each seed alone (a point, no uncertainty: at most partly)."""
    return [decide(v, v, ex.claim["margin"], uncertainty="none") for v in ex.per_seed.values()]


def page_sentences(claims: list[dict], equivalence: set[tuple[str, str]], examples: list[SeedExample]) -> list[str]:
    """The sentences of docs/uncertainty.md that carry numbers, written from the committed outputs."""
    drawn, left = scale_claims(claims, equivalence)
    n = {p: sum(r.panel == p for r in drawn) for p in ("effect", "margin 0", "equivalence")}
    failed, missing = left.get("failed precondition", []), left.get("no interval", [])
    bare = sum(oriented(c) is None for c in failed)
    out = [f"Of the {len(claims)} claims in the committed claims.json files, {len(drawn)} are drawn "
           f"({n['effect']} effect claims with a margin, {n['margin 0']} with margin 0, {n['equivalence']} "
           f"equivalence claims); {len(failed)} are left out because a stated precondition failed (inconclusive "
           f"by rule; {bare} of them have no interval at all)"
           + (f", and {len(missing)} for want of an interval." if missing else ".")]
    for ex in examples:
        alone = one_seed_verdicts(ex)
        each = (f"each of the {len(alone)} seeds alone reads {alone[0]}" if len(set(alone)) == 1 else
                f"the {len(alone)} seeds alone read " + ", ".join(alone[:-1]) + f" and {alone[-1]}")
        out.append(f"In {ex.notebook[:2]}'s claim \"{ex.claim['claim']}\", {each}; together they read "
                   f"{ex.claim['verdict']}.")
    return out


PAGE = ROOT / "docs" / "uncertainty.md"


def page_blocks(sentences: list[str]) -> dict[str, str]:
    """The page's marked blocks, by name: the per-seed examples ("one-seed") and the counts ("counts")."""
    return {"one-seed": "\n".join(sentences[1:]), "counts": sentences[0]}


def write_page(blocks: dict[str, str], page: Path = PAGE) -> bool:
    """Replace each ``<!-- uncertainty:NAME:start -->`` ... ``end`` block of ``page``; True if the text changed."""
    text = page.read_text()
    new = text
    for name, body in blocks.items():
        start, end = f"<!-- uncertainty:{name}:start -->", f"<!-- uncertainty:{name}:end -->"
        i, j = new.find(start), new.find(end)
        if i < 0 or j < i:
            raise ValueError(f"{page.name}: markers {start} ... {end} not found")
        new = new[: i + len(start)] + "\n" + body + "\n" + new[j:]
    if new != text:
        from saelib.utils import atomic_path
        with atomic_path(page) as tmp:
            tmp.write_text(new)
    return new != text


def round_trip(claims: list[dict], equivalence: set[tuple[str, str]]) -> list[str]:
    """Claims whose stored verdict ``decide`` does not give back from the oriented interval (should be none)."""
    bad = []
    for c in claims:
        iv = oriented(c)
        if iv is None or c.get("precondition"):
            continue
        v = decide(iv[1], iv[2], c["margin"], claim_test(c, equivalence), c["uncertainty"])
        if v != c["verdict"]:
            bad.append(f"{c['notebook']}: {c['claim']!r} stored {c['verdict']}, decide gives {v}")
    return bad


def save(fig, name: str) -> Path:
    """``figures/uncertainty/<name>.png``, atomically, at :data:`DPI`, as a 256-colour PNG (a third of the
    bytes of full colour for flat plots like these). The figure keeps its own layout (figure legends and
    notes included), which ``plots.save_figure``'s ``tight_layout`` would redo."""
    import io

    from PIL import Image

    from saelib.utils import atomic_path, figures_dir

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    image = Image.open(buf).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    path = figures_dir(FOLDER) / f"{name}.png"
    with atomic_path(path) as tmp:
        image.save(tmp, format="png", optimize=True)
    return path


def main() -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from saelib.companion.plots import plot_claim_intervals, plot_seed_values, set_style

    set_style()
    claims, equivalence = load_claims(), equivalence_in_sources()
    bad = round_trip(claims, equivalence)
    if bad:
        raise SystemExit("stored verdicts that decide does not give back:\n  " + "\n  ".join(bad))
    paths = [save(plot_claim_intervals(claims, equivalence), "claim_intervals")]
    examples = [steering_example(claims), width_example(claims)]
    fig, axes = plt.subplots(1, len(examples), figsize=(6.2 * len(examples), 3.6))
    for ax, ex in zip(axes, examples):
        check_example(ex)
        plot_seed_values(ax, ex.per_seed, oriented(ex.claim), ex.claim["margin"], ex.claim["verdict"], ex.xlabel,
                         ex.title)
    fig.text(0.01, 0.0, "A seed alone has no interval: decide scores it as a claim with uncertainty \"none\", "
             "which is at most partly. Lines: 0 (solid) and the claim's margin (dashed).", fontsize=9.5)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    paths.append(save(fig, "one_seed"))
    for p in paths:
        print(f"wrote {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p} ({p.stat().st_size / 1024:.0f} KB)")
    changed = write_page(page_blocks(page_sentences(claims, equivalence, examples)))
    print(f"{PAGE.relative_to(ROOT)}: {'numbers rewritten' if changed else 'numbers unchanged'}")


if __name__ == "__main__":
    main()
