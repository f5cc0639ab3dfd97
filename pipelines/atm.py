"""atm_data → MiniLM index → retrieval → base → warm-up generator and attacker → adversarial
rounds → attacked evaluation, as a KFP v2 pipeline.

The base model and both warm-ups are the pretrain and finetune components, given ATM's sections
(`atm_model`, `atm_base`, `atm_sft`), as the DVC stages give them with `--section`. Each task calls
the same `run()` as its DVC stage; models go through the run's workspace PVC instead of artifacts
when `pipelines.tasks.uses_workspace` says so."""

from kfp import dsl

from components.atm.component import (
    atm_data_op,
    atm_evaluate_op,
    atm_index_op,
    atm_retrieve_op,
    atm_rounds_op,
)
from components.epi_finetune.component import finetune_op
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
        name="atm",
        description="People world → MiniLM index → retrieval → warm-up generator and attacker → "
        "adversarial rounds (attacker DPO, generator MITO) → EM under held-out attacks",
        pipeline_config=config if in_workspace else None,
    )
    @described("ATM: adversarial tuning of a retrieval-augmented generator against fabrications.")
    def atm(
        profile: str = defaults["profile"],
        atm_model: dict = defaults["atm_model"],
        atm_data: dict = defaults["atm_data"],
        atm_retrieve: dict = defaults["atm_retrieve"],
        atm_base: dict = defaults["atm_base"],
        atm_sft: dict = defaults["atm_sft"],
        atm: dict = defaults["atm"],
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
        prepared = with_lineage_env(atm_data_op)(profile=profile, params=atm_data, **lineage)
        data = on_cpu(with_mlflow(prepared)).outputs["data"]
        indexed = with_lineage_env(atm_index_op)(
            profile=profile, params=atm_retrieve, data=data, **lineage
        )
        on_cpu(with_mlflow(indexed))
        retrieved = with_lineage_env(atm_retrieve_op)(
            profile=profile,
            params=atm_retrieve,
            data=data,
            index=indexed.outputs["index"],
            **lineage,
        )
        on_cpu(with_mlflow(retrieved))
        base = with_lineage_env(pretrain_op)(
            profile=profile,
            model_params=atm_model,
            params=atm_base,
            data=data,
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(base), gpu)
        warmed = {}
        for name in ("generator_warmup", "attacker_warmup"):
            warmup = with_lineage_env(finetune_op)(
                profile=profile,
                params=atm_sft,
                data=retrieved.outputs[name],
                base=base.outputs["model"],
                workspace=workspace,
                **lineage,
            )
            warmed[name] = on_gpu(with_mlflow(warmup.set_display_name(name)), gpu)
        rounds = with_lineage_env(atm_rounds_op)(
            profile=profile,
            params=atm,
            retrieved=retrieved.outputs["retrieved"],
            generator=warmed["generator_warmup"].outputs["model"],
            attacker=warmed["attacker_warmup"].outputs["model"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(rounds), gpu)
        evaluated = with_lineage_env(atm_evaluate_op)(
            profile=profile,
            params=atm,
            data=data,
            retrieved=retrieved.outputs["retrieved"],
            sft=warmed["generator_warmup"].outputs["model"],
            adversarial=rounds.outputs["adversarial"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(evaluated), gpu)

    return atm
