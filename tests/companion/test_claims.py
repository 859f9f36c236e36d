import json

from saelib.companion.claims import ClaimsTable
from saelib.utils import figures_dir


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
