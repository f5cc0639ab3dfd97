"""The TrainJob manifest of multi-node fine-tuning against a minimal schema of the fields we use
(trainer.kubeflow.org/v1alpha1), built without a cluster."""

import jsonschema
import pytest

from components.epi_finetune.trainjob import (
    build_trainjob,
    finetune_command,
    finished,
)

STRING_LIST = {"type": "array", "items": {"type": "string"}}
TRAINJOB_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "trainer.kubeflow.org/v1alpha1"},
        "kind": {"const": "TrainJob"},
        "metadata": {
            "type": "object",
            "required": ["name", "namespace"],
            "properties": {"name": {"type": "string", "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$"}},
        },
        "spec": {
            "type": "object",
            "required": ["runtimeRef", "trainer"],
            "additionalProperties": False,
            "properties": {
                "runtimeRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"const": "torch-distributed"}},
                },
                "trainer": {
                    "type": "object",
                    "required": ["image", "command", "numNodes"],
                    "additionalProperties": False,
                    "properties": {
                        "image": {"type": "string", "pattern": ":"},
                        "command": STRING_LIST,
                        "numNodes": {"type": "integer", "minimum": 1},
                        "resourcesPerNode": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "limits": {"type": "object"},
                                "requests": {"type": "object"},
                            },
                        },
                        "env": {"type": "array", "items": {"type": "object", "required": ["name"]}},
                    },
                },
                "runtimePatches": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["manager", "trainingRuntimeSpec"],
                        "additionalProperties": False,
                        "properties": {
                            "manager": {"type": "string", "minLength": 1},
                            "trainingRuntimeSpec": {"type": "object"},
                        },
                    },
                },
                "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
            },
        },
    },
}

GPU_NODE = {"limits": {"nvidia.com/gpu": "4", "cpu": "16", "memory": "64Gi"}}
WORKSPACE_VOLUME = {"name": "kfp-workspace", "persistentVolumeClaim": {"claimName": "run-ws"}}
WORKSPACE_MOUNT = {"name": "kfp-workspace", "mountPath": "/kfp-workspace"}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def full_manifest() -> dict:
    return build_trainjob(
        name="finetune-0123456789",
        namespace="mlops-methods",
        image="ghcr.io/mlops-methods/mlops-methods-cuda:0.1.0",
        num_nodes=2,
        command=finetune_command("/kfp-workspace/finetune-0123456789", ["--params", "params.yaml"]),
        resources=GPU_NODE,
        env=[{"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"}],
        volumes=[WORKSPACE_VOLUME],
        volume_mounts=[WORKSPACE_MOUNT],
        node_selector={"nvidia.com/gpu.present": "true"},
        tolerations=[TOLERATION],
        active_deadline_seconds=3600,
    )


def test_manifest_with_every_field_matches_the_schema():
    manifest = full_manifest()
    jsonschema.validate(manifest, TRAINJOB_SCHEMA)
    trainer = manifest["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["resourcesPerNode"] == GPU_NODE
    (patch,) = manifest["spec"]["runtimePatches"]
    (job,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = job["template"]["spec"]["template"]["spec"]
    assert job["name"] == "node"
    assert pod["volumes"] == [WORKSPACE_VOLUME] and pod["tolerations"] == [TOLERATION]
    assert pod["containers"] == [{"name": "node", "volumeMounts": [WORKSPACE_MOUNT]}]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_minimal_manifest_leaves_out_empty_task_config():
    manifest = build_trainjob(
        name="finetune-a",
        namespace="ns",
        image="repo/image:1",
        num_nodes=1,
        command=["true"],
        resources=None,
        env=[],
        node_selector={},
    )
    jsonschema.validate(manifest, TRAINJOB_SCHEMA)
    assert set(manifest["spec"]) == {"runtimeRef", "trainer"}
    assert set(manifest["spec"]["trainer"]) == {"image", "command", "numNodes"}


def test_every_node_runs_the_finetune_entrypoint_under_torchrun_in_the_run_directory():
    command = finetune_command("/kfp-workspace/run dir", ["--data", "data"])
    assert command[:2] == ["/bin/sh", "-c"]
    assert "exec torchrun -m components.epi_finetune" in command[2]
    assert command[3:] == ["/kfp-workspace/run dir", "--data", "data"]  # $0, then "$@"


def test_zero_nodes_is_refused():
    with pytest.raises(ValueError, match="num_nodes"):
        build_trainjob(name="a", namespace="n", image="i:1", num_nodes=0, command=["true"])


@pytest.mark.parametrize(
    ("conditions", "state"),
    [
        ([], None),
        ([{"type": "Suspended", "status": "False"}], None),
        ([{"type": "Complete", "status": "True"}], "Complete"),
        ([{"type": "Failed", "status": "True"}], "Failed"),
    ],
)
def test_finished_reads_the_trainjob_conditions(conditions, state):
    assert finished({"status": {"conditions": conditions}}) == state
