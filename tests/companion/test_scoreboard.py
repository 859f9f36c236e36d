def test_scoreboard_escapes_table_breaking_characters():
    from saelib.companion.scoreboard import _cell
    assert _cell("TopK (|z|, K=15)\nnext") == "TopK (\\|z\\|, K=15) next"
