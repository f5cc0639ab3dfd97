from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def finetune_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    base: Input[Model],
    model: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Supervised fine-tuning of the base model on the training split. With a workspace, its
    checkpoints go there, so a retry of this task resumes instead of starting over."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir, model_output_dir
    from components.common.params import validate_section
    from components.epi_finetune.params import FinetuneParams
    from components.epi_finetune.step import run

    values = run(
        validate_section(FinetuneParams, params, "finetune"),
        profile,
        Path(data.path),
        model_input_dir(base, workspace),
        model_output_dir(model, workspace),
        Path(reports.path),
        checkpoint_root=Path(workspace) / "checkpoints" if workspace else Path("checkpoints"),
    )
    log_step_metrics(metrics, values)
