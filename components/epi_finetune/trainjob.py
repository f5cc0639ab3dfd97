"""Multi-node fine-tuning as a Kubeflow Trainer v2 `TrainJob` (runtime `torch-distributed`).

`build_trainjob` is pure (a dict in, the manifest out) so it is unit-tested without a cluster;
`run_trainjob` submits it with the `kubernetes` client, streams the rank-0 logs and waits. Every
node runs the same finetune entrypoint as DVC and KFP (`python -m components.epi_finetune`), under
`torchrun`, which reads the node count, rank and master address from the `PET_*` variables that
the runtime sets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
RUNTIME = "torch-distributed"
MANAGER = "mlops-methods"  # owner of our runtimePatches entry
NODE = "node"  # the runtime's replicated job and container that run the trainer


def finetune_command(run_dir: str, args: list[str]) -> list[str]:
    """`torchrun -m components.epi_finetune ARGS` started in `run_dir` (checkpoints land there).

    A TrainJob has no workingDir, so a shell changes directory first; `$0` and `$@` carry the
    directory and the arguments without any quoting of our own."""
    script = 'cd "$0" && exec torchrun -m components.epi_finetune "$@"'
    return ["/bin/sh", "-c", script, run_dir, *args]


def build_trainjob(
    *,
    name: str,
    namespace: str,
    image: str,
    num_nodes: int,
    command: list[str],
    resources: dict[str, Any] | None = None,
    env: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    volume_mounts: list[dict[str, Any]] | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    active_deadline_seconds: int | None = None,
) -> dict[str, Any]:
    """The TrainJob manifest; scheduling and volumes go into one `runtimePatches` entry."""
    if num_nodes < 1:
        raise ValueError(f"num_nodes must be >= 1, got {num_nodes}")
    trainer: dict[str, Any] = {"image": image, "command": command, "numNodes": num_nodes}
    if resources:
        trainer["resourcesPerNode"] = resources
    if env:
        trainer["env"] = env
    pod_spec: dict[str, Any] = {}
    if volumes:
        pod_spec["volumes"] = volumes
    if volume_mounts:
        pod_spec["containers"] = [{"name": NODE, "volumeMounts": volume_mounts}]
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    spec: dict[str, Any] = {"runtimeRef": {"name": RUNTIME}, "trainer": trainer}
    if pod_spec:
        job_patch = {"name": NODE, "template": {"spec": {"template": {"spec": pod_spec}}}}
        spec["runtimePatches"] = [
            {
                "manager": MANAGER,
                "trainingRuntimeSpec": {"template": {"spec": {"replicatedJobs": [job_patch]}}},
            }
        ]
    if active_deadline_seconds:
        spec["activeDeadlineSeconds"] = active_deadline_seconds
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/part-of": MANAGER},
        },
        "spec": spec,
    }


def finished(trainjob: dict[str, Any]) -> str | None:
    """`Complete` or `Failed` once the TrainJob has ended, else None."""
    for condition in trainjob.get("status", {}).get("conditions", []):
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


def run_trainjob(
    manifest: dict[str, Any],
    poll_seconds: float = 15.0,
    log: Callable[[str], None] = print,
) -> str:
    """Create the TrainJob in-cluster, stream the rank-0 node's logs, return its final state."""
    from kubernetes import client, config, watch

    config.load_incluster_config()
    objects, core = client.CustomObjectsApi(), client.CoreV1Api()
    name, namespace = manifest["metadata"]["name"], manifest["metadata"]["namespace"]
    objects.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest)
    log(f"submitted TrainJob {namespace}/{name}")

    def state() -> str | None:
        return finished(
            objects.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        )

    # the JobSet behind a TrainJob carries its name; rank 0 is the first pod of the node job
    selector = (
        f"jobset.sigs.k8s.io/jobset-name={name},jobset.sigs.k8s.io/replicatedjob-name={NODE},"
        "batch.kubernetes.io/job-completion-index=0"
    )
    streamed = False
    while (result := state()) is None:
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        running = [p for p in pods if p.status.phase in ("Running", "Succeeded", "Failed")]
        if running and not streamed:
            for line in watch.Watch().stream(
                core.read_namespaced_pod_log, running[0].metadata.name, namespace, container=NODE
            ):
                log(line)
            streamed = True
        else:
            time.sleep(poll_seconds)
    log(f"TrainJob {namespace}/{name}: {result}")
    return result
