"""Charts that never mislead: the smoothing window follows the number of points, raw lines are in
the legend, identical runs stay visible, epochs are whole numbers, CPU runs show host memory.
Each chart's matplotlib figure is inspected (what was drawn), not only the PNG."""

from __future__ import annotations

import pytest
from test_report_headline import cpu_memory
from test_report_units import write_run

from report import charts, compare, curves
from report.records import load_runs


@pytest.fixture
def figures(monkeypatch):
    """The figures the chart functions draw, kept open for inspection."""
    drawn = []

    def keep(fig, path):
        fig.canvas.draw()
        drawn.append(fig)
        fig.savefig(path)
        return path

    monkeypatch.setattr(charts, "_save", keep)
    yield drawn
    for fig in drawn:
        charts.plt.close(fig)


def test_window_is_chosen_from_the_number_of_points():
    assert curves.auto_window(16) == 1  # the fast profile: too few points to smooth at all
    assert curves.auto_window(30) == 3
    assert curves.auto_window(112) == 11  # the smoke profile
    assert curves.auto_window(6414) == curves.DEFAULT_WINDOW  # published: capped at 25
    assert all(curves.auto_window(n) % 2 == 1 for n in range(400))


def test_sixteen_points_are_drawn_raw_and_the_title_says_why(tmp_path, figures):
    losses = [0.634 - 0.015 * i for i in range(16)]  # falls from 0.634 to 0.409 as in the fast profile
    runs = load_runs([write_run(tmp_path / "fast", losses=losses)])
    window, chosen = compare.choose_window(runs, None)
    assert window == 1 and "fewest logged points among the runs, 16" in chosen
    charts.loss_chart(runs, tmp_path / "loss.png", window)
    ax = figures[0].axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["fast: raw (16 points)"]
    assert list(ax.get_lines()[0].get_ydata()) == losses  # the real fall, not a flat average
    assert "too few logged points to smooth (W = 1)" in ax.get_title()


def test_identical_runs_stay_visible_and_raw_lines_are_in_the_legend(tmp_path, figures):
    runs = load_runs([write_run(tmp_path / "a"), write_run(tmp_path / "b")])
    charts.loss_chart(runs, tmp_path / "loss.png", 3)
    ax = figures[0].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["a: raw (30 points)", "a: smoothed, W = 3 points", "b: raw (30 points)",
                      "b: smoothed, W = 3 points"]
    lines = {line.get_label(): line for line in ax.get_lines()}
    a, b = lines["a: smoothed, W = 3 points"], lines["b: smoothed, W = 3 points"]
    assert list(a.get_ydata()) == list(b.get_ydata())  # the same curve …
    assert a.get_linestyle() != b.get_linestyle() and a.get_color() != b.get_color()  # … drawn two ways


def test_eval_epochs_are_whole_numbers(tmp_path, figures):
    charts.eval_chart(load_runs([write_run(tmp_path / "a")]), tmp_path / "eval.png")
    for ax in figures[0].axes:
        lo, hi = ax.get_xlim()
        shown = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert shown and all(float(t).is_integer() for t in shown), shown


def test_memory_chart_shows_host_memory_only_where_there_is_no_device_memory(tmp_path, figures):
    runs = load_runs([write_run(tmp_path / "npu"), write_run(tmp_path / "cpu", device=("cpu", "x86"),
                                                             memory=cpu_memory(554.0))])
    runs[0].summary["memory"]["host_rss_mb_peak"] = 9000.0  # a device run's host RSS is not its memory
    charts.memory_chart(runs, tmp_path / "memory.png")
    ax = figures[0].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "host: process peak RSS (where no device memory)" in labels
    notes = [t.get_text() for t in ax.texts]
    assert "554" in notes and "9000" not in notes
    assert "no values in these run records" not in notes


def test_report_memory_table_shows_host_rss(tmp_path):
    out = tmp_path / "report"
    cpu = write_run(tmp_path / "cpu", device=("cpu", "x86"), memory=cpu_memory(554.0))
    other = write_run(tmp_path / "other", device=("cpu", "x86"), memory=cpu_memory(600.0))
    assert compare.main([str(cpu), str(other), "--out", str(out)]) == 0
    assert "| cpu | n/a | n/a | n/a | n/a | n/a | n/a | 554.0 | none | none |" in (out / "report.md").read_text()
