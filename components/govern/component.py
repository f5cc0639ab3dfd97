"""KFP lightweight wrappers of GOVERN's stages; each calls its DVC stage's `run()`."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def govern_data_op(
    profile: str,
    params: dict,
    data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Draw the synthetic teachers (or load the user's samples and teacher outputs), validate."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.govern.data_step import run
    from components.govern.params import GovernDataParams

    section = validate_section(GovernDataParams, params, "govern_data")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(reports.path)))


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def govern_distill_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    students: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Distill the student by GOVERN's vote, and the baselines' students beside it."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.govern.distill_step import run
    from components.govern.params import GovernParams

    section = validate_section(GovernParams, params, "govern")
    result = run(section, profile, Path(data.path), Path(students.path), Path(reports.path))
    log_step_metrics(metrics, result)


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def govern_evaluate_op(
    profile: str,
    params: dict,
    data: Input[Dataset],
    students: Input[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Score every student against the teachers; register the deployed one (champion on AUC)."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.govern.evaluate_step import run
    from components.govern.params import GovernParams

    section = validate_section(GovernParams, params, "govern")
    result = run(section, profile, Path(data.path), Path(students.path), Path(reports.path))
    log_step_metrics(metrics, result)
