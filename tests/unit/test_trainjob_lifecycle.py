"""The TrainJob's lifecycle against fake API objects that record every call and play scripted
answers: get-or-create, retries with backoff, pending reasons, the failure's reason and message,
deletion on failure and SIGTERM; and API_CALLS (the Role's rules) against the calls made."""

import os
import signal

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from components.epi_finetune.trainjob import (
    API_CALLS,
    GROUP,
    PLURAL,
    TrainJobCancelled,
    TrainJobFailed,
    launcher_owner,
    pending_reasons,
    run_trainjob,
)

NAMESPACE, NAME = "ml", "finetune-3ff8b25cff"
OURS = {"apiVersion": "v1", "kind": "Pod", "name": "launcher-2", "uid": "uid-2"}
MANIFEST = {"metadata": {"name": NAME, "namespace": NAMESPACE, "ownerReferences": [OURS]}}
RUNNING = {"metadata": {"name": NAME}, "status": {"conditions": []}}
COMPLETE = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
FAILED = {
    "status": {
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "DeadlineExceeded",
                "message": "TrainJob exceeded its activeDeadlineSeconds",
            }
        ]
    }
}


class Script:
    """Answers in order, the last one again and again; an exception is raised, a callable called."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def next(self):
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer() if callable(answer) else answer


class FakeApi:
    """CustomObjectsApi and CoreV1Api in one: each call recorded as (API group, resource, verb),
    here and in `made` (every call of every fake), its arguments in `bodies[resource, verb]`."""

    made = set()

    def __init__(self, **scripts):
        self.scripts = {verb: Script(*answers) for verb, answers in scripts.items()}
        self.calls, self.bodies = [], {}

    def _call(self, group, resource, verb, body=None):
        self.calls.append((group, resource, verb))
        self.made.add((group, resource, verb))
        self.bodies[resource, verb] = body
        return self.scripts[f"{resource}_{verb}".replace("/", "_")].next()

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):
        return self._call(group, plural, "create", body)

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):
        return self._call(group, plural, "get")

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):
        return self._call(group, plural, "patch", body)

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name, **kw):
        return self._call(group, plural, "delete", kw)

    def read_namespaced_pod(self, name, namespace):
        return self._call("", "pods", "get")

    def list_namespaced_pod(self, namespace, label_selector):
        return client.V1PodList(items=self._call("", "pods", "list", label_selector))

    def list_namespaced_event(self, namespace, field_selector):
        return client.CoreV1EventList(items=self._call("", "events", "list", field_selector))

    def read_namespaced_pod_log(self, name, namespace, **kw):
        return self._call("", "pods/log", "get", kw)


class LogStream:
    def __init__(self, *chunks):
        self.chunks = chunks

    def stream(self):
        yield from self.chunks


def pod(name, phase, index="0", conditions=None):
    labels = {
        "jobset.sigs.k8s.io/jobset-name": NAME,
        "jobset.sigs.k8s.io/replicatedjob-name": "node",
        "batch.kubernetes.io/job-completion-index": index,
    }
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels, uid=f"uid-{name}"),
        status=client.V1PodStatus(phase=phase, conditions=conditions),
    )


UNSCHEDULABLE = client.V1PodCondition(
    type="PodScheduled",
    status="False",
    reason="Unschedulable",
    message="0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
)


def event(pod_name, reason, message, type_="Warning"):
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{pod_name}.1"),
        involved_object=client.V1ObjectReference(kind="Pod", name=pod_name),
        reason=reason,
        message=message,
        type=type_,
    )


def run(api, sleeps=None, lines=None):
    sleeps = [] if sleeps is None else sleeps
    lines = [] if lines is None else lines
    run_trainjob(MANIFEST, api, api, poll_seconds=15.0, log=lines.append, sleep=sleeps.append)
    return lines


def test_a_completed_trainjob_streams_rank0_and_is_kept():
    api = FakeApi(
        trainjobs_create=[RUNNING],
        trainjobs_get=[RUNNING, RUNNING, COMPLETE],
        pods_list=[[pod("n-0", "Running"), pod("n-1", "Running", index="1")]],
        pods_log_get=[LogStream(b"step 1 loss 2.0\nstep 2 ", b"loss 1.5\n")],
    )
    lines = run(api)
    assert "step 1 loss 2.0" in lines and f"TrainJob {NAMESPACE}/{NAME} completed" in lines
    assert api.bodies["pods/log", "get"] == {
        "container": "node",
        "follow": True,
        "_preload_content": False,
    }
    assert (GROUP, PLURAL, "delete") not in api.calls


def test_a_retried_launcher_reattaches_and_adds_its_pod_to_the_owners():
    earlier = {"apiVersion": "v1", "kind": "Pod", "name": "launcher-1", "uid": "uid-1"}
    existing = {"metadata": {"name": NAME, "ownerReferences": [earlier]}}
    api = FakeApi(
        trainjobs_create=[ApiException(status=409, reason="AlreadyExists")],
        trainjobs_get=[existing, COMPLETE],
        trainjobs_patch=[existing],
        pods_list=[[]],
    )
    lines = run(api)
    assert api.calls.count((GROUP, PLURAL, "create")) == 1
    assert api.bodies[PLURAL, "patch"] == {"metadata": {"ownerReferences": [earlier, OURS]}}
    assert f"re-attached to TrainJob {NAMESPACE}/{NAME}" in lines


def test_a_trainjob_still_being_deleted_is_waited_out_then_created_again():
    terminating = {"metadata": {"name": NAME, "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    api = FakeApi(
        trainjobs_create=[ApiException(status=409), RUNNING],
        trainjobs_get=[terminating, COMPLETE],
        pods_list=[[]],
    )
    sleeps = []
    run(api, sleeps)
    assert api.calls.count((GROUP, PLURAL, "create")) == 2 and sleeps == [5.0]


def test_api_5xx_and_dropped_connections_are_retried_with_backoff():
    api = FakeApi(
        trainjobs_create=[
            ApiException(status=503),
            urllib3.exceptions.ProtocolError("Connection aborted."),
            ApiException(status=429),
            RUNNING,
        ],
        trainjobs_get=[ConnectionResetError(), COMPLETE],
        pods_list=[[]],
    )
    sleeps = []
    run(api, sleeps)
    assert sleeps == [1, 2, 4, 1]  # three failed creates, then one failed read


def test_an_api_that_stays_down_fails_the_launcher_naming_the_call_and_deletes_the_job():
    api = FakeApi(
        trainjobs_create=[RUNNING],
        trainjobs_get=[ApiException(status=500, reason="Internal Server Error")],
        trainjobs_delete=[{}],
    )
    sleeps = []
    with pytest.raises(RuntimeError, match=f"reading TrainJob {NAMESPACE}/{NAME} failed 6 times"):
        run(api, sleeps)
    assert sleeps == [1, 2, 4, 8, 16]
    assert api.calls[-1] == (GROUP, PLURAL, "delete")


def test_a_failed_trainjob_raises_its_reason_and_message_and_is_deleted():
    api = FakeApi(
        trainjobs_create=[RUNNING], trainjobs_get=[FAILED], trainjobs_delete=[{}], pods_list=[[]]
    )
    with pytest.raises(
        TrainJobFailed, match="DeadlineExceeded: TrainJob exceeded its activeDeadlineSeconds"
    ):
        run(api)
    assert api.bodies[PLURAL, "delete"] == {"propagation_policy": "Foreground"}


def test_a_refused_create_propagates_naming_the_call_and_a_missing_job_is_fine_to_delete():
    api = FakeApi(
        trainjobs_create=[ApiException(status=403, reason="Forbidden")],
        trainjobs_delete=[ApiException(status=404)],
    )
    with pytest.raises(ApiException) as refused:
        run(api)
    assert refused.value.__notes__ == [f"while creating TrainJob {NAMESPACE}/{NAME}"]


def test_sigterm_deletes_the_trainjob_and_restores_the_handler():
    def cancel():
        os.kill(os.getpid(), signal.SIGTERM)
        return RUNNING

    before = signal.getsignal(signal.SIGTERM)
    api = FakeApi(
        trainjobs_create=[RUNNING],
        trainjobs_get=[RUNNING, cancel, RUNNING],
        trainjobs_delete=[{}],
        pods_list=[[]],
    )
    lines = []
    with pytest.raises(TrainJobCancelled):
        run(api, lines=lines)
    assert api.calls[-1] == (GROUP, PLURAL, "delete") and lines[-1].startswith("deleted")
    assert signal.getsignal(signal.SIGTERM) is before


def test_pending_nodes_are_reported_with_their_reasons_once_until_they_change():
    waiting = [pod("n-0", "Pending", conditions=[UNSCHEDULABLE]), pod("n-1", "Pending", "1")]
    scheduling = event("n-0", "FailedScheduling", "0/3 nodes are available")
    api = FakeApi(
        trainjobs_create=[RUNNING],
        trainjobs_get=[RUNNING, RUNNING, RUNNING, COMPLETE],
        pods_list=[waiting, waiting, [pod("n-0", "Pending"), pod("n-1", "Pending", "1")]],
        events_list=[[scheduling], [scheduling], []],
    )
    sleeps = []
    lines = run(api, sleeps)
    pending = [line for line in lines if "pending" in line]
    assert pending == [
        f"TrainJob {NAMESPACE}/{NAME} pending:\n"
        "  n-0: Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.\n"
        "  n-0: FailedScheduling: 0/3 nodes are available",
        f"TrainJob {NAMESPACE}/{NAME} pending:\n  (no reason yet)",
    ]
    assert sleeps == [15.0, 15.0, 15.0]


def test_pending_reasons_include_waiting_containers_and_skip_running_pods_and_normal_events():
    pulling = pod("n-1", "Pending", "1")
    pulling.status.container_statuses = [
        client.V1ContainerStatus(
            name="node",
            image="img:1",
            image_id="",
            ready=False,
            restart_count=0,
            state=client.V1ContainerState(
                waiting=client.V1ContainerStateWaiting(
                    reason="ImagePullBackOff", message='Back-off pulling image "img:1"'
                )
            ),
        )
    ]
    pods = [pod("n-0", "Running"), pulling]
    events = [event("n-0", "BackOff", "restarting"), event("n-1", "Pulling", "pulling", "Normal")]
    assert pending_reasons(pods, events) == [
        'n-1: ImagePullBackOff: Back-off pulling image "img:1"'
    ]


def test_the_launcher_pod_owns_the_trainjob():
    api = FakeApi(pods_get=[pod("launcher-2", "Running")])
    assert launcher_owner(api, NAMESPACE, "launcher-2") == {
        "name": "launcher-2",
        "uid": "uid-launcher-2",
    }


def test_api_calls_lists_exactly_the_calls_the_launcher_makes():
    """Every scenario above, together, makes every call of API_CALLS and no other."""
    FakeApi.made.clear()
    for scenario in (
        test_a_completed_trainjob_streams_rank0_and_is_kept,
        test_a_retried_launcher_reattaches_and_adds_its_pod_to_the_owners,
        test_a_failed_trainjob_raises_its_reason_and_message_and_is_deleted,
        test_pending_nodes_are_reported_with_their_reasons_once_until_they_change,
        test_the_launcher_pod_owns_the_trainjob,
    ):
        scenario()
    assert FakeApi.made == set(API_CALLS)
    assert len(API_CALLS) == len(set(API_CALLS))
