"""The three pipelines (llm, reward, segmentation) side by side as one KFP run: each is a
sub-DAG with the same parameters it has on its own, and the GPU scheduling is shared."""

from kfp import dsl

from pipelines import llm, reward, segmentation
from pipelines.params import ProjectParams
from pipelines.tasks import GPU_DEFAULTS, WORKSPACE, uses_workspace


def build_pipeline(
    params: ProjectParams, finetune_nodes: int = 1, models_in_workspace: bool | None = None
):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null
    in_workspace = uses_workspace(params, models_in_workspace, finetune_nodes)
    llm_pipeline = llm.build_pipeline(params, finetune_nodes, in_workspace)
    reward_pipeline = reward.build_pipeline(params, in_workspace)
    segmentation_pipeline = segmentation.build_pipeline(params)

    @dsl.pipeline(
        name="full",
        description="LLM fine-tuning, E-GRM reward modeling and pancreas segmentation in one run",
        pipeline_config=WORKSPACE if in_workspace else None,
    )
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
    ):
        gpu = {
            "accelerator_type": accelerator_type,
            "accelerator_count": accelerator_count,
            "cpu": cpu,
            "memory": memory,
            "tolerations": tolerations,
            "node_selector": node_selector,
        }
        llm_pipeline(
            profile=profile,
            model=model,
            data_prep=data_prep,
            pretrain=pretrain,
            finetune=finetune,
            evaluate=evaluate,
            ilp_diagnosis=ilp_diagnosis,
            **gpu,
        )
        reward_pipeline(profile=profile, model=model, grm_data=grm_data, grm=grm, **gpu)
        segmentation_pipeline(profile=profile, ct_data=ct_data, seg_train=seg_train, **gpu)

    return full
