import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from saelib.claims import ClaimsTable  # noqa: E402
from saelib.plots import figures_dir, save_figure  # noqa: E402
from saelib.presets import resolve  # noqa: E402


def test_claims_verdicts_come_from_the_checks():
    t = ClaimsTable("zz_test", "quick", 0)
    assert t.check("a", "1 < 2", reproduced=1 < 2) == "reproduced"
    assert t.check("b", "x", reproduced=False, partly=True) == "partly"
    assert t.check("c", "x", reproduced=False) == "not reproduced"
    assert t.n_reproduced() == 1
    assert t.verdicts().splitlines()[-1] == "1/3 claims reproduced (quick preset)"
    doc = json.loads(t.save())
    assert doc["claims"][1]["verdict"] == "partly"
    assert json.loads((figures_dir("zz_test") / "claims.json").read_text()) == doc


def test_save_figure_writes_png_atomically():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, "zz_test", "line")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in path.parent.glob(".*")] == []
    with pytest.raises(ValueError, match="plain file stem"):
        save_figure(fig, "zz_test", "a/b")


def test_presets_resolve_and_reject_unknowns():
    p = resolve("00_quickstart", "quick", k=16)
    assert p.k == 16 and p.layer == 15 and p.preset == "quick"
    with pytest.raises(ValueError, match="preset must be one of"):
        resolve("00_quickstart", "huge")
    with pytest.raises(ValueError, match="notebook must be one of"):
        resolve("99_nope", "quick")
    with pytest.raises(ValueError, match="unknown setting"):
        resolve("00_quickstart", "quick", kk=3)


def test_scoreboard_escapes_table_breaking_characters():
    from saelib.scoreboard import _cell
    assert _cell("TopK (|z|, K=15)\nnext") == "TopK (\\|z\\|, K=15) next"
