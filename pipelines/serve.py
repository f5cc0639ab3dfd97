"""`make serve`: the InferenceServices of k8s/overlays/serving with each registry reference
(`STORAGE_URI=models:/<name>@<alias>`) replaced by where that model version's files are, which
KServe's storage initializer downloads. Reads rendered manifests on stdin, writes them on stdout,
and reports each resolution on stderr."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from components.common.io import ProjectError
from components.common.tracking import tracking_uri

# where the in-cluster server (k8s/base/mlflow.yaml, --artifacts-destination) keeps what it
# proxies as mlflow-artifacts:/...
ARTIFACTS_DESTINATION = "s3://mlflow/artifacts"
PROXIED = "mlflow-artifacts:"
FETCHABLE = ("s3://", "gs://", "https://", "hdfs://", "pvc://")
STORAGE_URI_ENV = "STORAGE_URI"
REGISTRY_PREFIX = "models:/"


def parse_reference(reference: str) -> tuple[str, str]:
    """`models:/sft-model@champion` -> ("sft-model", "champion")."""
    name, _, alias = reference.removeprefix(REGISTRY_PREFIX).partition("@")
    if not reference.startswith(REGISTRY_PREFIX) or not name or not alias:
        raise ProjectError(f"expected models:/<name>@<alias>, got {reference!r}")
    return name, alias


def storage_uri(artifact_uri: str, artifacts_destination: str = ARTIFACTS_DESTINATION) -> str:
    """The URI KServe fetches for an MLflow artifact location: a proxied `mlflow-artifacts:/x`
    is `x` under the server's artifact destination; object-store URIs are used as they are."""
    if artifact_uri.startswith(PROXIED):
        path = artifact_uri.removeprefix(PROXIED).lstrip("/")
        return f"{artifacts_destination.rstrip('/')}/{path}"
    if artifact_uri.startswith(FETCHABLE):
        return artifact_uri
    raise ProjectError(
        f"KServe cannot fetch {artifact_uri!r}: point MLFLOW_TRACKING_URI at the cluster's server"
    )


def resolve_alias(name: str, alias: str) -> tuple[str, str]:
    """(version, artifact location) of the version `alias` points at in the registry."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri())
    try:
        version = client.get_model_version_by_alias(name, alias).version
    except MlflowException as error:
        raise ProjectError(f"no {name}@{alias} in the registry at {tracking_uri()}") from error
    return str(version), client.get_model_version_download_uri(name, version)


def pin_inference_service(service: dict[str, Any], artifacts_destination: str) -> dict[str, Any]:
    """`service` with its registry reference replaced by the resolved storage URI, and the model
    version recorded in annotations (what is served, at a glance)."""
    for container in service["spec"]["predictor"].get("containers", []):
        for env in container.get("env", []):
            if env["name"] == STORAGE_URI_ENV and env["value"].startswith(REGISTRY_PREFIX):
                name, alias = parse_reference(env["value"])
                version, artifact_uri = resolve_alias(name, alias)
                env["value"] = storage_uri(artifact_uri, artifacts_destination)
                service["metadata"].setdefault("annotations", {}).update(
                    {
                        "mlops-methods/registered-model": name,
                        "mlops-methods/model-version": version,
                        "mlops-methods/model-alias": alias,
                    }
                )
                print(f"{name}@{alias}: version {version}, {env['value']}", file=sys.stderr)
    return service


def pin_manifests(documents: list[dict[str, Any]], artifacts_destination: str) -> list[dict]:
    return [
        pin_inference_service(d, artifacts_destination) if d["kind"] == "InferenceService" else d
        for d in documents
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve", description=__doc__)
    parser.add_argument("--artifacts-destination", default=ARTIFACTS_DESTINATION)
    args = parser.parse_args(argv)
    documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
    try:
        pinned = pin_manifests(documents, args.artifacts_destination)
    except ProjectError as error:
        print(error, file=sys.stderr)
        return 1
    yaml.safe_dump_all(pinned, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
