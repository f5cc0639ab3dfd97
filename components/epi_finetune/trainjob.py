"""Multi-node fine-tuning as a Kubeflow Trainer v2 `TrainJob` (runtime `torch-distributed`).

`build_trainjob` is pure (params in, the manifest out), built with the typed models of
`kubeflow-trainer-api` (the Trainer release's own OpenAPI models) so it is unit-tested without a
cluster. `run_trainjob` owns the TrainJob's lifecycle through the API objects it is given: it
creates the job or re-attaches to the one a previous try of this task created, reports why nodes
are pending, streams the rank-0 logs, and deletes the job when cancelled (SIGTERM) or failed.

Every node runs the same finetune entrypoint as DVC and KFP (`python -m components.epi_finetune`)
under `torchrun`, which reads the node count, rank and master address from the `PET_*` variables
that the runtime sets.

Minimum versions: Kubeflow Trainer 2.2.0 (`runtimePatches` replaced `podTemplateOverrides` there;
older releases drop the field, and with it the workspace, selectors and tolerations), KFP backend
2.15.0 (task_config passthrough, kubeflow/pipelines#12185), NVIDIA driver R580 (>= 580.65.06,
the minimum of CUDA 13.0, which the CUDA wheel of torch 2.13 is built against)."""

from __future__ import annotations

import hashlib
import re
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import urllib3
from kubeflow_trainer_api import models as trainer
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field

GROUP, VERSION, PLURAL = "trainer.kubeflow.org", "v1alpha1", "trainjobs"
RUNTIME = "torch-distributed"
# Trainer's webhook requires a domain-prefixed path here (validation.IsDomainPrefixedPath)
MANAGER = "mlops-methods.io/finetune-launcher"
NODE = "node"  # the runtime's replicated job and container that run the trainer
SHM_VOLUME = "dshm"
# the launcher outlives its TrainJob by this much: time to delete it and copy its outputs back
DEADLINE_MARGIN_SECONDS = 300
# JobSet pod names are `<trainjob>-node-<job>-<pod>-<5 random>`; 40 keeps them within 63
MAX_NAME_LENGTH = 40
HASH_LENGTH = 10
JOBSET_NAME_LABEL = "jobset.sigs.k8s.io/jobset-name"
REPLICATED_JOB_LABEL = "jobset.sigs.k8s.io/replicatedjob-name"
JOB_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"

# Every Kubernetes API call of the launcher, as (API group, resource, verb): its Role's rules.
API_CALLS = (
    (GROUP, PLURAL, "create"),
    (GROUP, PLURAL, "get"),
    (GROUP, PLURAL, "patch"),  # a re-attaching launcher adds its pod to the owners
    (GROUP, PLURAL, "delete"),
    ("", "pods", "get"),  # the launcher's own pod: the TrainJob's owner
    ("", "pods", "list"),  # the nodes: pending reasons, rank 0
    ("", "pods/log", "get"),
    ("", "events", "list"),
)

T = TypeVar("T")


class TrainJobParams(BaseModel):
    """What a TrainJob needs; the Kubernetes fields come as KFP's task_config hands them over."""

    # KFP may hand quantities over as numbers ("4" GPUs); Kubernetes wants strings
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    name: str = Field(pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", max_length=MAX_NAME_LENGTH)
    namespace: str
    image: str
    num_nodes: int = Field(ge=1)
    command: list[str]
    shm_size: str = Field(description="size of each node's in-memory /dev/shm, e.g. '8Gi'")
    active_deadline_seconds: int = Field(ge=1)
    owner: dict[str, str] | None = None  # the launcher pod: {"name", "uid"}
    resources: dict[str, dict[str, str]] | None = None
    env: list[dict[str, Any]] | None = None
    volumes: list[dict[str, Any]] | None = None
    volume_mounts: list[dict[str, Any]] | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[dict[str, Any]] | None = None


def trainjob_name(run_id: str, task: str) -> str:
    """`<task>-<first 10 hex of sha256("run_id/task")>`: the same for every try of a run's task,
    another one in another run; a DNS-1035 label of at most MAX_NAME_LENGTH characters."""
    digest = hashlib.sha256(f"{run_id}/{task}".encode()).hexdigest()[:HASH_LENGTH]
    stem = re.sub(r"[^a-z0-9]+", "-", task.lower()).strip("-")
    stem = stem[: MAX_NAME_LENGTH - HASH_LENGTH - 1].rstrip("-")
    if not stem[:1].isalpha():
        raise ValueError(f"task {task!r} must start with a letter to name a TrainJob")
    return f"{stem}-{digest}"


def active_deadline(timeout_seconds: int, margin_seconds: int = DEADLINE_MARGIN_SECONDS) -> int:
    """The TrainJob's activeDeadlineSeconds: the task's timeout less the launcher's margin."""
    deadline = timeout_seconds - margin_seconds
    if deadline < 1:
        raise ValueError(
            f"task timeout {timeout_seconds}s leaves no time for the TrainJob after the "
            f"launcher's {margin_seconds}s margin"
        )
    return deadline


def backoff_seconds(attempt: int, base: float = 1.0, cap: float = 30.0) -> float:
    """Wait before retry `attempt` (0-based): base, 2 base, 4 base, ... at most `cap`."""
    return min(cap, base * 2**attempt)


# The KFP run's lineage variables (components/common/tracking.py LINEAGE_TAGS) that the launcher
# hands on, so the nodes' MLflow runs carry them too; not MLOPS_IMAGE: the nodes run the CUDA
# image, which bakes its own reference.
FORWARDED_LINEAGE_ENV = ("KFP_RUN_ID", "KFP_RUN_NAME", "KFP_PIPELINE_VERSION")


def node_env(
    task_env: list[dict[str, Any]] | None, environ: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The task's env (MLflow settings) plus the launcher's lineage variables that are set."""
    lineage = [
        {"name": name, "value": environ[name]}
        for name in FORWARDED_LINEAGE_ENV
        if environ.get(name)
    ]
    return [*(task_env or []), *lineage]


def finetune_command(run_dir: str, args: list[str]) -> list[str]:
    """`torchrun -m components.epi_finetune ARGS` started in `run_dir` (checkpoints land there).

    A TrainJob has no workingDir, so a shell changes directory first; `$0` and `$@` carry the
    directory and the arguments without any quoting of our own."""
    script = 'cd "$0" && exec torchrun -m components.epi_finetune "$@"'
    return ["/bin/sh", "-c", script, run_dir, *args]


def _node_patch(params: TrainJobParams) -> trainer.TrainerV1alpha1RuntimePatch:
    """The nodes' pod patch: /dev/shm in memory (torch's dataloader workers and NCCL need more
    than the runtime's 64Mi) plus the task's volumes and scheduling, which TrainJob's trainer
    section cannot carry."""
    shm = {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": params.shm_size}}
    mounts = [{"name": SHM_VOLUME, "mountPath": "/dev/shm"}, *(params.volume_mounts or [])]
    pod = trainer.TrainerV1alpha1PodSpecPatch.from_dict(
        {
            "volumes": [shm, *(params.volumes or [])],
            "containers": [{"name": NODE, "volumeMounts": mounts}],
            "nodeSelector": params.node_selector or None,
            "tolerations": params.tolerations or None,
        }
    )
    job = trainer.TrainerV1alpha1ReplicatedJobPatch(
        name=NODE,
        template=trainer.TrainerV1alpha1JobTemplatePatch(
            spec=trainer.TrainerV1alpha1JobSpecPatch(
                template=trainer.TrainerV1alpha1PodTemplatePatch(spec=pod)
            )
        ),
    )
    return trainer.TrainerV1alpha1RuntimePatch(
        manager=MANAGER,
        trainingRuntimeSpec=trainer.TrainerV1alpha1TrainingRuntimeSpecPatch(
            template=trainer.TrainerV1alpha1JobSetTemplatePatch(
                spec=trainer.TrainerV1alpha1JobSetSpecPatch(replicatedJobs=[job])
            )
        ),
    )


def build_trainjob(params: TrainJobParams) -> dict[str, Any]:
    """The TrainJob manifest (camelCase, unset fields left out)."""
    owners = None
    if params.owner:
        owners = [
            trainer.IoK8sApimachineryPkgApisMetaV1OwnerReference(
                apiVersion="v1", kind="Pod", name=params.owner["name"], uid=params.owner["uid"]
            )
        ]
    job = trainer.TrainerV1alpha1TrainJob(
        apiVersion=f"{GROUP}/{VERSION}",
        kind="TrainJob",
        metadata=trainer.IoK8sApimachineryPkgApisMetaV1ObjectMeta(
            name=params.name,
            namespace=params.namespace,
            labels={"app.kubernetes.io/part-of": "mlops-methods"},
            ownerReferences=owners,
        ),
        spec=trainer.TrainerV1alpha1TrainJobSpec(
            runtimeRef=trainer.TrainerV1alpha1RuntimeRef(name=RUNTIME),
            trainer=trainer.TrainerV1alpha1Trainer.from_dict(
                {
                    "image": params.image,
                    "command": params.command,
                    "numNodes": params.num_nodes,
                    "resourcesPerNode": params.resources or None,
                    "env": params.env or None,
                }
            ),
            runtimePatches=[_node_patch(params)],
            activeDeadlineSeconds=params.active_deadline_seconds,
        ),
    )
    return job.to_dict()


def final_condition(trainjob: dict[str, Any]) -> dict[str, Any] | None:
    """The `Complete` or `Failed` condition once the TrainJob has ended, else None."""
    for condition in trainjob.get("status", {}).get("conditions", []):
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition
    return None


def pending_reasons(pods: list[Any], events: list[Any]) -> list[str]:
    """Why the nodes are not running yet: each pending pod's failing conditions (Unschedulable),
    its waiting containers (ImagePullBackOff) and its Warning events, one line each."""
    reasons = []
    pending = {pod.metadata.name for pod in pods if pod.status.phase == "Pending"}
    for pod in pods:
        if pod.metadata.name not in pending:
            continue
        for condition in pod.status.conditions or []:
            if condition.status == "False" and condition.reason:
                reasons.append(f"{pod.metadata.name}: {condition.reason}: {condition.message}")
        for container in pod.status.container_statuses or []:
            waiting = container.state.waiting if container.state else None
            if waiting and waiting.reason:
                reasons.append(f"{pod.metadata.name}: {waiting.reason}: {waiting.message}")
    for event in events:
        if event.type == "Warning" and event.involved_object.name in pending:
            reasons.append(f"{event.involved_object.name}: {event.reason}: {event.message}")
    return reasons


def is_transient(error: BaseException) -> bool:
    """API server 5xx and 429, and connections that failed: worth another try."""
    if isinstance(error, ApiException):
        return error.status == 429 or (error.status or 0) >= 500
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError)


def with_retries(
    call: Callable[[], T],
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    attempts: int = 6,
) -> T:
    """`call()`, tried again after `backoff_seconds` while it fails transiently. Other errors
    propagate as they are (a 409 or 404 means something to the caller), noting `what`."""
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:
            if not is_transient(error):
                error.add_note(f"while {what}")
                raise
            if attempt == attempts - 1:
                raise RuntimeError(f"{what} failed {attempts} times: {error}") from error
            sleep(backoff_seconds(attempt))
    raise AssertionError("unreachable")  # the last attempt returns or raises


def launcher_owner(core: Any, namespace: str, pod_name: str) -> dict[str, str]:
    """The launcher pod's name and uid, for the TrainJob's ownerReference."""
    pod = with_retries(
        lambda: core.read_namespaced_pod(pod_name, namespace), f"reading pod {pod_name}"
    )
    return {"name": pod.metadata.name, "uid": pod.metadata.uid}


class TrainJobCancelled(RuntimeError):
    """The launcher got SIGTERM (run cancelled, task timed out)."""


class TrainJobFailed(RuntimeError):
    """The TrainJob ended with condition Failed."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into TrainJobCancelled, so `finally` blocks run before the pod goes."""

    def cancel(signum: int, frame: Any) -> None:
        raise TrainJobCancelled(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, cancel)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class TrainJobSession:
    """One TrainJob seen through `objects` (CustomObjectsApi) and `core` (CoreV1Api)."""

    def __init__(
        self,
        manifest: dict[str, Any],
        objects: Any,
        core: Any,
        log: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.manifest, self.objects, self.core = manifest, objects, core
        self.log, self.sleep = log, sleep
        self.name = manifest["metadata"]["name"]
        self.namespace = manifest["metadata"]["namespace"]
        self.what = f"TrainJob {self.namespace}/{self.name}"

    def _retry(self, call: Callable[[], T], what: str) -> T:
        return with_retries(call, f"{what} {self.what}", self.sleep)

    def get(self) -> dict[str, Any]:
        return self._retry(
            lambda: self.objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name
            ),
            "reading",
        )

    def get_or_create(self) -> dict[str, Any]:
        """Create the TrainJob, or re-attach to the one a previous try created (adding this pod
        to its owners); wait out one that is still being deleted."""
        while True:
            try:
                created = self._retry(
                    lambda: self.objects.create_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, self.manifest
                    ),
                    "creating",
                )
                self.log(f"created {self.what}")
                return created
            except ApiException as error:
                if error.status != 409:  # 409: it exists already
                    raise
            existing = self.get()
            if not existing["metadata"].get("deletionTimestamp"):
                self.log(f"re-attached to {self.what}")
                return self._adopt(existing)
            self.log(f"{self.what} is still being deleted; waiting to create it again")
            self.sleep(5.0)

    def _adopt(self, existing: dict[str, Any]) -> dict[str, Any]:
        owners = existing["metadata"].get("ownerReferences", [])
        uids = {owner["uid"] for owner in owners}
        ours = [
            o for o in self.manifest["metadata"].get("ownerReferences", []) if o["uid"] not in uids
        ]
        if not ours:
            return existing
        patch = {"metadata": {"ownerReferences": [*owners, *ours]}}
        return self._retry(
            lambda: self.objects.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self.name, patch
            ),
            "adding this launcher to the owners of",
        )

    def delete(self) -> None:
        """Delete the TrainJob with its JobSet and pods (foreground); gone already is fine."""
        try:
            self._retry(
                lambda: self.objects.delete_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    self.namespace,
                    PLURAL,
                    self.name,
                    propagation_policy="Foreground",
                ),
                "deleting",
            )
            self.log(f"deleted {self.what}")
        except ApiException as error:
            if error.status != 404:  # 404: gone already
                raise

    def node_pods(self) -> list[Any]:
        selector = f"{JOBSET_NAME_LABEL}={self.name}"
        return self._retry(
            lambda: self.core.list_namespaced_pod(self.namespace, label_selector=selector).items,
            "listing the pods of",
        )

    def pod_events(self) -> list[Any]:
        return self._retry(
            lambda: (
                self.core.list_namespaced_event(
                    self.namespace, field_selector="involvedObject.kind=Pod"
                ).items
            ),
            "listing the events of",
        )

    def stream_rank0_log(self, pod_name: str) -> None:
        """Follow rank 0's log until its container ends; a broken stream only loses log lines."""
        try:
            response = self.core.read_namespaced_pod_log(
                pod_name, self.namespace, container=NODE, follow=True, _preload_content=False
            )
            for chunk in response.stream():
                for line in chunk.decode(errors="replace").splitlines():
                    self.log(line)
        except (ApiException, urllib3.exceptions.HTTPError, ConnectionError) as error:
            self.log(f"log stream of {pod_name} broke ({error}); still waiting for {self.what}")

    def wait(self, poll_seconds: float) -> dict[str, Any]:
        """Poll until the TrainJob ends; report new pending reasons, stream rank 0 once."""
        reported: list[str] = []
        streamed = False
        while (condition := final_condition(self.get())) is None:
            pods = self.node_pods()
            rank0 = [
                p
                for p in pods
                if (p.metadata.labels or {}).get(JOB_INDEX_LABEL) == "0"
                and (p.metadata.labels or {}).get(REPLICATED_JOB_LABEL) == NODE
                and p.status.phase != "Pending"
            ]
            if rank0 and not streamed:
                streamed = True
                self.stream_rank0_log(rank0[0].metadata.name)
                continue
            if any(p.status.phase == "Pending" for p in pods):
                reasons = pending_reasons(pods, self.pod_events())
                if reasons != reported:
                    self.log(
                        f"{self.what} pending:\n  " + "\n  ".join(reasons or ["(no reason yet)"])
                    )
                    reported = reasons
            self.sleep(poll_seconds)
        return condition


def run_trainjob(
    manifest: dict[str, Any],
    objects: Any,
    core: Any,
    poll_seconds: float = 15.0,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Create (or re-attach to) the TrainJob and wait for it to complete. Raises TrainJobFailed
    with the condition's reason and message; on that, on SIGTERM and on any other error the
    TrainJob is deleted, so it cannot hold GPU nodes after its launcher is gone."""
    session = TrainJobSession(manifest, objects, core, log, sleep)
    completed = False
    with sigterm_raises():
        try:
            session.get_or_create()
            condition = session.wait(poll_seconds)
            if condition["type"] == "Failed":
                raise TrainJobFailed(
                    f"{session.what} failed: {condition.get('reason')}: {condition.get('message')}"
                )
            completed = True
            log(f"{session.what} completed")
        finally:
            if not completed:
                session.delete()
