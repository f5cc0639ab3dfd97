"""data_prep → pretrain → finetune (EPI) → ilp_diagnosis, evaluate as a KFP v2 pipeline.

The pipeline's parameters are params.yaml's sections (dicts), with the file's values as defaults
at compile time, plus the GPU scheduling of pipelines/tasks.py; each task calls the same `run()`
as the DVC stage of that step. Built with `finetune_nodes` > 1, fine-tuning runs as a Kubeflow
Trainer TrainJob on that many GPU nodes, through the run's workspace volume. (A compile-time choice:
KFP 2.17 does not pass resource parameters into a `dsl.If` branch.)

Models travel as KFP artifacts for the tiny profile and through the run's workspace PVC for the
pretrained ones (`models_in_workspace`, default: whenever the profile is not tiny or fine-tuning
is multi-node): see components/common/kfp_outputs.py. The workspace's size, storage class and
access mode are compile-time options (pipelines/tasks.py: WORKSPACE_DEFAULTS, workspace_config);
with ReadWriteOnce, the two tasks that read the fine-tuned model run one after the other."""

from kfp import dsl

from components.common.images import GPU_IMAGE
from components.data_prep.component import data_prep_op
from components.epi_finetune.component import finetune_op
from components.epi_finetune.launcher_component import finetune_trainjob_op
from components.evaluate.component import evaluate_op
from components.ilp_diagnosis.component import ilp_diagnosis_op
from components.pretrain.component import pretrain_op
from pipelines.params import ProjectParams
from pipelines.tasks import (
    GPU_DEFAULTS,
    SHARED_ACCESS_MODE,
    SHM_SIZE,
    TRAINING_TIMEOUT_S,
    WORKSPACE_DEFAULTS,
    GpuSettings,
    described,
    evaluate_memory,
    lineage_arguments,
    never_cached,
    on_cpu,
    on_gpu,
    on_gpu_launcher,
    on_gpu_nodes,
    uses_workspace,
    with_lineage_env,
    with_mlflow,
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
    workspace = dsl.WORKSPACE_PATH_PLACEHOLDER if in_workspace else ""
    # built (and so checked) even when unused: a bad option fails every compile
    config = workspace_config(
        workspace_size, workspace_storage_class, workspace_access_mode, finetune_nodes
    )

    @dsl.pipeline(
        name="llm",
        description="Synthetic data → tiny base → EPI fine-tuning → ILP diagnosis, eval + registry",
        pipeline_config=config if in_workspace else None,
    )
    @described("EPI fine-tuning and its diagnosis.")
    def llm(
        profile: str = defaults["profile"],
        model: dict = defaults["model"],
        data_prep: dict = defaults["data_prep"],
        pretrain: dict = defaults["pretrain"],
        finetune: dict = defaults["finetune"],
        evaluate: dict = defaults["evaluate"],
        ilp_diagnosis: dict = defaults["ilp_diagnosis"],
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
        prepared = with_lineage_env(data_prep_op)(profile=profile, params=data_prep, **lineage)
        on_cpu(with_mlflow(prepared))
        data = prepared.outputs["data"]
        base = with_lineage_env(pretrain_op)(
            profile=profile,
            model_params=model,
            params=pretrain,
            data=data,
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(base), gpu)
        if finetune_nodes > 1:
            tuned = with_lineage_env(finetune_trainjob_op)(
                profile=profile,
                params=finetune,
                num_nodes=finetune_nodes,
                image=GPU_IMAGE,
                workspace_path=dsl.WORKSPACE_PATH_PLACEHOLDER,
                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,  # a retried launcher finds its TrainJob
                timeout_seconds=TRAINING_TIMEOUT_S,
                shm_size=SHM_SIZE,
                data=data,
                base=base.outputs["model"],
                **lineage,
            )
            on_gpu_launcher(on_gpu_nodes(with_mlflow(tuned), gpu))
        else:
            tuned = with_lineage_env(finetune_op)(
                profile=profile,
                params=finetune,
                data=data,
                base=base.outputs["model"],
                workspace=workspace,
                **lineage,
            )
            on_gpu(with_mlflow(tuned), gpu)
        diagnosed = with_lineage_env(ilp_diagnosis_op)(
            profile=profile,
            params=ilp_diagnosis,
            data=data,
            base=base.outputs["model"],
            sft=tuned.outputs["model"],
            finetune_reports=tuned.outputs["reports"],
            workspace=workspace,
            **lineage,
        )
        on_gpu(with_mlflow(diagnosed), gpu)
        evaluated = with_lineage_env(evaluate_op)(
            profile=profile,
            params=evaluate,
            data=data,
            model=tuned.outputs["model"],
            workspace=workspace,
            **lineage,
        )
        on_cpu(never_cached(with_mlflow(evaluated)), evaluate_memory(in_workspace))  # registry
        if in_workspace and workspace_access_mode != SHARED_ACCESS_MODE:
            evaluated.after(diagnosed)  # both mount the single-node workspace

    return llm
