"""The three pipelines (llm, reward, segmentation) side by side as one KFP run: each is a
sub-DAG with the same parameters it has on its own, and the GPU scheduling is shared. With a
ReadWriteOnce workspace, the reward sub-DAG waits for the llm one: both mount the workspace."""

from kfp import dsl

from pipelines import llm, reward, segmentation
from pipelines.params import ProjectParams
from pipelines.tasks import (
    GPU_DEFAULTS,
    SHARED_ACCESS_MODE,
    WORKSPACE_DEFAULTS,
    described,
    uses_workspace,
    workspace_config,
)


def build_pipeline(
    params: ProjectParams,
    finetune_nodes: int = 1,
    models_in_workspace: bool | None = None,
    *,
    workspace_size: str = WORKSPACE_DEFAULTS["workspace_size"],
    workspace_storage_class: str | None = WORKSPACE_DEFAULTS["workspace_storage_class"],
    workspace_access_mode: str = WORKSPACE_DEFAULTS["workspace_access_mode"],
):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null
    in_workspace = uses_workspace(params, models_in_workspace, finetune_nodes)
    workspace = {
        "workspace_size": workspace_size,
        "workspace_storage_class": workspace_storage_class,
        "workspace_access_mode": workspace_access_mode,
    }
    llm_pipeline = llm.build_pipeline(params, finetune_nodes, in_workspace, **workspace)
    reward_pipeline = reward.build_pipeline(params, in_workspace, **workspace)
    segmentation_pipeline = segmentation.build_pipeline(params)
    # built (and so checked) even when unused: a bad option fails every compile
    config = workspace_config(
        workspace_size, workspace_storage_class, workspace_access_mode, finetune_nodes
    )

    @dsl.pipeline(
        name="full",
        description="LLM fine-tuning, E-GRM reward modeling and pancreas segmentation in one run",
        pipeline_config=config if in_workspace else None,
    )
    @described("The llm, reward and segmentation pipelines in one run.")
    def full(
        profile: str = defaults["profile"],
        model: dict = defaults["model"],
        data_prep: dict = defaults["data_prep"],
        pretrain: dict = defaults["pretrain"],
        finetune: dict = defaults["finetune"],
        evaluate: dict = defaults["evaluate"],
        ilp_diagnosis: dict = defaults["ilp_diagnosis"],
        grm_data: dict = defaults["grm_data"],
        grm: dict = defaults["grm"],
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
        shared = {
            "accelerator_type": accelerator_type,
            "accelerator_count": accelerator_count,
            "cpu": cpu,
            "memory": memory,
            "tolerations": tolerations,
            "node_selector": node_selector,
            "pipeline_version": pipeline_version,
        }
        llm_run = llm_pipeline(
            profile=profile,
            model=model,
            data_prep=data_prep,
            pretrain=pretrain,
            finetune=finetune,
            evaluate=evaluate,
            ilp_diagnosis=ilp_diagnosis,
            **shared,
        )
        reward_run = reward_pipeline(
            profile=profile, model=model, grm_data=grm_data, grm=grm, **shared
        )
        segmentation_pipeline(profile=profile, ct_data=ct_data, seg_train=seg_train, **shared)
        if in_workspace and workspace_access_mode != SHARED_ACCESS_MODE:
            reward_run.after(llm_run)  # both mount the single-node workspace

    return full
