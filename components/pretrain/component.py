from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def pretrain_op(
    profile: str,
    model_params: dict,
    params: dict,
    data: Input[Dataset],
    model: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Pretrain the tiny base model on the corpus, or materialise a pretrained base."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_output_dir
    from components.common.params import ModelParams, validate_section
    from components.pretrain.params import PretrainParams
    from components.pretrain.step import run

    values = run(
        validate_section(PretrainParams, params, "pretrain"),
        validate_section(ModelParams, model_params, "model"),
        profile,
        Path(data.path),
        model_output_dir(model, workspace),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)
