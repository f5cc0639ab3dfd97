"""seg_evaluate: lesion metrics on the in-domain validation cases and on the held-out domains,
PNG overlays, the model logged with mlflow.pytorch and registered as `pancreas-seg` (challenger),
promoted to champion only on a better validation score.

CLI: `python -m components.seg_train evaluate --params params.yaml [--set k=v]`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import ProjectError, atomic_path, write_json
from components.common.msd import read_domains
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import register_and_promote, step_run
from components.seg_train.overlays import overlay_figure
from components.seg_train.params import SegTrainParams, SegTrainStep

# torch, MONAI and MLflow are imported by the functions that use them, so that `--help` and a
# params error are instant
if TYPE_CHECKING:
    from components.seg_train.network import DualTaskSegResNet

# what the registered model needs at serving time; listing it skips MLflow's slow inference
MODEL_REQUIREMENTS = ["torch==2.13.0", "monai==1.6.1", "nibabel==5.4.2"]


def evaluation_cases(params: SegTrainParams, data_dir: Path) -> list[dict]:
    """Validation (held-out cases of the training domains) and test (of the held-out domains)."""
    from components.seg_train.train import split_cases

    domains = read_domains(data_dir)
    n = params.holdout_per_domain
    _, val = split_cases(domains, params.train_domains, n, "seg_train.train_domains")
    _, test = split_cases(domains, params.test_domains, n, "seg_train.test_domains")
    return [{**c, "split": "val"} for c in val] + [{**c, "split": "test"} for c in test]


def evaluate_cases(
    model: DualTaskSegResNet, cases: list[dict], params: SegTrainParams, keep: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-case metric rows, and (image, label, prediction) of the first `keep` cases of each
    domain for overlays."""
    from components.seg_train.infer import predict_probability, segment
    from components.seg_train.metrics import case_metrics
    from components.seg_train.transforms import eval_transforms

    transforms = eval_transforms(params, model.divisor)
    rows, examples = [], []
    for case in cases:
        data = transforms({"image": case["image"], "label": case["label"]})
        image, label = data["image"][None], data["label"][None]
        prediction = segment(
            predict_probability(model, image.as_tensor(), params.inference), params.inference
        )
        spacing = [float(s) for s in data["image"].pixdim]
        row = {
            "id": case["id"],
            "domain": case["domain"],
            "split": case["split"],
            **case_metrics(prediction, label.as_tensor(), spacing),
        }
        rows.append(row)
        if sum(e["domain"] == case["domain"] for e in examples) < keep:
            examples.append(
                {
                    "name": case["id"],
                    "domain": case["domain"],
                    "image": np.asarray(image[0, 0], dtype=np.float32),
                    "masks": {
                        "label": np.asarray(label[0, 0], dtype=np.uint8),
                        f"prediction (Dice {row['dice']:.2f})": np.asarray(
                            prediction[0, 0], dtype=np.uint8
                        ),
                    },
                }
            )
    return rows, examples


def write_case_table(rows: list[dict], path: Path) -> None:
    from components.seg_train.metrics import METRICS

    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "domain", "split", *METRICS])
        writer.writeheader()
        writer.writerows(rows)


def run(
    params: SegTrainParams, profile: Profile, data_dir: Path, model_dir: Path, report_dir: Path
) -> dict[str, float]:
    import mlflow

    from components.seg_train.metrics import summarize
    from components.seg_train.train import load_model

    seed_everything(params.seed)
    with step_run("seg_evaluate", profile, params):
        model = load_model(model_dir)
        rows, examples = evaluate_cases(
            model, evaluation_cases(params, data_dir), params, keep=params.overlay_cases
        )
        metrics = summarize(rows)
        if params.promote_metric not in metrics:
            raise ProjectError(
                f"unknown metric {params.promote_metric!r}; have {sorted(metrics)}",
                field="seg_train.promote_metric",
            )
        mlflow.log_metrics(metrics)
        write_case_table(rows, report_dir / "cases.csv")
        mlflow.log_artifact(str(report_dir / "cases.csv"))
        for domain in dict.fromkeys(e["domain"] for e in examples):
            shown = [e for e in examples if e["domain"] == domain]
            split = "held-out domain" if domain in params.test_domains else "in-domain validation"
            png = overlay_figure(
                shown, report_dir / f"overlay_{domain}.png", title=f"{domain} ({split})"
            )
            mlflow.log_artifact(str(png), artifact_path="overlays")

        # pickle, not pt2: the exported graph would fix the input size; ours varies with the ROI
        info = mlflow.pytorch.log_model(
            model,
            name="model",
            serialization_format="pickle",
            pip_requirements=MODEL_REQUIREMENTS,
        )
        mlflow.log_dict(model.config, "model/seg_config.json")
        metrics |= register_and_promote(
            info.model_uri,
            params.registered_model_name,
            params.promote_metric,
            metrics[params.promote_metric],
            params.greater_is_better,
            tags={"profile": profile, "test_domains": ",".join(params.test_domains)},
        )
        write_json(report_dir / "summary.json", metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser(
        "components.seg_train evaluate",
        "Evaluate, register and maybe promote the segmentation model.",
        SegTrainStep,
    )
    path_arguments(
        parser,
        "inputs",
        data=("data/ct", "ct_data's output: the CT volumes per domain"),
        model=("models/seg", "seg_train's output: the network to evaluate and register"),
    )
    path_arguments(
        parser,
        "outputs",
        reports=(
            "reports/seg/evaluate",
            "cases.csv (Dice, HD95, precision, recall per case), summary.json, overlays",
        ),
    )
    args = parser.parse_args(argv)
    return step_main(
        "seg_evaluate",
        args,
        SegTrainStep,
        lambda p: run(p.seg_train, p.profile, args.data, args.model, args.reports),
    )
