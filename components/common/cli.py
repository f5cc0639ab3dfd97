"""The CLI shared by every step: `python -m components.<step> --params params.yaml --set k=v`.

It validates params once, calls the step's `run`, writes `metrics/<step>.json`, and turns a
ProjectError into one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from components.common.io import ProjectError, write_json
from components.common.params import ProjectParams, load_params
from components.common.tracking import is_main_process


def step_parser(step: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m components.{step}")
    parser.add_argument("--params", default="params.yaml", help="the project's params file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set finetune.max_steps=10 (repeatable)",
    )
    parser.add_argument("--metrics", default=None, help="default: metrics/<step>.json")
    return parser


def step_main(
    step: str, args: argparse.Namespace, run: Callable[[ProjectParams], dict[str, float]]
) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # GX logs one INFO line per internal function it skips while registering its API (~600).
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        params = load_params(args.params, args.overrides)
        metrics = run(params)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if is_main_process():
        write_json(Path(args.metrics or f"metrics/{step}.json"), metrics)
    leave_process_group()
    return 0


def leave_process_group() -> None:
    """End a torchrun job on every rank together: free DDP while its process group lives, wait
    for the other ranks (rank 0 may still be saving), then destroy the group. A rank that simply
    exits can leave another one hanging in DDP's teardown (seen with gloo, about 1 run in 3)."""
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
