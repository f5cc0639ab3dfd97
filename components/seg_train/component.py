from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def seg_train_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    model: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Train the dual-task segmentation network on the training domains."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.seg_train.params import SegTrainParams
    from components.seg_train.train_step import run

    values = run(
        validate_section(SegTrainParams, params, "seg_train"),
        profile,
        Path(data.path),
        Path(model.path),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def seg_evaluate_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    model: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Per-domain Dice/HD95/precision/recall, overlays; register pancreas-seg, maybe promote."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.seg_train.evaluate_step import run
    from components.seg_train.params import SegTrainParams

    values = run(
        validate_section(SegTrainParams, params, "seg_train"),
        profile,
        Path(data.path),
        Path(model.path),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)
