import pytest

from saelib.companion.presets import resolve


def test_presets_resolve_and_reject_unknowns():
    p = resolve("00_quickstart", "quick", k=16)
    assert p.k == 16 and p.layer == 15 and p.preset == "quick"
    with pytest.raises(ValueError, match="preset must be one of"):
        resolve("00_quickstart", "huge")
    with pytest.raises(ValueError, match="notebook must be one of"):
        resolve("99_nope", "quick")
    with pytest.raises(ValueError, match="unknown setting"):
        resolve("00_quickstart", "quick", kk=3)
