import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from saelib.companion.plots import save_figure  # noqa: E402


def test_save_figure_writes_png_atomically():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, "zz_test", "line")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in path.parent.glob(".*")] == []
    with pytest.raises(ValueError, match="plain file stem"):
        save_figure(fig, "zz_test", "a/b")
