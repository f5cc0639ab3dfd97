"""The TrainJob of multi-node fine-tuning against the real TrainJob CRD of Kubeflow Trainer v2.3.0
(tests/crds/), the rules its admission webhook adds, and the torch-distributed runtime it patches;
built without a cluster."""

import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from components.epi_finetune.trainjob import (
    MANAGER,
    TrainJobParams,
    active_deadline,
    backoff_seconds,
    build_trainjob,
    final_condition,
    finetune_command,
    trainjob_name,
)
from tests.crds import validate_custom_resource

CRDS = Path(__file__).resolve().parents[1] / "crds"
TRAINJOB_CRD = CRDS / "trainer.kubeflow.org_trainjobs.v2.3.0.yaml"
TORCH_RUNTIME = CRDS / "torch_distributed.v2.3.0.yaml"

GPU_NODE = {"limits": {"nvidia.com/gpu": "4", "cpu": "16", "memory": "64Gi"}}
WORKSPACE_VOLUME = {"name": "kfp-workspace", "persistentVolumeClaim": {"claimName": "run-ws"}}
WORKSPACE_MOUNT = {"name": "kfp-workspace", "mountPath": "/kfp-workspace"}
TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SHM_VOLUME = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}
SHM_MOUNT = {"name": "dshm", "mountPath": "/dev/shm"}


def params(**overrides) -> TrainJobParams:
    fields = {
        "name": "finetune-0123456789",
        "namespace": "mlops-methods",
        "image": "ghcr.io/mlops-methods/mlops-methods-cuda:0.1.0",
        "num_nodes": 2,
        "command": finetune_command("/kfp-workspace/finetune-0123456789", ["--params", "p.yaml"]),
        "shm_size": "8Gi",
        "active_deadline_seconds": 3300,
        "owner": {"name": "llm-abc-launcher-1", "uid": "6f1c3c2e-0000-4000-8000-000000000001"},
        "resources": GPU_NODE,
        "env": [{"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"}],
        "volumes": [WORKSPACE_VOLUME],
        "volume_mounts": [WORKSPACE_MOUNT],
        "node_selector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [TOLERATION],
    }
    return TrainJobParams(**(fields | overrides))


def node_pod_patch(manifest: dict) -> tuple[dict, dict]:
    (patch,) = manifest["spec"]["runtimePatches"]
    (job,) = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    return job, job["template"]["spec"]["template"]["spec"]


def test_trainjob_with_every_field_matches_the_trainer_crd():
    manifest = build_trainjob(params())
    validate_custom_resource(manifest, TRAINJOB_CRD)
    assert manifest["apiVersion"] == "trainer.kubeflow.org/v1alpha1"
    trainer = manifest["spec"]["trainer"]
    assert trainer["numNodes"] == 2 and trainer["resourcesPerNode"] == GPU_NODE
    assert trainer["env"] == [{"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"}]
    assert manifest["spec"]["activeDeadlineSeconds"] == 3300
    assert manifest["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": "llm-abc-launcher-1",
            "uid": "6f1c3c2e-0000-4000-8000-000000000001",
        }
    ]


def test_nodes_get_the_workspace_scheduling_and_an_in_memory_dev_shm():
    job, pod = node_pod_patch(build_trainjob(params()))
    assert job["name"] == "node"
    assert pod["volumes"] == [SHM_VOLUME, WORKSPACE_VOLUME]
    assert pod["containers"] == [{"name": "node", "volumeMounts": [SHM_MOUNT, WORKSPACE_MOUNT]}]
    assert pod["tolerations"] == [TOLERATION]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_shm_size_is_the_parameter():
    _, pod = node_pod_patch(build_trainjob(params(shm_size="32Gi")))
    assert pod["volumes"][0]["emptyDir"] == {"medium": "Memory", "sizeLimit": "32Gi"}


def test_minimal_trainjob_leaves_out_empty_task_config():
    manifest = build_trainjob(
        params(owner=None, resources=None, env=[], volumes=None, volume_mounts=None).model_copy(
            update={"node_selector": {}, "tolerations": None}
        )
    )
    validate_custom_resource(manifest, TRAINJOB_CRD)
    assert set(manifest["spec"]["trainer"]) == {"image", "command", "numNodes"}
    assert "ownerReferences" not in manifest["metadata"]
    _, pod = node_pod_patch(manifest)
    assert pod == {
        "volumes": [SHM_VOLUME],
        "containers": [{"name": "node", "volumeMounts": [SHM_MOUNT]}],
    }


def test_numeric_quantities_from_task_config_become_strings():
    manifest = build_trainjob(params(resources={"limits": {"nvidia.com/gpu": 4}}))
    assert manifest["spec"]["trainer"]["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": "4"}}


def test_the_crd_check_catches_a_field_the_api_server_would_drop():
    manifest = build_trainjob(params())
    manifest["spec"]["podTemplateOverrides"] = manifest["spec"].pop("runtimePatches")  # <= 2.1
    with pytest.raises(jsonschema.ValidationError, match="podTemplateOverrides"):
        validate_custom_resource(manifest, TRAINJOB_CRD)


# k8s.io/apimachinery validation.IsDomainPrefixedPath, which Trainer's jobset plugin applies to
# runtimePatches[].manager (pkg/runtime/framework/plugins/jobset/jobset.go at v2.2.0 and v2.3.0)
DNS1123_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
HTTP_PATH = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"


def test_manager_is_the_domain_prefixed_path_the_webhook_requires():
    (patch,) = build_trainjob(params())["spec"]["runtimePatches"]
    assert patch["manager"] == MANAGER
    domain, _, path = MANAGER.partition("/")
    assert re.fullmatch(DNS1123_SUBDOMAIN, domain) and len(domain) <= 253
    assert re.fullmatch(HTTP_PATH, path)


def test_the_patched_job_and_container_exist_in_the_torch_distributed_runtime():
    runtime = yaml.safe_load(TORCH_RUNTIME.read_text())
    assert runtime["metadata"]["name"] == build_trainjob(params())["spec"]["runtimeRef"]["name"]
    containers = {
        job["name"]: {c["name"] for c in job["template"]["spec"]["template"]["spec"]["containers"]}
        for job in runtime["spec"]["template"]["spec"]["replicatedJobs"]
    }
    job, pod = node_pod_patch(build_trainjob(params()))
    assert {c["name"] for c in pod["containers"]} <= containers[job["name"]]
    assert all("env" not in c for c in pod["containers"])  # the webhook refuses env on `node`


def test_every_node_runs_the_finetune_entrypoint_under_torchrun_in_the_run_directory():
    command = finetune_command("/kfp-workspace/run dir", ["--data", "data"])
    assert command[:2] == ["/bin/sh", "-c"]
    assert "exec torchrun -m components.epi_finetune" in command[2]
    assert command[3:] == ["/kfp-workspace/run dir", "--data", "data"]  # $0, then "$@"


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_nodes", 0), ("active_deadline_seconds", 0), ("name", "Finetune_1"), ("name", "a" * 41)],
)
def test_params_refuse_what_the_cluster_would(field, value):
    with pytest.raises(ValidationError, match=field):
        params(**{field: value})


def test_name_is_the_task_and_a_hash_of_run_and_task():
    # sha256(b"3f2c9a1e-run/finetune").hexdigest()[:10], computed once with hashlib at the shell
    assert trainjob_name("3f2c9a1e-run", "finetune") == "finetune-3ff8b25cff"
    assert trainjob_name("3f2c9a1e-run", "finetune") != trainjob_name("another-run", "finetune")


def test_a_long_or_odd_task_name_is_cut_to_a_dns_label_of_40():
    name = trainjob_name("r", "Fine_Tune " + "x" * 60)
    assert len(name) == 40 and re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name)
    assert name.startswith("fine-tune-xxx")
    with pytest.raises(ValueError, match="letter"):
        trainjob_name("r", "1st")


@pytest.mark.parametrize(("timeout", "deadline"), [(3600, 3300), (301, 1), (86400, 86100)])
def test_deadline_is_the_task_timeout_less_a_five_minute_margin(timeout, deadline):
    assert active_deadline(timeout) == deadline


def test_a_timeout_within_the_margin_is_refused():
    with pytest.raises(ValueError, match="300s margin"):
        active_deadline(300)


def test_backoff_doubles_from_one_second_up_to_thirty():
    assert [backoff_seconds(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


@pytest.mark.parametrize(
    ("conditions", "ended"),
    [
        ([], None),
        ([{"type": "Suspended", "status": "False"}], None),
        ([{"type": "Complete", "status": "True"}], "Complete"),
        ([{"type": "Failed", "status": "False"}], None),
        ([{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}], "Failed"),
    ],
)
def test_final_condition_reads_the_trainjob_conditions(conditions, ended):
    condition = final_condition({"status": {"conditions": conditions}})
    assert (condition or {}).get("type") == ended


def test_the_nodes_get_the_task_env_and_the_runs_lineage():
    """The launcher's KFP run variables reach the nodes' MLflow runs; unset ones and the launcher's
    own image reference (the nodes run another image) do not."""
    from components.common.tracking import LINEAGE_TAGS
    from components.epi_finetune.trainjob import FORWARDED_LINEAGE_ENV, node_env

    assert set(FORWARDED_LINEAGE_ENV) <= set(LINEAGE_TAGS.values())
    task_env = [{"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"}]
    environ = {"KFP_RUN_ID": "r-1", "KFP_RUN_NAME": "", "MLOPS_IMAGE": "cpu:1", "HOME": "/"}
    assert node_env(task_env, environ) == [*task_env, {"name": "KFP_RUN_ID", "value": "r-1"}]
    assert node_env(None, {}) == []
