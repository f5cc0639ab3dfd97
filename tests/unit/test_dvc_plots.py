"""dvc.yaml's `plots:` draws every stage's series, each from a file the stage writes."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# the CSV series the stages write under reports/ (dynamics.csv, one loss per record and step, is
# ILP's input, not a curve)
SERIES = {
    "reports/pretrain/loss.csv",
    "reports/finetune/loss.csv",
    "reports/finetune/task_accuracy.csv",
    "reports/finetune/drift.csv",
    "reports/finetune/conflict.csv",
    "reports/seg/train/loss.csv",
    "reports/seg/evaluate/cases.csv",
    "reports/grm/policy/base/loss.csv",
    "reports/grm/policy/sft/loss.csv",
    "reports/grm/scorer/history.csv",
    "reports/grm/evaluate/frontier.csv",
    "reports/grm/evaluate/per_k.csv",
    "reports/knowtuning/base/loss.csv",
    "reports/knowtuning/sft/loss.csv",
    "reports/knowtuning/ka/loss.csv",
    "reports/knowtuning/compare/dpo_curves.csv",
    "reports/atm/base/loss.csv",
    "reports/atm/generator_sft/loss.csv",
    "reports/atm/attacker_sft/loss.csv",
}


def plotted_files(plots: list[dict]) -> set[str]:
    """Each entry is {file: options} or {title: {y: {file: column}}}."""
    files = set()
    for entry in plots:
        ((name, options),) = entry.items()
        y = (options or {}).get("y")
        files |= set(y) if isinstance(y, dict) else {name}
    return files


def test_every_stage_series_is_plotted():
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    assert plotted_files(dvc["plots"]) == SERIES


def test_every_plotted_file_is_inside_a_stage_report_folder():
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    folders = [
        next(iter(out)) if isinstance(out, dict) else out
        for stage in dvc["stages"].values()
        for out in stage.get("outs", [])
    ]
    for file in plotted_files(dvc["plots"]):
        assert any(file.startswith(f"{folder}/") for folder in folders), file
