"""The host check behind `./run_all.sh test`: which CPU made the stored outputs, and how far two runs' claims differ."""
import configparser
import json
import re
from pathlib import Path

from saelib.companion import host
from saelib.companion.claims import ClaimsTable
from saelib.metrics.uncertainty import Interval

ROOT = Path(__file__).resolve().parents[2]


def _claims(folder: Path, name: str, rows: list[tuple[str, float, float, float]]) -> None:
    claims = [{"claim": c, "verdict": v, "estimate": e, "interval": [lo, hi]} for c, (v, e, lo, hi) in rows]
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / "claims.json").write_text(json.dumps({"claims": claims}))


def test_compare_counts_changed_verdicts_and_moved_numbers_and_skips_identical_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _claims(a, "00_x", [("c1", ("reproduced", 8.79, 8.7, 8.9)), ("c2", ("partly", 1.0, 0.5, 1.5))])
    _claims(b, "00_x", [("c1", ("reproduced", 8.78, 8.7, 8.9)), ("c2", ("inconclusive", 1.0, -0.5, 1.5))])
    _claims(a, "01_y", [("c1", ("reproduced", 1.0, 0.0, 2.0))])
    _claims(b, "01_y", [("c1", ("reproduced", 1.0, 0.0, 2.0))])
    (lines,) = host.compare(a, b)
    assert lines.startswith("00_x: 1 verdict(s) changed: 'c2' partly -> inconclusive; 2 number(s) moved, largest by 1")
    assert host.compare(a, a) == []


def test_reference_keys_read_each_run_record_and_call_an_old_record_unknown(tmp_path):
    cpu = {"model": "AMD EPYC", "isa": ["avx2"], "torch_capability": "AVX2", "kernel_variables": {}}
    for name, prov in (("00_x", {"cpu": cpu}), ("01_y", {"cpu": "x86_64"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps({"provenance": prov}))
    assert host.key(cpu) == "AMD EPYC [avx2]"
    assert host.reference_keys(tmp_path) == {"AMD EPYC [avx2]", "unknown"}
    assert host.stored_keys(tmp_path) == {"00_x": "AMD EPYC [avx2]", "01_y": "unknown"}
    assert host.made_here(tmp_path, "AMD EPYC [avx2]") == ["00_x"]
    assert host.made_here(tmp_path, "Intel Xeon [avx2 avx512f]") == []


def test_describe_records_a_kernel_variable_only_when_set_and_the_key_names_it(monkeypatch):
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    cpu = host.describe()
    assert cpu["kernel_variables"].get("MKL_CBWR") == "AVX2" and "OPENBLAS_CORETYPE" not in cpu["kernel_variables"]
    assert set(cpu["isa"]) <= set(host.ISA)
    assert host.key(cpu).endswith(" MKL_CBWR=AVX2")


def test_the_foreign_cpu_sanitizer_masks_estimates_verdicts_and_tallies_and_keeps_claims_and_checks():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "tests" / "nbval_verdicts_only.cfg")
    rules = [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]

    def printed(estimate: float, lo: float, passed: bool = True, claim: str = "A beats B") -> str:
        t = ClaimsTable("00_x", "quick", 0)
        t.add_claim(claim, "s", Interval(estimate, lo, estimate + 1, 3, "t"), 0.5, "greater", "seeds", 3)
        t.add_claim("C beats D", "s", Interval(1.0, 0.8, 1.2, 3, "t"), 0.5, "greater", "seeds", 3)
        t.add_check("identity", passed)
        text = t.verdicts()
        for rx, rep in rules:
            text = rx.sub(rep, text)
        return text

    # reproduced, partly, not reproduced and inconclusive all print alike once masked
    assert printed(8.79, 8.0) == printed(8.78, 0.2) == printed(-3.0, -4.0) == printed(0.1, -1.0)
    assert "estimate masked" in printed(8.79, 8.0) and "?/2 claims reproduced (quick preset)" in printed(0.1, -1.0)
    assert printed(8.79, 8.0) != printed(8.79, 8.0, passed=False)          # a check that fails is still seen
    assert printed(8.79, 8.0) != printed(8.79, 8.0, claim="A beats E")      # so is a claim made differently


def test_contradictions_fail_a_turned_over_verdict_and_only_report_a_move_to_inconclusive(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _claims(a, "06_x", [("c1", ("not reproduced", 0.0, -0.05, 0.05)), ("c2", ("reproduced", 2.0, 1.5, 2.5)),
                        ("c3", ("partly", 0.7, 0.2, 1.2))])
    _claims(b, "06_x", [("c1", ("inconclusive", 0.09, -0.1, 0.3)), ("c2", ("partly", 1.8, 0.9, 2.7)),
                        ("c3", ("not reproduced", -0.1, -0.5, 0.4))])
    assert host.contradictions(a, b) == ["06_x: 'c3' partly (stored) vs not reproduced (this run)"]
    (line,) = host.compare(a, b)
    assert "3 verdict(s) changed" in line and "'c1' not reproduced -> inconclusive" in line
    _claims(b, "06_x", [("c1", ("not reproduced", 0.0, -0.05, 0.05)), ("c9", ("reproduced", 2.0, 1.5, 2.5))])
    assert host.contradictions(a, b) == ["06_x: 'c2' only in the stored run", "06_x: 'c3' only in the stored run",
                                         "06_x: 'c9' only in this run"]
