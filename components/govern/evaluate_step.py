"""govern_evaluate: every student against the teachers and their ensemble on the test split; the
deployed student registered as `govern-student` (champion moves only on a better test AUC).

    python -m components.govern evaluate --data data/govern --model models/govern

Metrics: per student and per teacher, `<name>.auc` and `<name>.accuracy` (logit > 0 against the
label); `ensemble_mean.auc` and `ensemble_median.auc` (the teachers' mean and median logit: what
the student replaces); `<student>.retention` = its AUC / the mean ensemble's (the paper: 99.5 %).
`<teacher>.majority_share`: how often the teacher is in the deployed student's majority on test
(the vote taken against that student); in the synthetic world also `<teacher>.outvoted_when_wrong`,
the share of its large errors (|t_k - f*| > 1) on which it is outside the majority."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import read_json, write_json
from components.common.metrics import auroc
from components.common.params import Profile
from components.common.plots import bar_plot
from components.common.repro import seed_everything
from components.common.tracking import register_and_promote, step_run
from components.govern.params import GovernParams, GovernStep
from components.govern.samples import Split, read_splits

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that use it: `--help` and a params error load no ML library
log = logging.getLogger(__name__)
REGISTERED_NAME = "govern-student"
MODEL_REQUIREMENTS = ["torch==2.13.0"]
LARGE_ERROR = 1.0


def scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {
        "auc": auroc(logits.tolist(), (labels == 1).tolist()),
        "accuracy": float(((logits > 0) == (labels == 1)).mean()),
    }


def reference_scores(test: Split, names: list[str]) -> dict[str, float]:
    """What a student is measured against: each teacher's scores and the teachers' mean and
    median logits' (`<teacher>.auc`, `ensemble_mean.auc`, ...)."""
    references = {name: test.teachers[:, k] for k, name in enumerate(names)}
    references["ensemble_mean"] = test.teachers.mean(axis=1)
    references["ensemble_median"] = np.median(test.teachers, axis=1)
    return {
        f"{name}.{m}": v
        for name, logits in references.items()
        for m, v in scores(logits, test.labels).items()
    }


def majority_membership(test: Split, student_logits: np.ndarray, eps: float) -> np.ndarray:
    """(n, K) booleans: teacher k is in the majority orientation on sample i."""
    import torch

    from components.govern import losses

    teachers = torch.as_tensor(test.teachers)
    votes = losses.orientations(teachers, torch.as_tensor(student_logits), eps)
    majority = torch.sign(votes.sum(dim=1))
    return ((votes == majority[:, None]) & (majority[:, None] != 0)).numpy()


def load_students(model_dir: Path) -> tuple[dict[str, torch.nn.Module], dict]:
    import torch

    from components.govern import student as st

    info = read_json(model_dir / "students.json")
    students = {}
    for name in info["students"]:
        model = st.build_student(info["dim"], info["hidden"])
        model.load_state_dict(torch.load(model_dir / f"{name}.pt", weights_only=True))
        students[name] = model.eval()
    return students, info


def run(
    params: GovernParams, profile: Profile, data_dir: Path, model_dir: Path, report_dir: Path
) -> dict[str, float]:
    import mlflow

    from components.govern import student as st

    seed_everything(params.seed)
    with step_run("govern_evaluate", profile, params):
        splits, names = read_splits(data_dir)
        test = splits["test"]
        students, info = load_students(model_dir)
        logits = {name: st.predict(model, test.features) for name, model in students.items()}
        metrics: dict[str, float] = {}
        for name, value in logits.items():
            metrics |= {f"{name}.{k}": v for k, v in scores(value, test.labels).items()}
        metrics |= reference_scores(test, names)
        for name in logits:
            metrics[f"{name}.retention"] = metrics[f"{name}.auc"] / metrics["ensemble_mean.auc"]
        deployed = info["deployed"]
        member = majority_membership(test, logits[deployed], params.eps)
        wrong = (
            np.abs(test.teachers - test.truth[:, None]) > LARGE_ERROR if len(test.truth) else None
        )
        for k, teacher in enumerate(names):
            metrics[f"{teacher}.majority_share"] = float(member[:, k].mean())
            if wrong is not None and wrong[:, k].any():
                metrics[f"{teacher}.outvoted_when_wrong"] = float((~member[wrong[:, k], k]).mean())
        mlflow.log_metrics(metrics)
        plots = [
            bar_plot(
                {n: metrics[f"{n}.auc"] for n in [*logits, "ensemble_mean", "ensemble_median"]},
                report_dir / "auc.png",
                title="test AUC: students and the teachers' ensembles",
                ylabel="AUC",
            ),
            bar_plot(
                {t: metrics[f"{t}.majority_share"] for t in names},
                report_dir / "majority_share.png",
                title=f"how often each teacher is in the majority ({deployed})",
                ylabel="share of test samples",
            ),
        ]
        for png in plots:
            mlflow.log_artifact(str(png), artifact_path="plots")
        model_info = mlflow.pytorch.log_model(
            students[deployed],
            name="model",
            serialization_format="pickle",
            pip_requirements=MODEL_REQUIREMENTS,
            input_example=test.features[:2],
        )
        metrics |= register_and_promote(
            model_info.model_uri,
            REGISTERED_NAME,
            "test_auc",
            metrics[f"{deployed}.auc"],
            tags={"profile": profile, "student": deployed, "teachers": ",".join(names)},
        )
        write_json(report_dir / "summary.json", metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.govern evaluate", __doc__, GovernStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/govern", "govern_data's output"),
        model=("models/govern", "govern_distill's students"),
    )
    path_arguments(
        parser, "outputs", reports=("reports/govern/evaluate", "summary.json and the plots")
    )
    args = parser.parse_args(argv)
    return step_main(
        "govern_evaluate",
        args,
        GovernStep,
        lambda p: run(p.govern, p.profile, args.data, args.model, args.reports),
    )
