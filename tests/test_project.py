"""Project-level promises: environment.yml mirrors pyproject.toml; notebooks are paired and in sync."""
import re
import tomllib
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower()


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in py["dependencies"] + py["optional-dependencies"]["dev"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    got = {_norm(r) for r in pip if not r.startswith("-e")}
    assert got == wanted
    assert "python=3.11" in env["dependencies"]


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("py", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_pair_in_sync(py):
    """The executed .ipynb carries the same code as its jupytext .py source (re-run after edits)."""
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run ./run_all.sh {py.stem}"
    src = [c.source.strip() for c in jupytext.read(py).cells if c.cell_type == "code"]
    ran = [c.source.strip() for c in jupytext.read(ipynb).cells
           if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]
    assert src == ran, f"{py.name} changed since {ipynb.name} was executed: run ./run_all.sh {py.stem}"
    claims = [c for c in jupytext.read(ipynb).cells if "NBVAL_CHECK_OUTPUT" in c.source]
    assert claims and claims[-1].outputs, "the claims cell must be marked # NBVAL_CHECK_OUTPUT and executed"
