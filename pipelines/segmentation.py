"""ct_data → seg_train → seg_evaluate as a KFP v2 pipeline (dual-task pancreas lesion
segmentation, leave-one-domain-out), with params.yaml's sections as parameters plus the GPU
scheduling of pipelines/tasks.py; each task calls the same `run()` as its DVC stage."""

from kfp import dsl

from components.ct_data.component import ct_data_op
from components.seg_train.component import seg_evaluate_op, seg_train_op
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
        name="pancreas-segmentation",
        description="Synthetic multi-site CT → dual-task SegResNet → LODO eval + registry",
    )
    @described("Dual-task pancreas lesion segmentation, leave-one-domain-out.")
    def segmentation(
        profile: str = defaults["profile"],
        ct_data: dict = defaults["ct_data"],
        seg_train: dict = defaults["seg_train"],
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
        prepared = with_lineage_env(ct_data_op)(profile=profile, params=ct_data, **lineage)
        data = on_cpu(with_mlflow(prepared)).outputs["data"]
        trained = with_lineage_env(seg_train_op)(
            profile=profile, params=seg_train, data=data, **lineage
        )
        on_gpu(with_mlflow(trained), gpu)
        # sliding-window inference on whole volumes, then registry promotion
        evaluated = with_lineage_env(seg_evaluate_op)(
            profile=profile,
            params=seg_train,
            data=data,
            model=trained.outputs["model"],
            **lineage,
        )
        on_gpu(with_mlflow(evaluated), gpu)

    return segmentation
