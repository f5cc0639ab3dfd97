"""Serving the champion: `mlflow models serve` on `sft-model@champion` answers one real request,
and `make serve`'s resolver pins the overlay's InferenceServices to the champion's artifacts,
valid against KServe's real CRD."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import mlflow
import pytest

from components.common.serving import log_answering_model
from components.common.tracking import register_and_promote
from pipelines import serve
from tests.conftest import REPO_ROOT, venv_env
from tests.crds import validate_custom_resource
from tests.integration.test_champion_model import MAX_NEW_TOKENS, tiny_lm  # noqa: F401
from tests.integration.test_k8s_manifests import k8s_copy, render  # noqa: F401

pytestmark = pytest.mark.integration
ISVC_CRD = REPO_ROOT / "tests/crds/serving.kserve.io_inferenceservices.v0.20.0.yaml"
SERVER_START_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_pinged(url: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, "mlflow models serve exited"
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer /ping within {SERVER_START_S} s")


def invoke(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def champion(mlflow_uri, tiny_lm):  # noqa: F811
    """`sft-model` registered and promoted as the evaluate step does."""
    model, tokenizer = tiny_lm
    # an earlier test may have left another store and experiment active, process-wide
    mlflow.set_tracking_uri(mlflow_uri)
    mlflow.set_experiment("serving")
    with mlflow.start_run():
        info = log_answering_model(model, tokenizer, MAX_NEW_TOKENS)
    register_and_promote(info.model_uri, "sft-model", "accuracy_mean", 1.0)
    return "models:/sft-model@champion"


def test_mlflow_models_serve_answers_on_the_champion(champion, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", champion]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=venv_env()
    )
    try:
        wait_until_pinged(url, process, time.monotonic() + SERVER_START_S)
        answer = invoke(url, {"inputs": ["3+4="]})
    finally:
        if process.poll() is None:  # the server and its uvicorn workers
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    assert answer == {"predictions": ["7"]}, (tmp_path / "serve.log").read_text()[-2000:]


def test_resolver_finds_the_champion_version_in_the_registry(champion):
    version, artifact_uri = serve.resolve_alias("sft-model", "champion")
    assert version == "1"
    assert mlflow.pyfunc.load_model(artifact_uri).predict(["3+4="]) == ["7"]


def test_proxied_artifacts_map_to_the_servers_destination():
    proxied = "mlflow-artifacts:/1/models/m-abc/artifacts"
    assert serve.storage_uri(proxied) == "s3://mlflow/artifacts/1/models/m-abc/artifacts"
    assert serve.storage_uri("s3://bucket/m") == "s3://bucket/m"
    with pytest.raises(serve.ProjectError, match="cannot fetch"):
        serve.storage_uri("/home/me/mlruns/1/models/m-abc/artifacts")
    with pytest.raises(serve.ProjectError, match="models:/<name>@<alias>"):
        serve.parse_reference("models:/sft-model")


def test_serving_overlay_pins_both_champions_and_matches_the_kserve_crd(k8s_copy, monkeypatch):  # noqa: F811
    import yaml

    versions = {"sft-model": "3", "pancreas-seg": "5"}
    monkeypatch.setattr(
        serve,
        "resolve_alias",
        lambda name, alias: (versions[name], f"mlflow-artifacts:/1/models/{name}/artifacts"),
    )
    documents = list(yaml.safe_load_all(render(k8s_copy, "serving")))
    services = [
        d
        for d in serve.pin_manifests(documents, serve.ARTIFACTS_DESTINATION)
        if d["kind"] == "InferenceService"
    ]
    assert {s["metadata"]["name"] for s in services} == set(versions)
    for service in services:
        validate_custom_resource(service, ISVC_CRD)
        name = service["metadata"]["name"]
        (container,) = service["spec"]["predictor"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["STORAGE_URI"] == f"s3://mlflow/artifacts/1/models/{name}/artifacts"
        assert service["metadata"]["annotations"]["mlops-methods/model-version"] == versions[name]
        assert container["image"].startswith("ghcr.io/") and ":" in container["image"]
        assert "--env-manager" in container["args"]
    secrets = {d["metadata"]["name"].split("-")[0]: d for d in documents if d["kind"] == "Secret"}
    kserve, minio = secrets["kserve"]["data"], secrets["minio"]["data"]
    assert kserve["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert kserve["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
