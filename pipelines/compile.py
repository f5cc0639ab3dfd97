"""Compile every pipeline to KFP IR YAML: `python -m pipelines.compile [--out build/pipelines]`.

params.yaml (with `--set` overrides) is validated against the pydantic sections before anything is
compiled: a misspelt key or a wrong type fails here, not in a pod. The workspace options shape the
run's PVC (pipelines/tasks.py: workspace_config) in the pipelines that use one."""

from __future__ import annotations

import argparse
import inspect
from pathlib import Path
from typing import Any

from kfp import compiler

from components.common.io import ProjectError
from pipelines import atm, full, govern, knowtuning, llm, reward, rlhb, segmentation
from pipelines.params import load_project_params
from pipelines.tasks import WORKSPACE_DEFAULTS

PIPELINES = {
    "llm": llm.build_pipeline,
    "reward": reward.build_pipeline,
    "segmentation": segmentation.build_pipeline,
    "knowtuning": knowtuning.build_pipeline,
    "atm": atm.build_pipeline,
    "govern": govern.build_pipeline,
    "rlhb": rlhb.build_pipeline,
    "full": full.build_pipeline,
}


def builder_options(build: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The `options` that `build` takes (segmentation has no workspace)."""
    accepted = inspect.signature(build).parameters
    return {name: value for name, value in options.items() if name in accepted}


def compile_all(
    params_path: Path,
    out_dir: Path,
    overrides: list[str] = (),
    workspace: dict[str, Any] | None = None,
) -> list[Path]:
    """`workspace`: WORKSPACE_DEFAULTS' keyword options of the builders."""
    params = load_project_params(params_path, overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, build in PIPELINES.items():
        target = out_dir / f"{name}.yaml"
        pipeline = build(params, **builder_options(build, workspace or {}))
        compiler.Compiler().compile(pipeline, package_path=str(target))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.compile", description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=Path("build/pipelines"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument(
        "--workspace-size",
        default=WORKSPACE_DEFAULTS["workspace_size"],
        help="size of the run's workspace PVC (a Kubernetes quantity, e.g. 200Gi)",
    )
    parser.add_argument(
        "--workspace-storage-class",
        default=WORKSPACE_DEFAULTS["workspace_storage_class"],
        help="StorageClass of the workspace PVC (default: the cluster's default class)",
    )
    parser.add_argument(
        "--workspace-access-mode",
        choices=["ReadWriteMany", "ReadWriteOnce"],
        default=WORKSPACE_DEFAULTS["workspace_access_mode"],
        help="ReadWriteMany (needs an RWX StorageClass, e.g. NFS or CephFS; required for "
        "multi-node fine-tuning) or ReadWriteOnce (single-node runs: the tasks that mount the "
        "workspace then run one after the other)",
    )
    args = parser.parse_args(argv)
    workspace = {
        "workspace_size": args.workspace_size,
        "workspace_storage_class": args.workspace_storage_class,
        "workspace_access_mode": args.workspace_access_mode,
    }
    try:
        paths = compile_all(args.params, args.out, args.overrides, workspace)
    except (ProjectError, ValueError) as error:
        parser.exit(2, f"error: {error}\n")
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
