from kfp import dsl
from kfp.dsl import Artifact, Dataset, Metrics, Output

from components.common.images import CPU_IMAGE


@dsl.component(base_image=CPU_IMAGE, install_kfp_package=False)
def ct_data_op(
    profile: str,
    params: dict,
    data: Output[Dataset],
    reports: Output[Artifact],
    metrics: Output[Metrics],
):
    """Generate the synthetic multi-site CT benchmark (or reference MSD folders), check volumes."""
    from pathlib import Path

    from components.common.kfp_outputs import log_step_metrics
    from components.common.params import validate_section
    from components.ct_data.params import CtDataParams
    from components.ct_data.step import run

    section = validate_section(CtDataParams, params, "ct_data")
    log_step_metrics(metrics, run(section, profile, Path(data.path), Path(reports.path)))
