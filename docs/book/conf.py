"""Sphinx configuration of the companion's static HTML book (./run_all.sh book).

Built with `sphinx-build -c docs/book . build/book/html` from the repository root, so that the README's
and the notebooks' relative links resolve as they do on the forge. The notebooks are rendered from their
stored outputs and never executed; the tools live in .venv-book (docs/book/requirements.txt), apart from
the project's environment. Nothing is fetched while building: no intersphinx, and MathJax is copied into
the site (sphinx-mathjax-offline), so the HTML also shows its equations offline.
"""

import json

project = "SAE paper companion"
author = "the SAE paper companion's authors"
copyright = "the SAE paper companion's authors (MIT licence)"

extensions = [
    "myst_nb",                 # .md (MyST) and .ipynb with their stored outputs
    "sphinx_external_toc",     # the sidebar and the toctrees from _toc.yml
    "sphinx-mathjax-offline",  # MathJax 3 from the package, not a CDN (the module's name has hyphens)
]

# The table of contents: docs/book/_toc.yml (relative to the source root, the repository root).
external_toc_path = "docs/book/_toc.yml"
external_toc_exclude_missing = False   # True would glob the whole tree, .venv included: include_patterns says it

# Only the book's pages are documents; the images they show (figures/**/*.png) are copied all the same.
include_patterns = [
    "README.md",
    "notebooks/[0-9][0-9]_*.ipynb",
    "docs/*.md",
    "exercises/README.md",
    "exercises/*.ipynb",
]
# Pruned from the walk of the source tree (Sphinx walks every folder that no exclude pattern matches,
# include_patterns or not: .venv, .cache and benchmarks/.venvs are large).
exclude_patterns = [
    ".*", "**/.*",             # .git, .venv, .venv-book, .cache, .ci, .ipynb_checkpoints, notebooks/.*.running.ipynb
    "build", "logs", "benchmarks", "saelib", "tests", "scripts", "figures", "exercises/solutions",
    "**/__pycache__", "*.egg-info",
]

# Notebooks: stored outputs only.
nb_execution_mode = "off"
nb_merge_streams = True        # consecutive prints in one block, as Jupyter shows them (see _join_streams)

# MyST: $...$, $$...$$ and \begin{align} math as Jupyter reads it; heading anchors for [](#section) links.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# ./run_all.sh book builds with -W --keep-going and gets no warning: none is suppressed. (Links to files that
# are not pages, e.g. figures/<nb>/claims.json or saelib/*.py, become download links without a warning; a link
# to a page or an anchor that does not exist is a myst.xref_missing warning and fails the build.)
suppress_warnings = []

html_theme = "sphinx_book_theme"
html_title = "SAE paper companion"
html_theme_options = {
    "home_page_in_toc": True,          # the README (course index) heads the sidebar
    "show_navbar_depth": 1,
    "use_download_button": True,       # each page's source (.ipynb / .md)
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
    # pydata-sphinx-theme 0.20 puts a search field in a top bar unless this is set, doubling the sidebar's.
    "navbar_persistent": [],
}
html_static_path = ["static"]              # relative to this folder (docs/book/static/book.css)
html_css_files = ["book.css"]
html_copy_source = True
html_show_sourcelink = False


def _join_streams(app, docname, source):
    """Join a notebook's consecutive stream outputs as Jupyter does, before myst-nb reads it (only in memory).

    A progress bar (tqdm) is stored as many stderr outputs, each "\\r" + its new state. myst-nb's merge
    (nb_merge_streams) puts a newline after each before applying the carriage returns, so every state stayed
    on a line of its own; joined as they were written, only the last state of each bar is left, as in Jupyter.
    """
    if not app.env.doc2path(docname).name.endswith(".ipynb"):
        return
    nb = json.loads(source[0])
    for cell in nb["cells"]:
        joined = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text = "".join(out["text"]) if isinstance(out["text"], list) else out["text"]
                if joined and joined[-1].get("output_type") == "stream" and joined[-1]["name"] == out["name"]:
                    joined[-1]["text"] += text
                    continue
                out = {**out, "text": text}
            joined.append(out)
        if "outputs" in cell:
            cell["outputs"] = joined
    source[0] = json.dumps(nb)


def setup(app):
    app.connect("source-read", _join_streams)
