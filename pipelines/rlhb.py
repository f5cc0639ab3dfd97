"""rlhb_data → rlhb_train → rlhb_evaluate, as a KFP v2 pipeline.

The logs are prepared on CPU; the generator's SFT and RL, and its sampling in evaluation, run on
the GPU nodes of `pipelines/tasks.py`. Each task calls the same `run()` as its DVC stage."""

from kfp import dsl

from components.rlhb.component import rlhb_data_op, rlhb_evaluate_op, rlhb_train_op
from pipelines.params import ProjectParams
from pipelines.tasks import (
    GPU_DEFAULTS,
    GpuSettings,
    described,
    lineage_arguments,
    on_cpu,
    on_gpu,
    with_lineage_env,
    with_mlflow,
)


def build_pipeline(params: ProjectParams):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null

    @dsl.pipeline(
        name="rlhb",
        description="Behaviour logs → behaviour-conditioned SFT → adversarial RL against a "
        "discriminator of real (query, response, behaviour) triplets → evaluation under b*",
    )
    @described("RLHB: aligning a generator directly on logged user behaviour.")
    def rlhb(
        profile: str = defaults["profile"],
        model: dict = defaults["model"],
        rlhb_data: dict = defaults["rlhb_data"],
        rlhb: dict = defaults["rlhb"],
        accelerator_type: str = GPU_DEFAULTS["accelerator_type"],
        accelerator_count: int = GPU_DEFAULTS["accelerator_count"],
        cpu: str = GPU_DEFAULTS["cpu"],
        memory: str = GPU_DEFAULTS["memory"],
        tolerations: list = GPU_DEFAULTS["tolerations"],
        node_selector: dict = GPU_DEFAULTS["node_selector"],
        pipeline_version: str = "local",
    ):
        gpu = GpuSettings(
            accelerator_type, accelerator_count, cpu, memory, tolerations, node_selector
        )
        lineage = lineage_arguments(pipeline_version)
        prepared = with_lineage_env(rlhb_data_op)(profile=profile, params=rlhb_data, **lineage)
        data = on_cpu(with_mlflow(prepared)).outputs["data"]
        trained = with_lineage_env(rlhb_train_op)(
            profile=profile, model_params=model, params=rlhb, data=data, **lineage
        )
        on_gpu(with_mlflow(trained), gpu)
        evaluated = with_lineage_env(rlhb_evaluate_op)(
            profile=profile,
            params=rlhb,
            data=data,
            generators=trained.outputs["generators"],
            **lineage,
        )
        on_gpu(with_mlflow(evaluated), gpu)

    return rlhb
