"""The end of `make repro`: one verdict line per stage and reports/index.md (pipelines.summary)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mlflow import MlflowClient

from pipelines import summary

REPO_ROOT = Path(__file__).resolve().parents[2]
VERDICTS = (summary.PASS, summary.MISS, summary.RAN, summary.NOT_RUN)


def fake_run(root: Path) -> list[str]:
    """dvc.yaml of the project, metrics for every stage but the last, one PNG per report folder;
    returns the stages that write metrics."""
    shutil.copy(REPO_ROOT / "dvc.yaml", root / "dvc.yaml")
    stages = summary.read_stages(root)
    for stage in stages[:-1]:
        values = {figure.key: 0.7 for figure in summary.HEADLINES.get(stage.name, ())}
        stage.metrics_file.parent.mkdir(parents=True, exist_ok=True)
        stage.metrics_file.write_text(json.dumps(values | {"extra": 1.0}))
        for folder in stage.report_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "curve.png").write_bytes(b"png")
    return [stage.name for stage in stages]


def verdict_lines(printed: str, stages: list[str]) -> dict[str, str]:
    lines = {}
    for line in printed.splitlines():
        words = line.split()
        if words and words[0] in stages:
            lines[words[0]] = line
    return lines


def test_summary_prints_a_verdict_per_stage_and_names_the_report(tmp_path, mlflow_uri, capsys):
    MlflowClient(mlflow_uri).search_experiments()  # an empty store: created, no runs
    stages = fake_run(tmp_path)

    assert summary.main(["--root", str(tmp_path)]) == 0

    printed = capsys.readouterr().out
    lines = verdict_lines(printed, stages)
    assert sorted(lines) == sorted(stages)
    for line in lines.values():
        assert line.split(maxsplit=1)[1].startswith(VERDICTS), line
    assert "not run" in lines[stages[-1]]
    for stage in summary.HEADLINES:
        targeted = any(f.minimum is not None for f in summary.HEADLINES[stage])
        if stage in lines and stage != stages[-1]:
            assert ("target >=" in lines[stage]) == targeted, lines[stage]
    assert printed.splitlines()[0].startswith("demo targets:")
    report = tmp_path / "reports" / "index.md"
    assert printed.splitlines()[-1] == f"run report: {report}"


def test_report_links_every_stage_png_and_metric(tmp_path, mlflow_uri):
    MlflowClient(mlflow_uri).search_experiments()
    stages = fake_run(tmp_path)

    summary.main(["--root", str(tmp_path)])

    text = (tmp_path / "reports" / "index.md").read_text()
    pngs = sorted((tmp_path / "reports").rglob("*.png"))
    assert pngs
    for png in pngs:
        link = png.relative_to(tmp_path / "reports").as_posix()
        assert f"]({link})" in text
    for stage in stages:
        assert f"## {stage}" in text
    assert "| `extra` |" in text
    assert "## Registered models" in text


def test_report_names_each_steps_run_and_the_champions(tmp_path, mlflow_uri):
    client = MlflowClient(mlflow_uri)
    experiment = client.create_experiment("mlops-methods")
    run = client.create_run(experiment, tags={"step": "evaluate"}, run_name="evaluate")
    client.create_registered_model("sft-model")
    for _ in range(2):
        client.create_model_version("sft-model", f"runs:/{run.info.run_id}/model")
    client.set_registered_model_alias("sft-model", "champion", "1")
    client.set_registered_model_alias("sft-model", "challenger", "2")
    fake_run(tmp_path)

    summary.main(["--root", str(tmp_path)])

    text = (tmp_path / "reports" / "index.md").read_text()
    assert run.info.run_id in text
    assert "| `sft-model` | 1 | 2 |" in text


def test_no_tracking_store_is_not_created(tmp_path, mlflow_uri):
    fake_run(tmp_path)

    summary.main(["--root", str(tmp_path)])

    assert not (tmp_path / "mlflow.db").exists()
    assert "MLflow run: none found" in (tmp_path / "reports" / "index.md").read_text()


def test_every_stage_with_metrics_has_a_headline():
    assert set(summary.HEADLINES) == {stage.name for stage in summary.read_stages(REPO_ROOT)}
