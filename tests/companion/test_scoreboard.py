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
