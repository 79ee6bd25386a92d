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


def test_train_verifier_writes_a_json_verifier_with_its_out_of_fold_auc(tmp_path):
    import json

    import numpy as np

    from cascade.verifier import VerifierInput, load_verifier

    rng = np.random.default_rng(0)
    lp = rng.normal(-0.6, 0.3, 200)
    upper_better = (lp + rng.normal(0, 0.1, 200) < -0.8).astype(int)
    frame = "prompt,category,lp_mean:large,lp_min:large,lp_margin:large,tokens:large,answer_chars:large,score:large,score:frontier\n"
    frame += "".join(f"q{i},refund,{v},{v - 1},1.0,10,40,{1 - u},{u}\n" for i, (v, u) in enumerate(zip(lp, upper_better)))
    data, out = tmp_path / "graded.csv", tmp_path / "verifier.json"
    data.write_text(frame)
    result = CliRunner().invoke(app, [
        "cascade-train-verifier", "--data", str(data), "--out", str(out), "--target", "large", "--upper", "frontier",
        "--no-router", "--rate", "0.25",
    ])
    assert result.exit_code == 0, result.output
    auc = float(result.output.split("out-of-fold AUC ")[1].split(";")[0])
    assert auc > 0.8
    assert "verifiers: {large: " in result.output and "escalates 25% out of fold" in result.output
    model = load_verifier(out)
    assert json.loads(out.read_text())["trained_on"]["upper"] == "frontier"
    assert model.probability(VerifierInput(mean_logprob=-1.5)) > model.probability(VerifierInput(mean_logprob=0.0))


def test_train_verifier_refuses_too_few_rows(tmp_path):
    data = tmp_path / "graded.csv"
    data.write_text("prompt,lp_mean:small:auto,lp_min:small:auto,lp_margin:small:auto,tokens:small:auto,"
                    "answer_chars:small:auto,score:small:auto,score:large\nq,-1,-2,1,3,10,0,1\n")
    result = CliRunner().invoke(app, ["cascade-train-verifier", "--data", str(data), "--out", str(tmp_path / "v.json"),
                                      "--no-router"])
    assert result.exit_code == 2 and "too few" in result.output
