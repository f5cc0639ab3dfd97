"""Compile a pipeline, upload it to Kubeflow Pipelines and start a run; print the run's URL.

    python -m pipelines.submit --host http://localhost:8080 --pipeline llm \\
        --set finetune.max_steps=200 --finetune-nodes 2 --arg accelerator_count=4 --experiment epi

`--set` changes params.yaml values (the compiled pipeline's defaults) exactly as the DVC stages'
`--set` does; `--arg` sets a pipeline parameter that is not a params.yaml section, such as the
GPU scheduling of pipelines/tasks.py; `--finetune-nodes N` (llm, full) fine-tunes on N nodes
through a Kubeflow Trainer TrainJob; `--models-in` chooses how models pass between tasks (the run's
workspace PVC or KFP artifacts; by default the workspace for pretrained profiles)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kfp import compiler

from components.common.io import ProjectError
from pipelines.compile import PIPELINES
from pipelines.params import load_project_params

REACH_TIMEOUT_S = 10
MULTI_NODE_PIPELINES = {"llm", "full"}  # the ones with a fine-tuning step
WORKSPACE_PIPELINES = {"llm", "reward", "full"}  # the ones that pass language models along


class SubmitError(Exception):
    """A problem the user can fix (an unreachable host, a malformed argument)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipelines.submit", description=__doc__)
    parser.add_argument("--host", required=True, help="Kubeflow Pipelines API, e.g. http://...")
    parser.add_argument("--pipeline", required=True, choices=sorted(PIPELINES))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a params.yaml value, e.g. finetune.max_steps=200 (repeatable)",
    )
    parser.add_argument(
        "--arg",
        dest="arguments",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a pipeline parameter, e.g. accelerator_count=4 or cpu=16 (repeatable)",
    )
    parser.add_argument(
        "--finetune-nodes",
        type=int,
        default=1,
        help="fine-tune on this many GPU nodes as a Kubeflow Trainer TrainJob (llm, full)",
    )
    parser.add_argument(
        "--models-in",
        choices=["auto", "workspace", "artifacts"],
        default="auto",
        help="how models pass between tasks (llm, reward, full); auto: the run's workspace PVC "
        "for pretrained profiles and multi-node fine-tuning, KFP artifacts for tiny",
    )
    parser.add_argument("--experiment", default="mlops-methods")
    parser.add_argument("--namespace", default=None, help="Kubeflow profile namespace")
    parser.add_argument(
        "--service-account",
        default="mlops-pipeline-runner",
        help="runs as this ServiceAccount (k8s/base grants it the TrainJob launcher's rights)",
    )
    return parser.parse_args(argv)


def pipeline_arguments(assignments: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs, values parsed as YAML (`2` is an int, `{a: b}` a dict)."""
    arguments = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise SubmitError(f"--arg {assignment!r} is not NAME=VALUE")
        arguments[name] = yaml.safe_load(value)
    return arguments


def check_reachable(host: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """Fail fast, naming the host, instead of the KFP client's long retries."""
    url = host.rstrip("/") + "/apis/v2beta1/healthz"
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # something answered (an auth proxy may refuse the health check itself)
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SubmitError(f"cannot reach Kubeflow Pipelines at {host}: {reason}") from None


def pipeline_builder_options(
    args: argparse.Namespace, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The compile-time options of `args.pipeline`'s builder; `arguments`: the run's parameters."""
    options: dict[str, Any] = {}
    if args.finetune_nodes < 1:
        raise SubmitError(f"--finetune-nodes must be >= 1, got {args.finetune_nodes}")
    if args.pipeline in MULTI_NODE_PIPELINES:
        options["finetune_nodes"] = args.finetune_nodes
    elif args.finetune_nodes > 1:
        raise SubmitError(f"--finetune-nodes applies to {sorted(MULTI_NODE_PIPELINES)} only")
    if args.pipeline in WORKSPACE_PIPELINES:
        choice = {"workspace": True, "artifacts": False}.get(args.models_in)
        if choice is None and (arguments or {}).get("profile", "tiny") != "tiny":
            choice = True  # a pretrained profile chosen at run time, not in params.yaml
        if choice is False and args.finetune_nodes > 1:
            raise SubmitError("--finetune-nodes > 1 needs its models in the workspace")
        options["models_in_workspace"] = choice
    elif args.models_in != "auto":
        raise SubmitError(f"--models-in applies to {sorted(WORKSPACE_PIPELINES)} only")
    return options


def submit(args: argparse.Namespace) -> str:
    arguments = pipeline_arguments(args.arguments)
    options = pipeline_builder_options(args, arguments)
    check_reachable(args.host)
    from kfp import Client

    params = load_project_params(args.params, args.overrides)
    client = Client(host=args.host, namespace=args.namespace)
    with tempfile.TemporaryDirectory() as tmp:
        package = str(Path(tmp) / f"{args.pipeline}.yaml")
        pipeline = PIPELINES[args.pipeline](params, **options)
        compiler.Compiler().compile(pipeline, package_path=package)
        name = f"mlops-methods-{args.pipeline}"
        pipeline_id = client.get_pipeline_id(name)
        if pipeline_id is None:
            pipeline = client.upload_pipeline(package, pipeline_name=name, namespace=args.namespace)
            pipeline_id = pipeline.pipeline_id
        version = client.upload_pipeline_version(
            package,
            pipeline_version_name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            pipeline_id=pipeline_id,
        )
    experiment = client.create_experiment(args.experiment, namespace=args.namespace)
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=f"{args.pipeline}-{time.strftime('%Y%m%d-%H%M%S')}",
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=version.pipeline_version_id,
        service_account=args.service_account,
    )
    return f"{args.host.rstrip('/')}/#/runs/details/{run.run_id}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(submit(args))
    except (SubmitError, ProjectError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
