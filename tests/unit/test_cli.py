from __future__ import annotations

import orjson
from typer.testing import CliRunner

from clinops.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_generate_silver_features_pipeline(tmp_path) -> None:
    lake = str(tmp_path / "lake")
    result = invoke("generate", "--lake", lake, "--patients", "80", "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "patient-vitals" in result.output
    result = invoke("lake", "bronze-to-silver", "--lake", lake)
    assert result.exit_code == 0, result.output
    assert "quarantine" in result.output
    result = invoke("features", "--lake", lake)
    assert result.exit_code == 0, result.output
    assert "gold/encounters" in result.output


def test_demo_prints_mix_quarantine_and_oracle(tmp_path) -> None:
    result = invoke("demo", "--lake", str(tmp_path / "lake"), "--patients", "400", "--no-train")
    assert result.exit_code == 0, result.output
    for text in ("patient-vitals", " %", "quarantine reasons", "duplicate", "oracle AUC"):
        assert text in result.output


def test_generate_to_stdout_is_json_lines() -> None:
    result = invoke("generate", "--stdout", "--patients", "20", "--days", "5")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) > 100
    kinds = {orjson.loads(line).get("event_type") for line in lines}
    assert {"vitals", "medication", "lab_result"} <= kinds


def test_bad_arguments_exit_non_zero_without_traceback(tmp_path) -> None:
    result = invoke("generate", "--patients", "0")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    result = invoke("features", "--lake", str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert result.output.startswith("error: silver is incomplete")
    assert len(result.output.strip().splitlines()) == 1
    result = invoke("load-csv", str(tmp_path / "missing.csv"), "--lake", str(tmp_path / "l"))
    assert result.exit_code == 1
    assert "no such file" in result.output


def test_train_rejects_an_invalid_training_job_in_one_line(tmp_path) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text(
        "apiVersion: clinops.io/v1alpha1\nkind: TrainingJob\nmetadata: {name: j}\n"
        "spec: {model: {name: m}, dataset: {uri: 'lake://gold/encounters/', target: y}, algorithms: [magic]}\n"
    )
    result = invoke("train", "-f", str(bad))
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert "spec.algorithms.0" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_model_uris_name_an_alias_or_a_version() -> None:
    from clinops.cli import parse_model_uri

    assert parse_model_uri("models:/readmission-risk@champion") == {"name": "readmission-risk", "alias": "champion"}
    assert parse_model_uri("readmission-risk/3") == {"name": "readmission-risk", "version": 3}


def test_serve_rejects_a_bad_model_uri_or_deployment_in_one_line(tmp_path) -> None:
    result = invoke("serve", "readmission-risk")
    assert result.exit_code == 1
    assert result.output.startswith("error: model 'readmission-risk': expected models:/<name>@<alias>")
    bad = tmp_path / "md.yaml"
    bad.write_text(
        "apiVersion: clinops.io/v1alpha1\nkind: ModelDeployment\nmetadata: {name: d}\n"
        "spec: {model: {name: m, alias: champion}, canary: {alias: c, trafficPercent: 120}}\n"
    )
    result = invoke("serve", "-f", str(bad))
    assert result.exit_code == 1
    assert "spec.canary.trafficPercent" in result.output
    assert len(result.output.strip().splitlines()) == 1
