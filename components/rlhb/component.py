"""KFP lightweight wrappers of RLHB's stages; each calls its DVC stage's `run()`."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def rlhb_data_op(
    profile: str,
    params: dict,
    data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Simulate the search service's logs (or load the user's), validate, bin, write as text."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.rlhb.data_step import run
    from components.rlhb.params import RlhbDataParams

    section = validate_section(RlhbDataParams, params, "rlhb_data")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(reports.path)))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def rlhb_train_op(
    profile: str,
    model_params: dict,
    params: dict,
    data: Input[Dataset],
    generators: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Behaviour-conditioned SFT, then RLHB's adversarial RL and the listed baselines' RL."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import ModelParams, validate_section
    from components.rlhb.params import RlhbParams
    from components.rlhb.train_step import run

    section = validate_section(RlhbParams, params, "rlhb")
    model = validate_section(ModelParams, model_params, "model")
    result = run(
        section, profile, model, Path(data.path), Path(generators.path), Path(reports.path)
    )
    log_step_metrics(metrics, result)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def rlhb_evaluate_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    generators: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Every generator under b*, scored by the hidden utility; register the RLHB generator."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.rlhb.evaluate_step import run
    from components.rlhb.params import RlhbParams

    section = validate_section(RlhbParams, params, "rlhb")
    result = run(section, profile, Path(data.path), Path(generators.path), Path(reports.path))
    log_step_metrics(metrics, result)
