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
    WORKSPACE,
    GpuSettings,
    on_gpu,
    uses_workspace,
    with_mlflow,
)


def build_pipeline(params: ProjectParams, models_in_workspace: bool | None = None):
    defaults = params.model_dump(mode="json", exclude_none=True)  # KFP structs have no null
    in_workspace = uses_workspace(params, models_in_workspace)
    workspace = dsl.WORKSPACE_PATH_PLACEHOLDER if in_workspace else ""

    @dsl.pipeline(
        name="reward-egrm",
        description="Reasoning data → policy SFT → hybrid-loss scorer → GRPO → gated evaluation",
        pipeline_config=WORKSPACE if in_workspace else None,
    )
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
    ):
        gpu = GpuSettings(
            accelerator_type, accelerator_count, cpu, memory, tolerations, node_selector
        )
        data = with_mlflow(grm_data_op(profile=profile, params=grm_data)).outputs["data"]
        policy = grm_policy_op(
            profile=profile, model_params=model, params=grm, data=data, workspace=workspace
        )
        on_gpu(with_mlflow(policy), gpu)
        scorer = grm_scorer_op(
            profile=profile,
            params=grm,
            data=data,
            policy=policy.outputs["policy"],
            workspace=workspace,
        )
        on_gpu(with_mlflow(scorer), gpu)
        grpo = grm_grpo_op(
            profile=profile,
            params=grm,
            data=data,
            policy=policy.outputs["policy"],
            scorer=scorer.outputs["scorer"],
            workspace=workspace,
        )
        on_gpu(with_mlflow(grpo), gpu)
        # sampling K reasoning paths per question is GPU work too; it also registers the scorer
        evaluated = grm_evaluate_op(
            profile=profile,
            params=grm,
            data=data,
            policy=grpo.outputs["grpo_policy"],
            scorer=scorer.outputs["scorer"],
            workspace=workspace,
        )
        on_gpu(with_mlflow(evaluated), gpu)

    return reward
