"""run_all.sh's promises, with stand-ins for papermill, jupytext and python (no notebook, no install).

A failed notebook keeps the last good figures/claims.json; a Ctrl-C stops the whole run.
"""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

STUBS = {
    # python: answers setup()'s two questions, logs every `-m` call (the scoreboard) instead of running it;
    # `scoreboard measure OUT CMD ...` runs CMD (papermill) as the real one does
    "python": '#!/bin/bash\ncase "$1" in\n  -c) case "$2" in *prefix*) echo "$FAKE_PREFIX";; *) echo "$FAKE_BIN/python";; esac;;\n'
              '  -m) shift; echo "$*" >> "$CALLS"\n'
              '      if [[ "$1 $2" == "saelib.companion.scoreboard measure" ]]; then shift 3; exec "$@"; fi;;\nesac\n',
    "jupytext": '#!/bin/bash\ncp "$5" "$4"\n',                       # jupytext --to ipynb -o OUT SRC
    "papermill": '#!/bin/bash\ncd "$4" && bash "../$1"\n',            # papermill IN OUT --cwd DIR ...: run the "notebook"
}


def _repo(tmp_path: Path) -> tuple[Path, dict]:
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    for name in ("run_all.sh", "pyproject.toml", "environment.yml", "constraints.txt"):
        shutil.copy(ROOT / name, repo / name)
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name, text in STUBS.items():
        (bin_ / name).write_text(text)
        (bin_ / name).chmod(0o755)
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    stamp = subprocess.run("cat pyproject.toml environment.yml constraints.txt | sha256sum | cut -c1-16", shell=True, cwd=repo,
                           capture_output=True, text=True, check=True).stdout.strip()
    (prefix / f".saelib-installed-{stamp}").touch()                  # "already installed"
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "CONDA_DEFAULT_ENV": "saelib", "FAKE_PREFIX": str(prefix),
           "FAKE_BIN": str(bin_), "CALLS": str(tmp_path / "calls.txt")}
    return repo, env


def _notebook(repo: Path, name: str, body: str) -> None:
    """A 'notebook' is a bash script here: it writes its claims.json where saelib would (SAELIB_FIGURES)."""
    (repo / "notebooks" / f"{name}.py").write_text(
        f'mkdir -p "$SAELIB_FIGURES/{name}"\necho \'{{"verdict": "new"}}\' > "$SAELIB_FIGURES/{name}/claims.json"\n'
        + body)


def _good(repo: Path, name: str) -> Path:
    path = repo / "figures" / name / "claims.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"verdict": "last good"}')
    return path


def test_a_failed_notebook_keeps_the_last_good_results(tmp_path):
    repo, env = _repo(tmp_path)
    _notebook(repo, "98_ok", "true\n")
    _notebook(repo, "99_fail", "exit 1\n")
    ok, fail = _good(repo, "98_ok"), _good(repo, "99_fail")
    r = subprocess.run(["bash", "run_all.sh", "98_ok", "notebooks/99_fail.py"], cwd=repo, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "FAILED" in r.stderr
    assert ok.read_text().strip() == '{"verdict": "new"}'              # promoted on success
    assert fail.read_text() == '{"verdict": "last good"}'              # not overwritten by the failed run
    calls = (tmp_path / "calls.txt").read_text()
    assert "record 98_ok" in calls and "ok quick" in calls and "FAILED quick" in calls


def test_ctrl_c_stops_the_run(tmp_path):
    repo, env = _repo(tmp_path)
    _notebook(repo, "97_slow", "sleep 20\n")
    _notebook(repo, "98_next", "true\n")
    # A shell started in the background inherits SIGINT *ignored* (and bash cannot trap an ignored signal):
    # give the run the default disposition, as a terminal would.
    p = subprocess.Popen(["bash", "run_all.sh"], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.5)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=15)
    assert p.returncode == 130 and "interrupted" in err
    calls = (tmp_path / "calls.txt").read_text()
    assert "record 97_slow" in calls and "INTERRUPTED" in calls and "98_next" not in calls.split("summary")[0]


@pytest.mark.parametrize("args,message", [(["--preset"], "--preset needs a value"),
                                          (["--preset", "Full"], "--preset must be one of"),
                                          (["no_such_notebook"], "no such notebook")])
def test_bad_arguments_are_refused_before_any_setup(tmp_path, args, message):
    repo, env = _repo(tmp_path)
    r = subprocess.run(["bash", "run_all.sh", *args], cwd=repo, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr and not (tmp_path / "calls.txt").exists()


def test_smoke_runs_the_smoke_module_with_the_notebooks_named(tmp_path):
    repo, env = _repo(tmp_path)
    r = subprocess.run(["bash", "run_all.sh", "smoke", "00_quickstart"], cwd=repo, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "calls.txt").read_text().splitlines() == ["saelib.companion.smoke 00_quickstart"]
