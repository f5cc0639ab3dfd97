"""KFP lightweight wrappers of KnowTuning's own stages; each calls its DVC stage's `run()`. The base
model and the SFT runs are the pretrain and finetune components, given KnowTuning's sections."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def knowtuning_data_op(
    profile: str,
    params: dict,
    data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Build the entity world (or load the user's records), validate, write the splits."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.knowtuning.data_step import run
    from components.knowtuning.params import KnowTuningDataParams

    section = validate_section(KnowTuningDataParams, params, "knowtuning_data")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(reports.path)))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def knowtuning_augment_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    base: Input[Model],
    ka_data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Knowledge augmentation: the hardest facts of each answer as fine-grained QA pairs."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir
    from components.common.params import validate_section
    from components.knowtuning.augment_step import run
    from components.knowtuning.params import KnowTuningParams

    values = run(
        validate_section(KnowTuningParams, params, "knowtuning"),
        profile,
        Path(data.path),
        model_input_dir(base, workspace),
        Path(ka_data.path),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def knowtuning_compare_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    init: Input[Model],
    pairs: Output[Dataset],
    model: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Knowledge comparison: a negative per aspect, DPO with an SFT term from the KA model."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir, model_output_dir
    from components.common.params import validate_section
    from components.knowtuning.compare_step import run
    from components.knowtuning.params import KnowTuningParams

    values = run(
        validate_section(KnowTuningParams, params, "knowtuning"),
        profile,
        Path(data.path),
        model_input_dir(init, workspace),
        Path(pairs.path),
        model_output_dir(model, workspace),
        Path(reports.path),
    )
    log_step_metrics(metrics, values)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def knowtuning_evaluate_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    sft: Input[Model],
    ka: Input[Model],
    kt: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    workspace: str = "",
):
    """Completeness, factuality and logicality of SFT, KA and KnowTuning; register KnowTuning."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics, model_input_dir
    from components.common.params import validate_section
    from components.knowtuning.evaluate_step import run
    from components.knowtuning.params import KnowTuningParams

    models = {
        name: model_input_dir(artifact, workspace)
        for name, artifact in (("sft", sft), ("ka", ka), ("kt", kt))
    }
    values = run(
        validate_section(KnowTuningParams, params, "knowtuning"),
        profile,
        Path(data.path),
        models,
        Path(reports.path),
    )
    log_step_metrics(metrics, values)
