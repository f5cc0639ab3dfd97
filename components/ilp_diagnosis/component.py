from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def ilp_diagnosis_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    base: Input[Model],
    sft: Input[Model],
    finetune_reports: Input[Artifact],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Find the training records SFT failed to learn and attribute each to a cause."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir
    from components.common.params import validate_section
    from components.ilp_diagnosis.params import IlpParams
    from components.ilp_diagnosis.step import run

    values = run(
        validate_section(IlpParams, params, "ilp_diagnosis"),
        profile,
        Path(data.path),
        model_input_dir(base, workspace),
        model_input_dir(sft, workspace),
        Path(finetune_reports.path) / "dynamics.csv",
        Path(reports.path),
    )
    log_step_metrics(metrics, values)
