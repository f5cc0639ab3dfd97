from kfp import dsl
from kfp.dsl import Artifact, Dataset, Metrics, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def data_prep_op(
    profile: str,
    params: dict,
    data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Build or load the SFT set and corpus, validate with Great Expectations, write them."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.data_prep.params import DataPrepParams
    from components.data_prep.step import run

    section = validate_section(DataPrepParams, params, "data_prep")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(reports.path)))
