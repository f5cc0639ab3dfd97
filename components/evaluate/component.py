from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def evaluate_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    model: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Exact-match accuracy per task; register the model and promote it if it is better."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir
    from components.common.params import validate_section
    from components.evaluate.params import EvaluateParams
    from components.evaluate.step import run

    values = run(
        validate_section(EvaluateParams, params, "evaluate"),
        profile,
        Path(data.path),
        model_input_dir(model, workspace),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)
