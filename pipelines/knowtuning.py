"""knowtuning_data → base → SFT → KA data → KA SFT → KC (DPO) → evaluate as a KFP v2 pipeline.

The base model and both SFT runs are the pretrain and finetune components, given KnowTuning's own
sections (`knowtuning_base`, `knowtuning_sft`), as the DVC stages give them with `--section`. Each
task calls the same `run()` as its DVC stage; models go through the run's workspace PVC instead of
artifacts when `pipelines.tasks.uses_workspace` says so."""

from kfp import dsl

from components.epi_finetune.component import finetune_op
from components.knowtuning.component import (
    knowtuning_augment_op,
    knowtuning_compare_op,
    knowtuning_data_op,
    knowtuning_evaluate_op,
)
from components.pretrain.component import pretrain_op
from pipelines.params import ProjectParams
from pipelines.tasks import (
    GPU_DEFAULTS,
    WORKSPACE_DEFAULTS,
    GpuSettings,
    described,
    lineage_arguments,
    on_cpu,
    on_gpu,
    uses_workspace,
    with_lineage_env,
    with_mlflow,
    workspace_config,
)


def build_pipeline(
    params: ProjectParams,
    models_in_workspace: bool | None = None,
    *,
    workspace_size: str = WORKSPACE_DEFAULTS["workspace_size"],
    workspace_storage_class: str | None = WORKSPACE_DEFAULTS["workspace_storage_class"],
    workspace_access_mode: str = WORKSPACE_DEFAULTS["workspace_access_mode"],
):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null
    in_workspace = uses_workspace(params, models_in_workspace)
    workspace = dsl.WORKSPACE_PATH_PLACEHOLDER if in_workspace else ""
    config = workspace_config(workspace_size, workspace_storage_class, workspace_access_mode)

    @dsl.pipeline(
        name="knowtuning",
        description="Entity world → base → SFT → knowledge augmentation → knowledge comparison "
        "(DPO) → completeness, factuality, logicality",
        pipeline_config=config if in_workspace else None,
    )
    @described("KnowTuning: knowledge-aware fine-tuning (KA + KC) against vanilla SFT.")
    def knowtuning(
        profile: str = defaults["profile"],
        model: dict = defaults["model"],
        knowtuning_data: dict = defaults["knowtuning_data"],
        knowtuning_base: dict = defaults["knowtuning_base"],
        knowtuning_sft: dict = defaults["knowtuning_sft"],
        knowtuning: dict = defaults["knowtuning"],
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
        prepared = with_lineage_env(knowtuning_data_op)(
            profile=profile, params=knowtuning_data, **lineage
        )
        data = on_cpu(with_mlflow(prepared)).outputs["data"]
        base = with_lineage_env(pretrain_op)(
            profile=profile,
            model_params=model,
            params=knowtuning_base,
            data=data,
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(base), gpu)
        sft = with_lineage_env(finetune_op)(
            profile=profile,
            params=knowtuning_sft,
            data=data,
            base=base.outputs["model"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(sft), gpu)
        augmented = with_lineage_env(knowtuning_augment_op)(
            profile=profile,
            params=knowtuning,
            data=data,
            base=base.outputs["model"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(augmented), gpu)
        ka = with_lineage_env(finetune_op)(
            profile=profile,
            params=knowtuning_sft,
            data=augmented.outputs["ka_data"],
            base=base.outputs["model"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(ka), gpu)
        compared = with_lineage_env(knowtuning_compare_op)(
            profile=profile,
            params=knowtuning,
            data=data,
            init=ka.outputs["model"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(compared), gpu)
        evaluated = with_lineage_env(knowtuning_evaluate_op)(
            profile=profile,
            params=knowtuning,
            data=data,
            sft=sft.outputs["model"],
            ka=ka.outputs["model"],
            kt=compared.outputs["model"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(evaluated), gpu)

    return knowtuning
