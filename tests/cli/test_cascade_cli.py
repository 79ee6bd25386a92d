"""`gateway cascade-calibrate`: a threshold per escalation rate from graded answers."""

from __future__ import annotations

from typer.testing import CliRunner

from deployments.commands import app


def test_it_prints_the_threshold_for_the_rate_and_the_config_lines(tmp_path):
    data = tmp_path / "graded.csv"
    rows = [(-2.0, 0, 1), (-1.5, 0, 0), (-1.0, 1, 0), (-0.5, 1, 1), (-0.1, 1, 1)]
    data.write_text("id,lp_mean:small:auto,score:small:auto,score:large\n"
                    + "".join(f"q{i},{c},{s},{l}\n" for i, (c, s, l) in enumerate(rows)))
    result = CliRunner().invoke(app, ["cascade-calibrate", "--data", str(data), "--rate", "0.4"])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("cascade:\n  signal: mean_logprob\n  threshold: -1.0000")
    assert "   40.0%     -1.0000    0.800         1.000" in result.output


def test_a_missing_column_is_named(tmp_path):
    data = tmp_path / "graded.csv"
    data.write_text("id,score:small:auto,score:large\nq,1,0\n")
    result = CliRunner().invoke(app, ["cascade-calibrate", "--data", str(data)])
    assert result.exit_code == 2 and "lp_mean:small:auto" in result.output
