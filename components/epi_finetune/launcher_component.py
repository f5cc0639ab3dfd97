"""KFP launcher for multi-node fine-tuning: the same finetune step as `finetune_op`, run by a
Kubeflow Trainer `TrainJob` on `num_nodes` GPU nodes instead of inside this task's pod.

The task's resources, tolerations and node selector (set on the task like any GPU task) are passed
through to the TrainJob's nodes, not applied to this small pod; its environment (MLflow settings)
and volumes (the pipeline workspace, where data, base model and result meet) go to both.

The TrainJob's name comes from the run id and this task, so a retried launcher re-attaches to the
TrainJob of the try before instead of starting a second one; its run directory is as stable. The
TrainJob is owned by the launcher pod, ends `DEADLINE_MARGIN_SECONDS` before the task's timeout,
and is deleted when the launcher is cancelled or fails (see `trainjob.run_trainjob`)."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output, TaskConfigField

from components.common.images import CPU_IMAGE


@dsl.component(
    base_image=CPU_IMAGE,
    install_kfp_package=False,
    task_config_passthroughs=[
        TaskConfigField.RESOURCES,
        TaskConfigField.KUBERNETES_TOLERATIONS,
        TaskConfigField.KUBERNETES_NODE_SELECTOR,
        dsl.TaskConfigPassthrough(field=TaskConfigField.ENV, apply_to_task=True),
        dsl.TaskConfigPassthrough(field=TaskConfigField.KUBERNETES_VOLUMES, apply_to_task=True),
    ],
)
def finetune_trainjob_op(
    profile: str,
    params: dict,
    num_nodes: int,
    image: str,
    workspace_path: str,
    run_id: str,
    timeout_seconds: int,
    shm_size: str,
    data: Input[Dataset],
    base: Input[Model],
    model: Output[Model],
    reports: Output[Artifact],
    metrics: Output[Metrics],
    trainjob: Output[Artifact],
    task_config: dsl.TaskConfig,
):
    """Stage inputs in the workspace, run the TrainJob; its model stays there (the `model` output
    points to it), its reports and metrics come back out."""
    import json
    import os
    import shutil
    from pathlib import Path

    import yaml
    from kubernetes import client, config

    from components.common.kfp_outputs import log_step_metrics, model_input_dir, point_to
    from components.epi_finetune.trainjob import (
        TrainJobParams,
        active_deadline,
        build_trainjob,
        finetune_command,
        launcher_owner,
        node_env,
        run_trainjob,
        trainjob_name,
    )

    name = trainjob_name(run_id, "finetune")  # one fine-tuning task per run
    run_dir = Path(workspace_path) / name
    shutil.copytree(data.path, run_dir / "data", dirs_exist_ok=True)  # a retry finds it there
    base_dir = model_input_dir(base, workspace_path)  # already in the workspace: not copied
    if not base_dir.is_relative_to(workspace_path):
        shutil.copytree(base_dir, run_dir / "base", dirs_exist_ok=True)
        base_dir = run_dir / "base"
    (run_dir / "params.yaml").write_text(yaml.safe_dump({"profile": profile, "finetune": params}))
    args = ["--params", "params.yaml", "--data", "data", "--base", str(base_dir), "--out", "model"]
    args += ["--reports", "reports", "--metrics", "metrics.json"]
    namespace = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    config.load_incluster_config()
    objects, core = client.CustomObjectsApi(), client.CoreV1Api()
    manifest = build_trainjob(
        TrainJobParams(
            name=name,
            namespace=namespace,
            image=image,
            num_nodes=num_nodes,
            command=finetune_command(str(run_dir), args),
            shm_size=shm_size,
            active_deadline_seconds=active_deadline(timeout_seconds),
            owner=launcher_owner(core, namespace, os.environ["HOSTNAME"]),  # the pod's name
            resources=task_config.resources,
            env=node_env(task_config.env, os.environ),
            volumes=task_config.volumes,
            volume_mounts=task_config.volume_mounts,
            node_selector=task_config.node_selector,
            tolerations=task_config.tolerations,
        )
    )
    Path(trainjob.path).write_text(yaml.safe_dump(manifest, sort_keys=False))
    run_trainjob(manifest, objects, core)  # raises with the Failed condition's reason, message
    point_to(model, run_dir / "model")
    shutil.copytree(run_dir / "reports", reports.path)
    log_step_metrics(metrics, json.loads((run_dir / "metrics.json").read_text()))
