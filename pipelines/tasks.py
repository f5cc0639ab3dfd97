"""How pipeline tasks run on Kubernetes, in one place: GPU scheduling, MLflow settings, caching.

Every pipeline takes the same scheduling parameters (`GPU_DEFAULTS` names them and gives their
defaults) and hands them to `on_gpu` for its training tasks. Under `kfp.local` these settings are
recorded in the IR but ignored, so the same pipeline runs in tests on a CPU."""

from __future__ import annotations

from typing import Any, NamedTuple

from kfp import dsl, kubernetes

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

# A PVC that lives for one run, for large models and for multi-node fine-tuning (uses_workspace).
# ReadWriteMany so every node of a TrainJob mounts it.
WORKSPACE = dsl.PipelineConfig(
    workspace=dsl.WorkspaceConfig(
        size="50Gi",
        kubernetes=dsl.KubernetesWorkspaceConfig(pvcSpecPatch={"accessModes": ["ReadWriteMany"]}),
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


def on_gpu(task: dsl.PipelineTask, gpu: GpuSettings) -> dsl.PipelineTask:
    """A training task: CUDA image, GPUs, Guaranteed CPU/memory, GPU nodes, shared memory, a
    timeout, no cache."""
    task.set_container_image(GPU_IMAGE)
    task.set_accelerator_type(gpu.accelerator_type).set_accelerator_limit(gpu.accelerator_count)
    task.set_cpu_request(gpu.cpu).set_cpu_limit(gpu.cpu)
    task.set_memory_request(gpu.memory).set_memory_limit(gpu.memory)
    kubernetes.add_toleration_json(task, gpu.tolerations)
    kubernetes.add_node_selector_json(task, gpu.node_selector)
    kubernetes.empty_dir_mount(task, "shm", "/dev/shm", medium="Memory", size_limit=SHM_SIZE)
    kubernetes.set_timeout(task, TRAINING_TIMEOUT_S)
    return never_cached(task)
