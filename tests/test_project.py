"""Project-level promises: environment.yml mirrors pyproject.toml; notebooks are paired and in sync; the docs link to what exists."""
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


DOCS = [ROOT / "README.md", ROOT / "exercises" / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        *sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")), *sorted((ROOT / "exercises").glob("[0-9][0-9]_*.py"))]
"""Every page a reader follows links from: the README, the docs, and the notebooks' and exercises' markdown."""


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_in_the_docs_point_to_files_that_exist(doc):
    targets = re.findall(r"\]\(((?!https?:|#)[^)\s]+)\)", doc.read_text())
    missing = [t for t in targets if not (doc.parent / t.split("#")[0]).exists()]
    assert not missing, missing


@pytest.mark.parametrize("page", ["glossary.md", "uncertainty.md"])
def test_every_saelib_name_the_glossary_cites_exists(page):
    import importlib

    from saelib import TrainConfig
    from saelib.metrics.reconstruction import Evaluation

    text = (ROOT / "docs" / page).read_text()
    unresolved = []
    for name in sorted(set(re.findall(r"`(saelib(?:\.\w+)+)`", text))):
        parts = name.split(".")
        for cut in range(len(parts), 0, -1):   # the longest importable module, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            try:
                for attr in parts[cut:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                unresolved.append(name)
            break
    for cls_name, cls in (("Evaluation", Evaluation), ("TrainConfig", TrainConfig)):
        for attr in re.findall(rf"`{cls_name}\.(\w+)`", text):
            if attr not in getattr(cls, "__annotations__", {}) and not hasattr(cls, attr):
                unresolved.append(f"{cls_name}.{attr}")
    assert not unresolved, unresolved


def test_the_numbers_docs_uncertainty_quotes_are_those_of_the_committed_outputs():
    """docs/uncertainty.md quotes no number by hand: its marked blocks are what scripts/uncertainty_figure.py
    writes from figures/*/claims.json and the notebooks' stored outputs (run_all.sh reruns it after each run;
    when this fails, run `python scripts/uncertainty_figure.py` and commit the page and the figures)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("uncertainty_figure", ROOT / "scripts" / "uncertainty_figure.py")
    mod = sys.modules.setdefault("uncertainty_figure", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(mod)
    claims = mod.load_claims()
    sentences = mod.page_sentences(claims, mod.equivalence_in_sources(),
                                   [mod.steering_example(claims), mod.width_example(claims)])
    page = (ROOT / "docs" / "uncertainty.md").read_text()
    for name, body in mod.page_blocks(sentences).items():
        assert f"<!-- uncertainty:{name}:start -->\n{body}\n<!-- uncertainty:{name}:end -->" in page, name
    for png in ("claim_intervals", "one_seed"):
        assert (ROOT / "figures" / "uncertainty" / f"{png}.png").stat().st_size < 300_000


EXERCISE_NOTEBOOKS = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("py", EXERCISE_NOTEBOOKS, ids=[p.stem for p in EXERCISE_NOTEBOOKS])
def test_exercise_pair_in_sync_and_stored_without_outputs(py):
    """An exercise's .ipynb (what a student opens) carries its .py's cells and no outputs (they would give answers away)."""
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: jupytext --to ipynb {py.relative_to(ROOT)}"
    src, nb = jupytext.read(py), jupytext.read(ipynb)
    assert [c.source.strip() for c in src.cells] == [c.source.strip() for c in nb.cells], \
        f"{py.name} changed since {ipynb.name} was written: jupytext --to ipynb {py.relative_to(ROOT)}"
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


BOOK_TOC = ROOT / "docs" / "book" / "_toc.yml"


def _book_pages():
    """The book's pages in sidebar order (docnames: paths without suffix), globs expanded as Sphinx does."""
    def entries(node):
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []):
                yield child
                yield from entries(child)

    toc = yaml.safe_load(BOOK_TOC.read_text())
    pages = [toc["root"]]
    for e in entries(toc):
        if "file" in e:
            pages.append(e["file"])
        elif "glob" in e:
            docnames = sorted(str(p.relative_to(ROOT).with_suffix("")) for p in ROOT.glob(e["glob"] + ".md"))
            pages.extend(docnames)
    return pages


def test_the_book_has_every_notebook_doc_and_exercise():
    """./run_all.sh book renders what docs/book/_toc.yml lists: a page missing there is missing from the book."""
    pages = _book_pages()
    expected = (["README"]
                + [f"notebooks/{p.stem}" for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
                + [f"docs/{p.stem}" for p in sorted((ROOT / "docs").glob("*.md"))]
                + ["exercises/README"]
                + [f"exercises/{p.stem}" for p in sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))])
    assert len(pages) == len(set(pages)), f"listed twice: {sorted({p for p in pages if pages.count(p) > 1})}"
    assert sorted(pages) == sorted(expected), \
        f"missing from {BOOK_TOC.relative_to(ROOT)}: {sorted(set(expected) - set(pages))}; " \
        f"listed but absent: {sorted(set(pages) - set(expected))}"
    # the sidebar's order: the course index, the notebooks, the docs, the exercises
    order = ["README", "notebooks/", "docs/", "exercises/"]
    rank = [next(i for i, prefix in enumerate(order) if p.startswith(prefix)) for p in pages]
    assert rank == sorted(rank), pages


def test_the_book_follows_the_readme_reading_order():
    """The book's notebooks come in the order of the README's reading-order table ("| step | notebook | ...")."""
    readme = (ROOT / "README.md").read_text()
    reading = re.findall(r"^\| \d+ \| \[`\w+`\]\(notebooks/(\w+)\.ipynb\)", readme, flags=re.M)
    assert reading, "the README's reading-order table was not found"
    book = [p.removeprefix("notebooks/") for p in _book_pages() if p.startswith("notebooks/")]
    exercises = [p.removeprefix("exercises/") for p in _book_pages() if p.startswith("exercises/0") or
                 p.startswith("exercises/1")]
    assert book == reading and exercises == reading
