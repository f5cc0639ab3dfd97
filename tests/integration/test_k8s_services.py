"""The MLflow stack's hardening (probes, PDB, backup, default-deny network, secrets nobody can
deploy as committed), `make secrets`, the cluster-smoke recipe and the images' lineage, offline."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

from pipelines import cluster_secrets
from tests.conftest import REPO_ROOT
from tests.integration.test_k8s_manifests import k8s_copy, render  # noqa: F401

pytestmark = pytest.mark.integration
SMOKE = REPO_ROOT / "k8s/smoke/cluster-smoke.sh"


@pytest.fixture(scope="module")
def dev(k8s_copy):  # noqa: F811
    return {
        (r["kind"], r["metadata"]["name"]): r for r in yaml.safe_load_all(render(k8s_copy, "dev"))
    }


def test_stack_containers_have_startup_and_liveness_probes(dev):
    for name in ("mlflow", "postgres", "minio"):
        kind = "StatefulSet" if name == "postgres" else "Deployment"
        container = dev[(kind, name)]["spec"]["template"]["spec"]["containers"][0]
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= set(container), name


def test_postgres_has_a_disruption_budget_and_a_nightly_backup(dev):
    assert dev[("PodDisruptionBudget", "postgres")]["spec"]["minAvailable"] == 1
    backup = dev[("CronJob", "postgres-backup")]["spec"]
    pod = backup["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "pg_dump" in " ".join(pod["containers"][0]["args"])
    assert ("PersistentVolumeClaim", "postgres-backup") in dev


def test_stack_pods_are_denied_by_default_with_explicit_egress(dev):
    deny = dev[("NetworkPolicy", "mlflow-stack-default-deny")]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    selected = set(deny["podSelector"]["matchExpressions"][0]["values"])
    assert selected == {"mlflow", "postgres", "minio", "postgres-backup"}
    egress = dev[("NetworkPolicy", "mlflow-to-stores")]["spec"]["egress"]
    ports = {p["port"] for rule in egress for p in rule["ports"]}
    assert ports == {5432, 9000, 53}


def test_mlflow_keeps_the_postgres_password_out_of_its_uri_and_accepts_port_forwards(dev):
    container = dev[("Deployment", "mlflow")]["spec"]["template"]["spec"]["containers"][0]
    args = " ".join(container["args"])
    assert "PASSWORD" not in args  # libpq reads PGPASSWORD: no URL-encoding to get wrong
    assert "PGPASSWORD" in {e["name"] for e in container["env"]}
    hosts = re.search(r"--allowed-hosts=(\S+)", args).group(1).split(",")
    assert {"localhost:*", "127.0.0.1:*"} <= set(hosts)


def test_committed_examples_cannot_be_deployed_and_make_secrets_fixes_that(tmp_path):
    for example in (REPO_ROOT / "k8s/base/secrets").glob("*.env.example"):
        shutil.copy(example, tmp_path / example.name)
        assert "change-me" not in example.read_text()
    (tmp_path / "postgres.env").write_text("POSTGRES_USER=mlflow\nPOSTGRES_PASSWORD=change-me\n")
    assert any("postgres.env: POSTGRES_PASSWORD" in p for p in cluster_secrets.problems(tmp_path))
    assert any("minio.env is missing" in p for p in cluster_secrets.problems(tmp_path))
    (tmp_path / "postgres.env").unlink()

    written = cluster_secrets.write_missing(tmp_path)
    assert {p.name for p in written} == {"postgres.env", "minio.env", "mlflow-client-auth.env"}
    assert cluster_secrets.problems(tmp_path) == []
    first = cluster_secrets.env_values((tmp_path / "postgres.env").read_text())
    assert len(first["POSTGRES_PASSWORD"]) >= 40 and first["POSTGRES_USER"] == "mlflow"
    assert oct((tmp_path / "postgres.env").stat().st_mode & 0o777) == "0o600"
    assert cluster_secrets.write_missing(tmp_path) == []  # live passwords are never replaced
    minio = cluster_secrets.env_values((tmp_path / "minio.env").read_text())
    assert minio["MINIO_ROOT_PASSWORD"] != first["POSTGRES_PASSWORD"]


def test_cluster_smoke_script_parses_pins_its_versions_and_needs_docker(tmp_path):
    assert subprocess.run(["bash", "-n", str(SMOKE)]).returncode == 0
    text = SMOKE.read_text()
    for pin in (
        "KIND_VERSION=v",
        "KIND_NODE_IMAGE=kindest/node:v",
        "KFP_VERSION=2.",
        "TRAINER_VERSION=v",
    ):
        assert pin in text, pin
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        assert subprocess.run([shellcheck, str(SMOKE)]).returncode == 0
    # a PATH without docker: it stops before touching anything, and says why
    (tmp_path / "bin").mkdir()
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"}
    result = subprocess.run(["bash", str(SMOKE)], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert "cluster-smoke: needs" in result.stderr and "Docker" in result.stderr


@pytest.mark.parametrize("dockerfile", sorted((REPO_ROOT / "docker").glob("Dockerfile*")))
def test_images_record_their_commit_and_reference(dockerfile):
    text = dockerfile.read_text()
    assert "MLOPS_GIT_COMMIT=${REVISION}" in text and "MLOPS_IMAGE=${IMAGE}" in text
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "--build-arg REVISION=$$(git rev-parse HEAD)" in makefile
    assert makefile.count("--build-arg IMAGE=") == 3
