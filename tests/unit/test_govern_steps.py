"""GOVERN's stages on a small world (their contract: outputs, metrics, registry), and the user's
samples: a bad line stops govern_data naming its file, line and field, with nothing written."""

from __future__ import annotations

import json

import pytest

from components.common.io import ProjectError, read_json
from components.govern import data_step, distill_step, evaluate_step
from components.govern.params import GovernDataParams, GovernParams

SMALL = {"unlabeled": 400, "labeled": 80, "dev": 80, "test": 200}


def test_data_distill_evaluate(tmp_path, mlflow_uri):
    data, models = tmp_path / "data", tmp_path / "models"
    data_step.run(GovernDataParams(sizes=SMALL), "tiny", data, tmp_path / "r/data")
    assert sorted(p.name for p in data.iterdir()) == [
        "dev.jsonl",
        "labeled.jsonl",
        "teachers.json",
        "test.jsonl",
        "unlabeled.jsonl",
    ]
    params = GovernParams(epochs=1, supervised_epochs=1, baselines=("mean", "best_single"))
    losses = distill_step.run(params, "tiny", data, models, tmp_path / "r/distill")
    assert set(losses) == {
        f"{n}.final_loss"
        for n in ("govern", "mean", "best_single", "supervised_govern", "supervised_mean_kd")
    }
    info = read_json(models / "students.json")
    assert info["deployed"] == "supervised_govern"
    metrics = evaluate_step.run(params, "tiny", data, models, tmp_path / "r/ev")
    assert metrics["registered_version"] == 1 and metrics["promoted"] == 1
    assert metrics["govern.retention"] == pytest.approx(
        metrics["govern.auc"] / metrics["ensemble_mean.auc"]
    )
    assert (tmp_path / "r/ev/majority_share.png").is_file()


def write_samples(path, lines):
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")


GOOD = {"id": "a", "split": "test", "features": [0.1, 0.2], "teachers": {"x": 1.0, "y": -1.0}}


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"teachers": {"x": 1.0}}, "teachers"),
        ({"features": "0.1 0.2"}, "features"),
        ({"label": 2}, "label"),
        ({"split": "training"}, "split"),
        ({"features": [0.1]}, "features"),
    ],
)
def test_a_bad_sample_names_its_file_line_and_field(tmp_path, mlflow_uri, bad, field):
    samples = tmp_path / "samples.jsonl"
    lines = [
        {**GOOD, "id": "u1", "split": "unlabeled"},
        {**GOOD, "label": 1},
        {**GOOD, "id": "b", "label": 0, **bad},
    ]
    write_samples(samples, lines)
    params = GovernDataParams(samples_file=str(samples))
    with pytest.raises(ProjectError) as error:
        data_step.run(params, "tiny", tmp_path / "data", tmp_path / "reports")
    assert str(error.value.file) == str(samples) and error.value.field == field
    assert error.value.line == 3
    assert not (tmp_path / "data").exists()


def test_the_users_samples_are_read_by_teacher_name(tmp_path, mlflow_uri):
    samples = tmp_path / "samples.jsonl"
    flipped = {**GOOD, "id": "b", "label": 0, "teachers": {"y": 2.0, "x": 3.0}}
    write_samples(
        samples, [{**GOOD, "id": "u1", "split": "unlabeled"}, {**GOOD, "label": 1}, flipped]
    )
    data_step.run(
        GovernDataParams(samples_file=str(samples)), "tiny", tmp_path / "d", tmp_path / "r"
    )
    assert read_json(tmp_path / "d/teachers.json") == ["x", "y"]
    test = [json.loads(line) for line in (tmp_path / "d/test.jsonl").read_text().splitlines()]
    assert test[1]["teachers"] == [3.0, 2.0]
