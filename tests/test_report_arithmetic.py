"""report/ arithmetic on hand-made records, in the quick (not slow) suite: every derived figure is
computed against the right run (the first one given), so a reference mix-up fails here, not only in
the slow end-to-end file (tests/test_report_real_runs.py)."""

from __future__ import annotations

from test_report_units import write_run

from report import compare


def table_rows(markdown: str, first_header: str) -> dict[str, dict[str, str]]:
    """{run label: {header: cell}} of the markdown table whose header row starts with `first_header`."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    headers = [h.strip() for h in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(headers, cells))
    return rows


def test_training_time_is_relative_to_the_first_run_given(tmp_path):
    runs = [write_run(tmp_path / "first", epoch_seconds=(600.0, 600.0, 600.0)),        # 1800 s: the reference
            write_run(tmp_path / "faster", epoch_seconds=(400.0, 400.0, 400.0)),       # 1200 s
            write_run(tmp_path / "slower", epoch_seconds=(900.0, 900.0, 900.0),        # 2700 s
                      losses=[0.7 - 0.01 * i for i in range(29)] + [None]),   # the last step logged no loss
            write_run(tmp_path / "killed", summary=False)]                              # no summary.json
    assert compare.main([*map(str, runs), "--out", str(tmp_path / "report")]) == 0
    rows = table_rows((tmp_path / "report" / "report.md").read_text(), "run | train_seconds")
    assert {label: row["train_seconds vs first"] for label, row in rows.items()} == {
        "first": "+0.0 %", "faster": "-33.3 %", "slower": "+50.0 %", "killed": "n/a"}
    assert (rows["faster"]["eval_seconds"], rows["faster"]["wall_seconds"]) == ("12.50", "1212.50")
    assert [rows[label]["train_seconds"] for label in ("first", "faster", "slower")] == ["1800.00", "1200.00",
                                                                                        "2700.00"]
    assert rows["slower"]["epoch_seconds[3]"] == "900.00"
    losses = table_rows((tmp_path / "report" / "report.md").read_text(), "run | logged steps")
    assert losses["first"]["last logged loss"] == "0.4300"    # 0.7 - 0.01 * 29 + 0.02 (odd steps zigzag up)
    assert losses["slower"]["last logged loss"] == "0.4200"   # the last step with a loss: 0.7 - 0.01 * 28
