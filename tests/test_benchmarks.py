"""benchmarks/peer_throughput.py's bookkeeping (no worker runs, no venvs): shapes, rotation, summary, table."""
import argparse

import pytest

from benchmarks.peer_throughput import (Shape, estimate_seconds, markdown_table, parse_shapes, rotated,
                                        summarise)


def run(shape: Shape, lib: str, step_s: list[float], r: int = 0) -> dict:
    return {"round": r, "shape": shape.label, "lib": lib, "probe_ms_before": 0.05,
            "result": {"step_s": step_s, "n_params": 10, "steps": len(step_s), "warmup": 1, "process_wall_s": 5.0}}


def fake_result(runs: list[dict], shapes: list[Shape], libs: list[str]) -> dict:
    probe = {"load_avg": [0.1, 0.1, 0.1], "elementwise_probe_ms": 0.05, "gemm_peak_gflops": {"highest": 160.0}}
    return {"settings": {"d_in": 576, "k": 32, "lr": 1e-3, "threads": 2, "matmul_precision": "highest",
                         "rounds": 2, "steps": 3, "warmup": 1, "libs": libs},
            "versions": {lib: {"package": lib, "version": "1"} for lib in libs},
            "probes": {"start": probe, "end": probe}, "contended": False, "runs": runs,
            "summary": summarise(runs, shapes, libs)}


def test_parse_shapes_names_and_explicit():
    assert parse_shapes("large") == [Shape(9216, 4096)]
    assert parse_shapes("576x256,large,576x256") == [Shape(576, 256), Shape(9216, 4096)]
    assert len(parse_shapes("large,notebook")) == 5
    with pytest.raises(argparse.ArgumentTypeError):
        parse_shapes("big")


def test_rotation_puts_every_library_first_once():
    libs = ["saelib", "sparsify", "saelens"]
    assert [rotated(libs, r)[0] for r in range(3)] == libs
    assert rotated(libs, 4) == ["sparsify", "saelens", "saelib"]


def test_summary_medians_ranges_and_ratio_against_the_fastest_peer():
    a, b = Shape(576, 256), Shape(1152, 1024)
    libs = ["saelib", "sparsify", "saelens"]
    runs = [run(a, "saelib", [0.1, 0.1, 0.5], 0), run(a, "saelib", [0.2, 0.2, 0.2], 1),  # 2560 and 1280 tok/s
            run(a, "sparsify", [0.4] * 3, 0), run(a, "sparsify", [0.4] * 3, 1),        # 640
            run(a, "saelens", [0.2] * 3, 0), run(a, "saelens", [0.2] * 3, 1),          # 1280: the fastest peer
            run(b, "saelib", [1.0] * 3), run(b, "sparsify", [0.5] * 3),
            {**run(b, "saelens", [1.0]), "result": {"error": "exit 1"}}]
    res = fake_result(runs, [a, b], libs)
    row_a, row_b = res["summary"]
    sl = row_a["libs"]["saelib"]
    assert sl["tokens_per_s_median"] == pytest.approx(1920)  # median of the two runs' rates
    assert (sl["tokens_per_s_min"], sl["tokens_per_s_max"]) == (pytest.approx(1280), pytest.approx(2560))
    assert sl["ms_per_step_median"] == pytest.approx(200)  # over all six timed steps
    assert row_a["fastest_peer"] == "saelens" and row_a["saelib_vs_fastest_peer"] == pytest.approx(1.5)
    assert row_b["libs"]["saelens"] is None and row_b["fastest_peer"] == "sparsify"
    assert row_b["saelib_vs_fastest_peer"] == pytest.approx(0.5)
    table = markdown_table(res)
    assert "| 576 x 256 | 1,920 [1,280-2,560] | 640 [640-640] | 1,280 [1,280-1,280] | 1.50x (saelens) |" in table
    assert "| 1,152 x 1,024 | 1,024 [1,024-1,024] | 2,048 [2,048-2,048] | failed | 0.50x (sparsify) |" in table
    assert "contended" not in table


def test_estimate_rescales_each_run_to_other_step_counts():
    a = Shape(576, 256)
    runs = [run(a, "saelib", [0.5] * 3)]  # 5 s for 1 warm-up + 3 steps; 10 + 3 steps add 9 * 0.5 s
    assert estimate_seconds(runs, rounds=2, steps=10, warmup=3) == pytest.approx(2 * (5.0 + 9 * 0.5))
