"""govern_distill: the student distilled from the cached teacher outputs by GOVERN's vote, and the
baselines' students beside it (same student, same data, same steps; only the target differs).

    python -m components.govern distill --data data/govern --out models/govern

Students: `govern.rule` (GOVERN by default) and every rule of `govern.baselines`, each on the
unlabeled split (`labels` on the labeled split alone). With `govern.supervised` and a labeled
split, the rule's student then goes through the supervised stage twice, once with GOVERN's
label-selected teachers (`supervised_govern`) and once with BCE + mean-KD (`supervised_mean_kd`).
The single best teacher is the one with the best AUC on the dev split (labels only there).

Outputs in `out_dir`: <student>.pt (state dicts) and students.json (the architecture, each
student's rule, the best teacher, the student registered by govern_evaluate)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, write_json
from components.common.metrics import auroc
from components.common.params import Profile
from components.common.plots import line_plot
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.govern.params import GovernParams, GovernStep
from components.govern.samples import Split, read_splits

if TYPE_CHECKING:
    import torch

# torch is imported by the functions that train: `--help` and a params error load no ML library
log = logging.getLogger(__name__)


def best_teacher(splits: dict[str, Split], needed: bool) -> int:
    """The index of the teacher with the best dev AUC (0 when no student needs it)."""
    dev = splits.get("dev")
    if dev is None:
        if needed:
            raise ProjectError(
                "the best_single baseline needs a labeled dev split", field="govern.baselines"
            )
        return 0
    scores = [auroc(dev.teachers[:, k], dev.labels == 1) for k in range(dev.teachers.shape[1])]
    return max(range(len(scores)), key=scores.__getitem__)


def train_students(
    params: GovernParams, splits: dict[str, Split], best: int
) -> tuple[dict[str, torch.nn.Module], dict[str, list[dict[str, float]]]]:
    """Every student of `params` (same initial weights), and its loss per epoch."""
    import torch

    from components.govern import student as st

    dim = splits["unlabeled"].features.shape[1]
    torch.manual_seed(params.seed)
    initial = st.build_student(dim, params.hidden)
    students, histories = {}, {}
    for rule in dict.fromkeys((params.rule, *params.baselines)):
        if rule == "labels" and "labeled" not in splits:
            raise ProjectError(
                "the labels baseline needs a labeled split", field="govern.baselines"
            )
        data = splits["labeled" if rule == "labels" else "unlabeled"]
        model = copy.deepcopy(initial)
        loss_of = st.label_free_loss(rule, params, best)
        batch = st.as_batch(data.features, data.teachers, data.labels)
        histories[rule] = st.fit(model, batch, loss_of, params, params.epochs, params.seed)
        students[rule] = model
        log.info("govern_distill: %s student, final loss %.4f", rule, histories[rule][-1]["loss"])
    if params.supervised and "labeled" in splits:
        labeled = splits["labeled"]
        batch = st.as_batch(labeled.features, labeled.teachers, labeled.labels)
        for rule in ("govern", "mean_kd"):
            name = f"supervised_{rule}"
            model = copy.deepcopy(students[params.rule])
            loss_of = st.supervised_stage_loss(params, rule)
            histories[name] = st.fit(
                model, batch, loss_of, params, params.supervised_epochs, params.seed
            )
            students[name] = model
    return students, histories


def run(
    params: GovernParams, profile: Profile, data_dir: Path, out_dir: Path, report_dir: Path
) -> dict[str, float]:
    import mlflow
    import torch

    seed_everything(params.seed)
    with step_run("govern_distill", profile, params):
        splits, names = read_splits(data_dir)
        best = best_teacher(splits, "best_single" in (params.rule, *params.baselines))
        students, histories = train_students(params, splits, best)
        deployed = "supervised_govern" if "supervised_govern" in students else params.rule
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            for name, model in students.items():
                torch.save(model.state_dict(), tmp / f"{name}.pt")
            write_json(
                tmp / "students.json",
                {
                    "dim": splits["unlabeled"].features.shape[1],
                    "hidden": params.hidden,
                    "students": list(students),
                    "deployed": deployed,
                    "best_teacher": names[best],
                },
            )
        png = line_plot(
            {
                name: ([h["epoch"] for h in history], [h["loss"] for h in history])
                for name, history in histories.items()
            },
            report_dir / "loss.png",
            title="govern students: training loss",
            xlabel="epoch",
            ylabel="loss",
        )
        mlflow.log_artifact(str(png), artifact_path="plots")
        metrics = {f"{name}.final_loss": h[-1]["loss"] for name, h in histories.items()}
        mlflow.log_metrics(metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.govern distill", __doc__, GovernStep)
    path_arguments(parser, "inputs", data=("data/govern", "govern_data's output"))
    path_arguments(
        parser,
        "outputs",
        out=("models/govern", "<student>.pt and students.json"),
        reports=("reports/govern/distill", "the loss curves"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "govern_distill",
        args,
        GovernStep,
        lambda p: run(p.govern, p.profile, args.data, args.out, args.reports),
    )
