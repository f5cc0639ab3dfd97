"""grm_data → grm_policy → grm_scorer → grm_grpo → grm_evaluate (E-GRM reward modeling) as a KFP v2
pipeline.

Parameters are params.yaml's sections (dicts) with the file's values as compile-time defaults,
plus the GPU scheduling of pipelines/tasks.py; each task calls the same `run()` as the DVC stage
of that step. The policy goes through the run's workspace PVC instead of an artifact when
`pipelines.tasks.uses_workspace` says so (components/common/kfp_outputs.py)."""

from kfp import dsl

from components.grm_scorer.component import (
    grm_data_op,
    grm_evaluate_op,
    grm_grpo_op,
    grm_policy_op,
    grm_scorer_op,
)
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
    """Its tasks run one after the other (each needs the previous one's model), so any workspace
    access mode works without more ordering."""
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null
    in_workspace = uses_workspace(params, models_in_workspace)
    workspace = dsl.WORKSPACE_PATH_PLACEHOLDER if in_workspace else ""
    # built (and so checked) even when unused: a bad option fails every compile
    config = workspace_config(workspace_size, workspace_storage_class, workspace_access_mode)

    @dsl.pipeline(
        name="reward-egrm",
        description="Reasoning data → policy SFT → hybrid-loss scorer → GRPO → gated evaluation",
        pipeline_config=config if in_workspace else None,
    )
    @described("E-GRM reward modeling: policy, scorer, GRPO and gated evaluation.")
    def reward(
        profile: str = defaults["profile"],
        model: dict = defaults["model"],
        grm_data: dict = defaults["grm_data"],
        grm: dict = defaults["grm"],
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
        prepared = with_lineage_env(grm_data_op)(profile=profile, params=grm_data, **lineage)
        data = on_cpu(with_mlflow(prepared)).outputs["data"]
        policy = with_lineage_env(grm_policy_op)(
            profile=profile,
            model_params=model,
            params=grm,
            data=data,
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(policy), gpu)
        scorer = with_lineage_env(grm_scorer_op)(
            profile=profile,
            params=grm,
            data=data,
            policy=policy.outputs["policy"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(scorer), gpu)
        grpo = with_lineage_env(grm_grpo_op)(
            profile=profile,
            params=grm,
            data=data,
            policy=policy.outputs["policy"],
            scorer=scorer.outputs["scorer"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(grpo), gpu)
        # sampling K reasoning paths per question is GPU work too; it also registers the scorer
        evaluated = with_lineage_env(grm_evaluate_op)(
            profile=profile,
            params=grm,
            data=data,
            policy=grpo.outputs["grpo_policy"],
            scorer=scorer.outputs["scorer"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(evaluated), gpu)

    return reward
