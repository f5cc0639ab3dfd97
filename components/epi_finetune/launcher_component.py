"""KFP launcher for multi-node fine-tuning: the same finetune step as `finetune_op`, run by a
Kubeflow Trainer `TrainJob` on `num_nodes` GPU nodes instead of inside this task's pod.

The task's resources, tolerations and node selector (set on the task like any GPU task) are passed
through to the TrainJob's nodes, not applied to this small pod; its environment (MLflow settings)
and volumes (the pipeline workspace, where data, base model and result meet) go to both."""

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
    import shutil
    import uuid
    from pathlib import Path

    import yaml

    from components.common.kfp_outputs import log_step_metrics, model_input_dir, point_to
    from components.epi_finetune.trainjob import build_trainjob, finetune_command, run_trainjob

    name = f"finetune-{uuid.uuid4().hex[:10]}"
    run_dir = Path(workspace_path) / name
    shutil.copytree(data.path, run_dir / "data")
    base_dir = model_input_dir(base, workspace_path)  # already in the workspace: not copied
    if not base_dir.is_relative_to(workspace_path):
        shutil.copytree(base_dir, run_dir / "base")
        base_dir = run_dir / "base"
    (run_dir / "params.yaml").write_text(yaml.safe_dump({"profile": profile, "finetune": params}))
    args = ["--params", "params.yaml", "--data", "data", "--base", str(base_dir), "--out", "model"]
    args += ["--reports", "reports", "--metrics", "metrics.json"]
    namespace = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    manifest = build_trainjob(
        name=name,
        namespace=namespace,
        image=image,
        num_nodes=num_nodes,
        command=finetune_command(str(run_dir), args),
        resources=task_config.resources,
        env=task_config.env,
        volumes=task_config.volumes,
        volume_mounts=task_config.volume_mounts,
        node_selector=task_config.node_selector,
        tolerations=task_config.tolerations,
    )
    Path(trainjob.path).write_text(yaml.safe_dump(manifest, sort_keys=False))
    if run_trainjob(manifest) != "Complete":
        raise RuntimeError(f"TrainJob {namespace}/{name} failed; see its pods' logs")
    point_to(model, run_dir / "model")
    shutil.copytree(run_dir / "reports", reports.path)
    log_step_metrics(metrics, json.loads((run_dir / "metrics.json").read_text()))
