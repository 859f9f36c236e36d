def test_scoreboard_escapes_table_breaking_characters():
    from saelib.companion.scoreboard import _cell
    assert _cell("TopK (|z|, K=15)\nnext") == "TopK (\\|z\\|, K=15) next"


def test_scoreboard_shows_intervals_and_counts_inconclusive_apart():
    from saelib.companion.scoreboard import _interval, _tally
    new = {"verdict": "inconclusive", "estimate": 0.0123, "interval": [-0.01, 0.034], "margin": 0.01}
    old = {"verdict": "reproduced", "claim": "x", "measured": "y", "paper": ""}
    assert _interval(new) == "0.0123 [-0.01, 0.034], margin 0.01"
    assert _interval(old) == "-"
    assert _tally([new, old, {"verdict": "partly"}]) == "1/3 (1 inconclusive)"
    assert _tally([old]) == "1/1"


def test_run_record_keeps_the_notebooks_data_record_and_adds_provenance(tmp_path, monkeypatch):
    import json

    from saelib.companion.notebook import record_run
    from saelib.companion.scoreboard import record, summary
    monkeypatch.setenv("SAELIB_FIGURES", str(tmp_path))
    record_run("02_batchtopk", data={"eval": {"all": {"documents": 39}}})       # what the notebook writes
    record("02_batchtopk", "200", "ok", "quick")                                  # what run_all adds
    run = json.loads((tmp_path / "02_batchtopk" / "run.json").read_text())
    assert run["data"]["eval"]["all"]["documents"] == 39 and run["seconds"] == 200
    assert {"commit", "packages", "cpus", "torch_threads"} <= set(run["provenance"])
    assert "torch" in run["provenance"]["packages"]
    good = run["provenance"]
    record("02_batchtopk", "5", "FAILED", "quick")      # the last good results stay, with their records
    run = json.loads((tmp_path / "02_batchtopk" / "run.json").read_text())
    assert run["status"] == "FAILED" and run["data"]["eval"]["all"]["documents"] == 39 and run["provenance"] == good
    record("02_batchtopk", "200", "ok", "quick")
    assert "over budget by 0.3 min" in summary(["02_batchtopk"])                # its row is 3 min


def test_provenance_calls_a_tree_dirty_only_for_code_not_for_what_the_run_rewrote(tmp_path, monkeypatch):
    import subprocess

    from saelib.companion import scoreboard
    git = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "claims.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "uncertainty.md").write_text("a\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    monkeypatch.setattr(scoreboard, "repo_root", lambda: tmp_path)
    (tmp_path / "figures" / "claims.json").write_text('{"new": 1}')      # a run's outputs
    (tmp_path / "docs" / "uncertainty.md").write_text("b\n")
    assert scoreboard.provenance()["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")                         # uncommitted code
    assert scoreboard.provenance()["dirty"] is True


def test_measure_reports_the_peak_memory_of_the_command_and_record_marks_a_run_under_load(tmp_path, monkeypatch):
    import json
    import sys

    from saelib.companion.scoreboard import measure, record, summary
    out = tmp_path / "m.json"
    rc = measure(str(out), [sys.executable, "-c", "import numpy as np; a = np.ones(300 * 2**20 // 8); a += 1"])
    m = json.loads(out.read_text())
    assert rc == 0 and 300 <= m["peak_rss_mib"] < 1000 and m["other_cores"] is not None and m["gemm_gflops"] > 0
    monkeypatch.setenv("SAELIB_FIGURES", str(tmp_path))
    record("02_batchtopk", "100", "ok", "quick", str(out))
    run = json.loads((tmp_path / "02_batchtopk" / "run.json").read_text())
    assert run["peak_rss_mib"] == m["peak_rss_mib"] and "under_load" in run and run["gemm_gflops"] == m["gemm_gflops"]
    out.write_text(json.dumps({"peak_rss_mib": 5000, "cpu_seconds": 1.0, "other_cores": 0.9}))
    record("02_batchtopk", "100", "ok", "quick", str(out))
    row = summary(["02_batchtopk"])
    assert "5000" in row and "over 4096 MB" in row and "under load: other processes used 0.90 cores" in row
