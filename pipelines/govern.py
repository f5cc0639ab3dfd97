"""govern_data → govern_distill → govern_evaluate, as a KFP v2 pipeline.

Every task runs on CPU: the teachers' outputs are cached in the data (computed once, wherever the
teachers ran), and the student is the small model the method exists to make cheap. Each task calls
the same `run()` as its DVC stage."""

from kfp import dsl

from components.govern.component import govern_data_op, govern_distill_op, govern_evaluate_op
from pipelines.params import ProjectParams
from pipelines.tasks import (
    described,
    lineage_arguments,
    never_cached,
    on_cpu,
    with_lineage_env,
    with_mlflow,
)


def build_pipeline(params: ProjectParams):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null

    @dsl.pipeline(
        name="govern",
        description="Samples with cached teacher outputs → students distilled by the teachers' "
        "orientation vote (and the baselines' targets) → evaluation against the teachers",
    )
    @described("GOVERN: label-free multi-teacher distillation by a vote of gradient orientations.")
    def govern(
        profile: str = defaults["profile"],
        govern_data: dict = defaults["govern_data"],
        govern: dict = defaults["govern"],
        pipeline_version: str = "local",
    ):
        lineage = lineage_arguments(pipeline_version)
        prepared = with_lineage_env(govern_data_op)(profile=profile, params=govern_data, **lineage)
        data = on_cpu(with_mlflow(prepared)).outputs["data"]
        distilled = with_lineage_env(govern_distill_op)(
            profile=profile, params=govern, data=data, **lineage
        )
        never_cached(on_cpu(with_mlflow(distilled)))
        evaluated = with_lineage_env(govern_evaluate_op)(
            profile=profile,
            params=govern,
            data=data,
            students=distilled.outputs["students"],
            **lineage,
        )
        never_cached(on_cpu(with_mlflow(evaluated)))

    return govern
