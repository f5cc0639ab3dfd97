"""MLflow conventions: one run per step tagged with git commit, step and profile (and, on the
cluster, the KFP run, pipeline version and image); models registered with alias `challenger`;
`champion` moves only when the challenger beats it (never stages)."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

# MLflow is imported where a run starts or a model is registered, not here: importing it costs
# about a second, and `--help`, a params error and `is_main_process` need none of it.
if TYPE_CHECKING:
    import mlflow
    from mlflow.entities.model_registry import ModelVersion
    from pydantic import BaseModel

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "mlops-methods"
CHALLENGER, CHAMPION = "challenger", "champion"
log = logging.getLogger(__name__)
# MLflow's log lines a user of the pipeline cannot act on: the creation of a new SQLite store (the
# first run of every clone, at INFO; alembic's migration lines MLflow already keeps at WARNING),
# and its advice on how we log models: the segmentation network is pickled on purpose (pt2 would
# fix its input size), the E-GRM scorer is a Python object, and our transformers models are built
# locally (no hub model card, no license to look up). Every other warning still shows.
MLFLOW_ADVICE = {
    "mlflow.pytorch": ("Saving pytorch model by Pickle",),
    "mlflow.pyfunc": ("Passing a Python object as `python_model`",),
    "mlflow.transformers": (
        "The model card could not be retrieved",
        "Unable to find license information",
    ),
}


class DropMessages(logging.Filter):
    """Drops a logger's records whose message starts with one of `starts`."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def quiet_mlflow_logs() -> None:
    """Called on import. MLflow configures its top logger only, so these hold whether MLflow is
    imported before or after."""
    logging.getLogger("mlflow.store").setLevel(logging.WARNING)
    for name, starts in MLFLOW_ADVICE.items():
        logging.getLogger(name).addFilter(DropMessages(starts))


quiet_mlflow_logs()


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


# Where a cluster task's lineage comes from: the image bakes in its commit and its own reference at
# build time (docker/); pipelines/tasks.py exports the KFP run and the pipeline version.
IMAGE_COMMIT_ENV = "MLOPS_GIT_COMMIT"
LINEAGE_TAGS = {
    "kfp_run_id": "KFP_RUN_ID",
    "kfp_run_name": "KFP_RUN_NAME",
    "kfp_pipeline_version": "KFP_PIPELINE_VERSION",
    "image": "MLOPS_IMAGE",
}


def git_commit() -> str:
    """HEAD of the checkout, else the commit baked into the image, else `unknown`."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get(IMAGE_COMMIT_ENV) or "unknown"


def lineage_tags(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """LINEAGE_TAGS whose variable is set and not empty (outside a cluster run: none)."""
    return {tag: environ[env] for tag, env in LINEAGE_TAGS.items() if environ.get(env)}


def run_tags(step: str, profile: str) -> dict[str, str]:
    return {"git_commit": git_commit(), "step": step, "profile": profile, **lineage_tags()}


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def is_main_process() -> bool:
    """False on the other ranks of a `torchrun` job: only rank 0 tracks and writes outputs."""
    return int(os.environ.get("RANK", "0")) == 0


def open_experiment() -> None:
    """Points MLflow at the project's store and experiment, creating either if it is new."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT))


@contextlib.contextmanager
def step_run(
    step: str, profile: str, params: BaseModel | None = None
) -> Iterator[mlflow.ActiveRun | None]:
    """An MLflow run for one pipeline step, with the project's tags and the step's params (none
    on the other ranks of a distributed job)."""
    if not is_main_process():
        yield None
        return
    import mlflow

    open_experiment()
    with mlflow.start_run(run_name=step, tags=run_tags(step, profile)) as run:
        if params is not None:
            mlflow.log_params(flatten(params.model_dump(mode="json"), prefix=f"{step}."))
        yield run


def register(model_uri: str, name: str, tags: Mapping[str, Any] | None = None) -> ModelVersion:
    """Register `model_uri` as a new version of `name` and point `challenger` at it."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri())
    version = mlflow.register_model(
        model_uri, name, tags={k: str(v) for k, v in (tags or {}).items()}
    )
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    return version


def promote_if_better(
    name: str, version: str, metric: str, value: float, greater_is_better: bool = True
) -> bool:
    """Move `champion` to `version` if there is none yet or `value` beats the champion's metric
    (read from the champion version's `metric` tag). Returns whether it moved."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri())
    client.set_model_version_tag(name, version, metric, str(value))
    try:
        champion = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        champion = None
    if champion is not None:
        best = float(champion.tags.get(metric, "nan"))
        beaten = value > best if greater_is_better else value < best
        if best == best and not beaten:  # best == best: False only for NaN (untagged champion)
            return False
    client.set_registered_model_alias(name, CHAMPION, version)
    return True


def register_and_promote(
    model_uri: str,
    name: str,
    metric: str,
    value: float,
    greater_is_better: bool = True,
    tags: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """`register` (tagged with `metric`) then `promote_if_better`; returns the metrics a step
    reports about it: `registered_version` and `promoted` (0/1)."""
    version = register(model_uri, name, tags={metric: value, **(tags or {})})
    promoted = promote_if_better(name, version.version, metric, value, greater_is_better)
    log.info(
        "registered %s v%s (%s=%.3f), champion %s",
        name,
        version.version,
        metric,
        value,
        "moved" if promoted else "kept",
    )
    return {"registered_version": float(version.version), "promoted": float(promoted)}
