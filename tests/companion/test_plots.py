import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from saelib.companion.plots import plot_test_mse, save_figure  # noqa: E402


def test_save_figure_writes_png_atomically():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, "zz_test", "line")
    assert path.read_bytes()[:4] == b"\x89PNG" and [p.name for p in path.parent.glob(".*")] == []
    with pytest.raises(ValueError, match="plain file stem"):
        save_figure(fig, "zz_test", "a/b")


def test_plot_test_mse_one_panel_per_setting_seed_marked():
    import pandas as pd
    hist = lambda f: pd.DataFrame({"epoch": [0, 1, 2, 3], "test_mse": [9.0, f, f / 2, f / 4]})  # noqa: E731
    methods, seeds = ["a", "b"], [0, 1, 2]
    histories = {(n, m, s): hist(1.0 + s) for n in ("X", "Y") for m in methods for s in seeds}
    styles = {"a": dict(color="C0", marker="o", label="A"), "b": dict(color="C1", marker="s", label="B")}
    fig = plot_test_mse(histories, ["X", "Y"], methods, seeds, 0, styles, ylabel="mse", baseline=0.5)
    axes = fig.axes
    assert len(axes) == 2 and axes[0].get_title() == "X: test MSE vs epoch (seed 0 marked, 2 more seeds faint)"
    assert len(axes[0].lines) == 2 * 3 + 1 and axes[0].get_yscale() == "log" and axes[1].get_ylabel() == "mse"
    first = axes[0].lines[0]
    assert list(first.get_xdata()) == [1, 2, 3] and first.get_label() == "A"      # the pre-training row is left out
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["A", "B", "predict the mean (variance)"]
    plt.close(fig)
