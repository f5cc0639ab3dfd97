"""Compile a pipeline, upload it to Kubeflow Pipelines and start a run; print the run's URL.

    python -m pipelines.submit --host http://localhost:8080 --pipeline llm \\
        --set finetune.max_steps=200 --finetune-nodes 2 --arg accelerator_count=4 --experiment epi

Two deployments of Kubeflow Pipelines (README, "Run on a cluster"): standalone, where every run
executes in the API server's namespace as `pipeline-runner` (no --namespace), and multi-user,
where it executes in the profile namespace given by --namespace as `default-editor`, with an
identity (--token-file or --cookie-file). k8s/overlays/{standalone,profile} bind the TrainJob
launcher's Role to that same account.

`--set` changes params.yaml values (the compiled pipeline's defaults) exactly as the DVC stages'
`--set` does; `--arg` sets a run's parameter: `section.key=value` (or `section={key: value}`)
changes keys of a params.yaml section for this run, anything else is a pipeline parameter such as
the GPU scheduling of pipelines/tasks.py. Both are validated before anything is uploaded.
`--finetune-nodes N` (llm, full) fine-tunes on N nodes through a Kubeflow Trainer TrainJob;
`--models-in` chooses how models pass between tasks (the run's workspace PVC or KFP artifacts; by
default the workspace for pretrained profiles), `--workspace-*` size that PVC."""

from __future__ import annotations

import argparse
import inspect
import json
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
from components.common.params import PROJECT_SECTIONS, validate_section
from pipelines.compile import PIPELINES
from pipelines.params import ProjectParams, load_project_params

REACH_TIMEOUT_S = 10
MULTI_NODE_PIPELINES = {"llm", "full"}  # the ones with a fine-tuning step
WORKSPACE_PIPELINES = {"llm", "reward", "knowtuning", "atm", "full"}  # they pass LMs along
# The accounts KFP runs pipelines as, to which k8s/overlays/{standalone,profile} bind the TrainJob
# launcher's Role.
STANDALONE_SERVICE_ACCOUNT = "pipeline-runner"
PROFILE_SERVICE_ACCOUNT = "default-editor"
# Builder keyword options set from --workspace-* (pipelines whose builder takes them).
WORKSPACE_OPTIONS = ("workspace_size", "workspace_storage_class", "workspace_access_mode")
VERSION_PARAMETER = "pipeline_version"  # a pipeline input submit fills with the uploaded version
# KFP IR parameter types and the Python values a run may give them
PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}


class SubmitError(Exception):
    """A problem the user can fix (an unreachable host, a malformed argument)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.submit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
        help="a run parameter: accelerator_count=4, cpu=16, or one key of a params.yaml section, "
        "finetune.max_steps=5 (repeatable)",
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
    parser.add_argument("--workspace-size", help="the run's workspace PVC size, e.g. 200Gi")
    parser.add_argument("--workspace-storage-class", help="its StorageClass (cluster default)")
    parser.add_argument(
        "--workspace-access-mode", help="its access mode, e.g. ReadWriteOnce on a single node"
    )
    parser.add_argument("--experiment", default="mlops-methods")
    parser.add_argument(
        "--namespace",
        default=None,
        help="multi-user Kubeflow: the profile namespace to run in (leave out for standalone KFP)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        help="a file holding a bearer token for the KFP API (multi-user), e.g. from "
        "`kubectl create token default-editor -n <namespace>`",
    )
    parser.add_argument(
        "--cookie-file",
        type=Path,
        help="a file holding the session cookie of the Kubeflow dashboard's login (multi-user), "
        "as NAME=VALUE, e.g. oauth2_proxy_kubeflow=...",
    )
    parser.add_argument(
        "--service-account",
        default=None,
        help=f"run as this ServiceAccount; default: {STANDALONE_SERVICE_ACCOUNT} (standalone) or "
        f"{PROFILE_SERVICE_ACCOUNT} (with --namespace), those k8s/overlays bind the TrainJob "
        "launcher's Role to",
    )
    return parser.parse_args(argv)


def default_service_account(namespace: str | None) -> str:
    return PROFILE_SERVICE_ACCOUNT if namespace else STANDALONE_SERVICE_ACCOUNT


def pipeline_arguments(assignments: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs, values parsed as YAML (`2` is an int, `{a: b}` a dict)."""
    arguments = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        if not sep or not name:
            raise SubmitError(f"--arg {assignment!r} is not NAME=VALUE")
        arguments[name] = yaml.safe_load(value)
    return arguments


def merged(tree: Any, path: list[str], value: Any) -> Any:
    """`tree` with `value` at `path`; a mapping merges into the mapping it replaces, key by key."""
    if not path:
        if isinstance(tree, dict) and isinstance(value, dict):
            return {key: merged(tree.get(key), [], sub) for key, sub in value.items()} | {
                key: sub for key, sub in tree.items() if key not in value
            }
        return value
    head, *rest = path
    base = tree if isinstance(tree, dict) else {}
    return base | {head: merged(base.get(head), rest, value)}


def run_arguments(params: ProjectParams, arguments: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters from `--arg`s: `section.key` (or a section's mapping) merged into
    that params.yaml section and validated, each whole section passed; other names as given."""
    sections = params.model_dump(mode="json")
    touched: set[str] = set()
    others = {}
    for name, value in arguments.items():
        section, *path = name.split(".")
        if section not in PROJECT_SECTIONS:
            others[name] = value
            continue
        sections = merged(sections, [section, *path], value)
        validate_section(ProjectParams, sections, f"--arg {name}")  # blames this --arg
        touched.add(section)
    validated = ProjectParams.model_validate(sections).model_dump(mode="json", exclude_none=True)
    return {section: validated[section] for section in sorted(touched)} | others


def compiled_inputs(package: Path) -> dict[str, str]:
    """A compiled pipeline's parameters and their IR types (STRING, STRUCT, ...)."""
    spec = next(yaml.safe_load_all(package.read_text()))
    parameters = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    return {name: definition["parameterType"] for name, definition in parameters.items()}


def typed_arguments(
    arguments: dict[str, Any], inputs: dict[str, str], pipeline: str
) -> dict[str, Any]:
    """`arguments` checked against the compiled pipeline's inputs (a typo fails before any task
    runs); a number given to a string parameter (`cpu=16`) becomes that string."""
    typed = {}
    for name, value in arguments.items():
        if name not in inputs:
            known = ", ".join(sorted(inputs))
            raise SubmitError(f"--arg {name}: not a parameter of the {pipeline} pipeline ({known})")
        if name == VERSION_PARAMETER:
            raise SubmitError(f"--arg {name}: set by submit to the uploaded version's name")
        kind = inputs[name]
        if kind == "STRING" and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        allowed = PARAMETER_TYPES.get(kind, (object,))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise SubmitError(f"--arg {name}: {value!r} is not a {kind} value")
        typed[name] = value
    return typed


def check_reachable(host: str, timeout: float = REACH_TIMEOUT_S) -> dict[str, Any] | None:
    """Fail fast, naming the host, instead of the KFP client's long retries; the health answer
    if the API gave one (an auth proxy in front of it may refuse the check itself)."""
    url = host.rstrip("/") + "/apis/v2beta1/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError:
        return None  # something answered
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise SubmitError(f"cannot reach Kubeflow Pipelines at {host}: {reason}") from None
    try:
        answer = json.loads(body)
    except ValueError:
        return None  # a login page in front of the API
    return answer if isinstance(answer, dict) else None


def check_mode(healthz: dict[str, Any] | None, namespace: str | None) -> None:
    """A multi-user KFP needs --namespace; a standalone one runs everything in its own."""
    multi_user = (healthz or {}).get("multi_user")
    if multi_user is True and not namespace:
        raise SubmitError("this Kubeflow Pipelines is multi-user: pass --namespace <profile>")
    if multi_user is False and namespace:
        raise SubmitError(
            f"this Kubeflow Pipelines is standalone: runs execute in its own namespace, "
            f"not --namespace {namespace}"
        )


def read_identity(args: argparse.Namespace) -> dict[str, str]:
    """The KFP client's credentials from --token-file / --cookie-file."""
    identity = {}
    for option, path, keyword in (
        ("--token-file", args.token_file, "existing_token"),
        ("--cookie-file", args.cookie_file, "cookies"),
    ):
        if path is None:
            continue
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise SubmitError(f"{option} {path}: {error.strerror}") from None
        if not value:
            raise SubmitError(f"{option} {path}: the file is empty")
        identity[keyword] = value
    if args.namespace and not identity:
        raise SubmitError(
            "--namespace (multi-user KFP) needs an identity: --token-file or --cookie-file"
        )
    return identity


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
    accepted = inspect.signature(PIPELINES[args.pipeline]).parameters
    for option in WORKSPACE_OPTIONS:
        value = getattr(args, option)
        if value is None:
            continue
        if option not in accepted:
            flag = "--" + option.replace("_", "-")
            raise SubmitError(f"{flag}: the {args.pipeline} pipeline has no workspace to size")
        options[option] = value
    return options


def find_pipeline_id(client: Any, name: str, namespace: str | None) -> str | None:
    """The pipeline called `name` in `namespace` (shared pipelines when None); kfp's
    get_pipeline_id looks in no namespace, so a profile's second submit would upload again."""
    equals = 1  # the filter's EQUALS operation, as kfp's own get_pipeline_id sends it
    by_name = json.dumps(
        {"predicates": [{"operation": equals, "key": "display_name", "stringValue": name}]}
    )
    found = client.list_pipelines(filter=by_name, namespace=namespace, page_size=2).pipelines or []
    if len(found) > 1:
        raise SubmitError(f"{len(found)} pipelines named {name} in {namespace or 'KFP'}")
    return found[0].pipeline_id if found else None


def submit(args: argparse.Namespace) -> str:
    params = load_project_params(args.params, args.overrides)
    arguments = run_arguments(params, pipeline_arguments(args.arguments))
    options = pipeline_builder_options(args, arguments)
    identity = read_identity(args)
    name = f"mlops-methods-{args.pipeline}"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    version_name = f"{name}-{stamp}"
    with tempfile.TemporaryDirectory() as tmp:
        package = Path(tmp) / f"{args.pipeline}.yaml"
        pipeline = PIPELINES[args.pipeline](params, **options)
        compiler.Compiler().compile(pipeline, package_path=str(package))
        inputs = compiled_inputs(package)
        arguments = typed_arguments(arguments, inputs, args.pipeline)
        if VERSION_PARAMETER in inputs:
            arguments[VERSION_PARAMETER] = version_name
        check_mode(check_reachable(args.host), args.namespace)
        from kfp import Client

        client = Client(host=args.host, namespace=args.namespace, **identity)
        pipeline_id = find_pipeline_id(client, name, args.namespace)
        if pipeline_id is None:
            uploaded = client.upload_pipeline(str(package), name, namespace=args.namespace)
            pipeline_id = uploaded.pipeline_id
        version = client.upload_pipeline_version(
            str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
        )
    experiment = client.create_experiment(args.experiment, namespace=args.namespace)
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=f"{args.pipeline}-{stamp}",
        params=arguments,
        pipeline_id=pipeline_id,
        version_id=version.pipeline_version_id,
        service_account=args.service_account or default_service_account(args.namespace),
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
