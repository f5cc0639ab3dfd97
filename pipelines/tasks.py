"""How pipeline tasks run on Kubernetes, in one place: GPU scheduling, MLflow settings, caching.

Every pipeline takes the same scheduling parameters (`GPU_DEFAULTS` names them and gives their
defaults) and hands them to `on_gpu` for its training tasks. Under `kfp.local` these settings are
recorded in the IR but ignored, so the same pipeline runs in tests on a CPU."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import structures
from kfp.dsl.python_component import PythonComponent

from components.common.images import GPU_IMAGE
from pipelines.params import ProjectParams

# Written by k8s/base (mlflow-client.env / mlflow-client-auth.env); the Secret is optional because
# an MLflow server inside the cluster needs no credentials.
MLFLOW_CONFIG_MAP = "mlflow-client"
MLFLOW_CONFIG_KEYS = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")
MLFLOW_SECRET = "mlflow-client-auth"
MLFLOW_SECRET_KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

TRAINING_TIMEOUT_S = 12 * 3600  # a stuck GPU pod must not hold its node forever
SHM_SIZE = "8Gi"  # DataLoader workers and NCCL share tensors through /dev/shm (64Mi by default)
# GPU tasks run on spot nodes: a preempted pod is retried, and fine-tuning resumes from its last
# checkpoint in the workspace (components/epi_finetune/step.py)
SPOT_RETRIES = 3
RETRY_BACKOFF = "60s"
# data preparation, evaluation on the tiny profile and the TrainJob launcher
CPU_REQUEST, CPU_LIMIT = "1", "4"
CPU_MEMORY = "4Gi"  # request = limit: memory is not compressible, an overrun is an OOM kill
PRETRAINED_EVALUATE_MEMORY = "24Gi"  # a pretrained model in float32 plus generation
CPU_TIMEOUT_S = 2 * 3600

# The run's workspace: a PVC that lives for one run, for large models and for multi-node
# fine-tuning (uses_workspace). KFP 2.17 turns it into an Argo `volumeClaimTemplate` without a
# `volumeClaimGC`, so Argo's default (OnWorkflowSuccess) applies: a succeeded run's PVC is deleted
# when the run ends; a failed run's PVC is kept (with its models and checkpoints, which a retry of
# that run reuses) until the run's Workflow object is deleted, since the PVC is owned by it.
WORKSPACE_DEFAULTS: dict[str, Any] = {
    "workspace_size": "50Gi",
    "workspace_storage_class": None,  # the cluster's default StorageClass
    # every node of a multi-node TrainJob mounts it, and tasks on different nodes share it
    "workspace_access_mode": "ReadWriteMany",
}
SHARED_ACCESS_MODE = "ReadWriteMany"
SINGLE_NODE_ACCESS_MODE = (
    "ReadWriteOnce"  # one node at a time: tasks that mount it must not overlap
)


def workspace_config(
    size: str, storage_class: str | None, access_mode: str, finetune_nodes: int = 1
) -> dsl.PipelineConfig:
    """The pipeline config that requests the run's workspace PVC."""
    if access_mode not in (SHARED_ACCESS_MODE, SINGLE_NODE_ACCESS_MODE):
        raise ValueError(
            f"workspace access mode {access_mode!r}: use {SHARED_ACCESS_MODE} or "
            f"{SINGLE_NODE_ACCESS_MODE}"
        )
    if access_mode != SHARED_ACCESS_MODE and finetune_nodes > 1:
        raise ValueError(
            f"fine-tuning on {finetune_nodes} nodes mounts the workspace on every node: it needs "
            f"{SHARED_ACCESS_MODE}, not {access_mode}"
        )
    patch: dict[str, Any] = {"accessModes": [access_mode]}
    if storage_class:
        patch["storageClassName"] = storage_class
    return dsl.PipelineConfig(
        workspace=dsl.WorkspaceConfig(
            size=size, kubernetes=dsl.KubernetesWorkspaceConfig(pvcSpecPatch=patch)
        )
    )


def uses_workspace(
    params: ProjectParams, models_in_workspace: bool | None, finetune_nodes: int = 1
) -> bool:
    """Whether a pipeline's models go through the WORKSPACE PVC rather than as KFP artifacts.

    Default (None): yes for pretrained profiles, whose models are too large to upload and download
    at every task, and for multi-node fine-tuning, whose nodes cannot read KFP artifacts."""
    if models_in_workspace is None:
        return params.profile != "tiny" or finetune_nodes > 1
    if finetune_nodes > 1 and not models_in_workspace:
        raise ValueError("multi-node fine-tuning reads and writes its models in the workspace")
    return models_in_workspace


# The scheduling parameters every pipeline takes, with their defaults.
GPU_DEFAULTS: dict[str, Any] = {
    "accelerator_type": "nvidia.com/gpu",
    "accelerator_count": 1,
    "cpu": "8",  # request = limit: training pods get Guaranteed QoS and are evicted last
    "memory": "32Gi",
    "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    "node_selector": {"nvidia.com/gpu.present": "true"},  # set by NVIDIA GPU feature discovery
}


class GpuSettings(NamedTuple):
    """A pipeline's scheduling parameters (channels in a pipeline body), in GPU_DEFAULTS' order."""

    accelerator_type: Any
    accelerator_count: Any
    cpu: Any
    memory: Any
    tolerations: Any
    node_selector: Any


def with_mlflow(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """MLflow's tracking URI, experiment and (optional) credentials as environment variables."""
    kubernetes.use_config_map_as_env(
        task, MLFLOW_CONFIG_MAP, {key: key for key in MLFLOW_CONFIG_KEYS}
    )
    kubernetes.use_secret_as_env(
        task, MLFLOW_SECRET, {key: key for key in MLFLOW_SECRET_KEYS}, optional=True
    )
    return task


def never_cached(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """Training and registry tasks have side effects (MLflow runs, aliases) on every run."""
    return task.set_caching_options(False)


def on_gpu_nodes(task: dsl.PipelineTask, gpu: GpuSettings) -> dsl.PipelineTask:
    """GPUs, Guaranteed CPU/memory, GPU nodes (tolerations, node selector): on the task's pod, or
    passed through to the pods it launches (the TrainJob launcher)."""
    task.set_accelerator_type(gpu.accelerator_type).set_accelerator_limit(gpu.accelerator_count)
    task.set_cpu_request(gpu.cpu).set_cpu_limit(gpu.cpu)
    task.set_memory_request(gpu.memory).set_memory_limit(gpu.memory)
    kubernetes.add_toleration_json(task, gpu.tolerations)
    kubernetes.add_node_selector_json(task, gpu.node_selector)
    return task


def on_gpu(task: dsl.PipelineTask, gpu: GpuSettings) -> dsl.PipelineTask:
    """A training task: CUDA image, GPU scheduling, shared memory, a timeout, retries, no cache."""
    task.set_container_image(GPU_IMAGE)
    kubernetes.empty_dir_mount(task, "shm", "/dev/shm", medium="Memory", size_limit=SHM_SIZE)
    return on_gpu_launcher(on_gpu_nodes(task, gpu))


def on_gpu_launcher(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """What a GPU task and the launcher of a GPU job share: a timeout, spot retries, no cache.
    The launcher keeps the CPU image; its GPU settings (on_gpu_nodes) go to the job it starts."""
    kubernetes.set_timeout(task, TRAINING_TIMEOUT_S)
    task.set_retry(num_retries=SPOT_RETRIES, backoff_duration=RETRY_BACKOFF, backoff_factor=2)
    return never_cached(task)


def on_cpu(task: dsl.PipelineTask, memory: str = CPU_MEMORY) -> dsl.PipelineTask:
    """A CPU task: requests and limits (Burstable: it may use idle CPU up to the limit) and a
    timeout."""
    task.set_cpu_request(CPU_REQUEST).set_cpu_limit(CPU_LIMIT)
    task.set_memory_request(memory).set_memory_limit(memory)
    kubernetes.set_timeout(task, CPU_TIMEOUT_S)
    return task


def evaluate_memory(in_workspace: bool) -> str:
    """evaluate loads the fine-tuned model on a CPU: a pretrained one (models in the workspace)
    needs far more than the tiny one."""
    return PRETRAINED_EVALUATE_MEMORY if in_workspace else CPU_MEMORY


# What every task's MLflow run records about the cluster run (components/common/tracking.py).
# KFP 2.17's set_env_variable takes constants, and the backend copies env values into the pod
# unresolved; placeholders in a command are resolved on the cluster and by kfp.local alike. So the
# values travel as component inputs that the command exports before the component starts.
LINEAGE_ENV = {
    "KFP_RUN_ID": "kfp_run_id",
    "KFP_RUN_NAME": "kfp_run_name",
    "KFP_PIPELINE_VERSION": "kfp_pipeline_version",
}


@functools.cache
def with_lineage_env(component: PythonComponent) -> PythonComponent:
    """`component` with LINEAGE_ENV's inputs, exported as environment variables to its code."""
    spec = copy.deepcopy(component.component_spec)
    lineage = structures.InputSpec(type="String", default="", optional=True)
    spec.inputs = (spec.inputs or {}) | {name: lineage for name in LINEAGE_ENV.values()}
    container = spec.implementation.container
    exports = [f"{env}={{{{$.inputs.parameters['{name}']}}}}" for env, name in LINEAGE_ENV.items()]
    container.command = ["env", *exports, *container.command]
    return PythonComponent(component_spec=spec, python_func=component.python_func)


def lineage_arguments(pipeline_version: Any) -> dict[str, Any]:
    """The arguments of LINEAGE_ENV's inputs: this run's id and name, the pipeline's version."""
    return {
        "kfp_run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        "kfp_run_name": dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        "kfp_pipeline_version": pipeline_version,
    }


# What each pipeline parameter is, shown in the Kubeflow UI: KFP reads the `Args:` section of a
# pipeline function's docstring into the IR (inputDefinitions.parameters.<name>.description).
PARAMETER_DESCRIPTIONS = {
    "profile": "Model profile: tiny (built from scratch), smollm2 or hf (pretrained).",
    "model": "params.yaml `model`: the tiny model's shape, the pretrained models' names.",
    "data_prep": "params.yaml `data_prep`: the synthetic tasks and their splits.",
    "pretrain": "params.yaml `pretrain`: training of the tiny base model.",
    "finetune": "params.yaml `finetune`: the fine-tuning method (EPI or a baseline).",
    "evaluate": "params.yaml `evaluate`: per-task accuracy and the registry metric.",
    "ilp_diagnosis": "params.yaml `ilp_diagnosis`: the knowledge-loss diagnosis.",
    "grm_data": "params.yaml `grm_data`: the reasoning questions and their splits.",
    "grm": "params.yaml `grm`: E-GRM's policy, scorer, GRPO and gating.",
    "knowtuning_data": "params.yaml `knowtuning_data`: the entity world or the user's records.",
    "knowtuning_base": "params.yaml `knowtuning_base`: pretrain's params for KnowTuning's base.",
    "knowtuning_sft": "params.yaml `knowtuning_sft`: finetune's params for both SFT runs.",
    "knowtuning": "params.yaml `knowtuning`: knowledge augmentation, comparison, evaluation.",
    "atm_model": "params.yaml `atm_model`: the ATM models' shape (a longer context) and names.",
    "atm_data": "params.yaml `atm_data`: the people world or the user's corpus and questions.",
    "atm_retrieve": "params.yaml `atm_retrieve`: the retriever, top-k and the warm-up mix.",
    "atm_base": "params.yaml `atm_base`: pretrain's params for ATM's base.",
    "atm_sft": "params.yaml `atm_sft`: finetune's params for both warm-ups.",
    "atm": "params.yaml `atm`: the adversarial rounds and the attacked evaluation.",
    "govern_data": "params.yaml `govern_data`: the synthetic teachers or the user's samples.",
    "govern": "params.yaml `govern`: the vote, the baselines and the student's training.",
    "rlhb_data": "params.yaml `rlhb_data`: the simulated search service or the user's logs.",
    "rlhb": "params.yaml `rlhb`: the generator, the discriminator, RL and the baselines.",
    "ct_data": "params.yaml `ct_data`: the synthetic multi-site CT volumes.",
    "seg_train": "params.yaml `seg_train`: the dual-task segmentation network and training.",
    "accelerator_type": "Kubernetes resource name of a training task's GPUs.",
    "accelerator_count": "GPUs per training task (per node for multi-node fine-tuning).",
    "cpu": "CPU request and limit of a training task.",
    "memory": "Memory request and limit of a training task.",
    "tolerations": "Tolerations of training tasks (for tainted GPU nodes).",
    "node_selector": "Node labels that training tasks must run on.",
    "pipeline_version": "Name of the uploaded pipeline version, recorded on every MLflow run.",
}


def described(summary: str) -> Callable[[Callable], Callable]:
    """Gives a pipeline function a docstring: `summary` and its parameters' descriptions."""

    def describe(pipeline_func: Callable) -> Callable:
        names = list(inspect.signature(pipeline_func).parameters)
        missing = [name for name in names if name not in PARAMETER_DESCRIPTIONS]
        if missing:
            raise ValueError(f"pipeline parameters without a description: {missing}")
        args = "\n".join(f"    {name}: {PARAMETER_DESCRIPTIONS[name]}" for name in names)
        pipeline_func.__doc__ = f"{summary}\n\nArgs:\n{args}\n"
        return pipeline_func

    return describe
