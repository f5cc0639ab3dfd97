"""The CLI of every step: `python -m components.<room> [<stage>] --params params.yaml --set k=v`.

It validates the step's view of params once, calls the step's `run`, writes
`metrics/<step>.json`, and turns a ProjectError into one line on stderr and exit status 2.

A room with one DVC stage has `__main__.py` with a `main(argv)`. A room with several has
`__main__.py` calling `stage_main`, which hands `python -m components.<room> <stage>` to
`components.<room>.<stage>_step.main`, importing only that stage's module."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from components.common.io import ProjectError, write_json
from components.common.params import load_params
from components.common.tracking import is_main_process


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions keep their line breaks; an argument's help shows its default, if it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default == []:
            return action.help or ""
        return super()._get_help_string(action) or ""


def step_parser(
    prog: str, description: str | None, schema: type[BaseModel]
) -> argparse.ArgumentParser:
    """`prog` is the command after `python -m`, e.g. `components.pretrain`; the description ends
    with the params.yaml sections of `schema`, the step's view of the file."""
    reads = f"reads params.yaml: {', '.join(schema.model_fields)}"
    parser = argparse.ArgumentParser(
        prog=f"python -m {prog}",
        description=f"{(description or '').strip()}\n\n{reads}",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--params", default="params.yaml", help="the project's params file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set finetune.max_steps=10 (repeatable)",
    )
    parser.add_argument(
        "--metrics", default=None, help="where the metrics go (default: metrics/<step>.json)"
    )
    parser.add_argument(
        "--section",
        dest="sections",
        action="append",
        default=[],
        metavar="STEP_SECTION=PARAMS_SECTION",
        help="read one of this step's sections from another params.yaml section, e.g. "
        "--section finetune=knowtuning_sft (a step reused by another pipeline)",
    )
    return parser


def path_arguments(parser: argparse.ArgumentParser, title: str, **paths: tuple[str, str]) -> None:
    """`--<name>` path arguments, `name=(default, what it is)`, under `title` in the help."""
    group = parser.add_argument_group(title)
    for name, (default, what) in paths.items():
        group.add_argument(f"--{name}", type=Path, default=Path(default), help=what)


def step_main(
    step: str,
    args: argparse.Namespace,
    schema: type[BaseModel],
    run: Callable[[Any], dict[str, float]],
) -> int:
    """Validate the step's `schema` view of params, run, write metrics/<step>.json."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # GX logs one INFO line per internal function it skips while registering its API (~600).
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    quiet_progress_bars()
    try:
        params = load_params(args.params, args.overrides, schema, section_map(args.sections))
        metrics = run(params)
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if is_main_process():
        write_json(Path(args.metrics or f"metrics/{step}.json"), metrics)
    leave_process_group()
    return 0


def section_map(assignments: list[str]) -> dict[str, str]:
    """`--section` values as {step section: params.yaml section}."""
    mapping = {}
    for assignment in assignments:
        target, sep, source = assignment.partition("=")
        if not sep or not target or not source:
            raise ProjectError("not STEP_SECTION=PARAMS_SECTION", file=f"--section {assignment}")
        mapping[target] = source
    return mapping


def quiet_progress_bars() -> None:
    """In a log file (dvc repro, CI) a progress bar is a line of redraws: turn off the libraries'
    own (loading weights, writing shards, downloading artifacts). The Trainer's bar gives way to
    its logging lines there too (common.training)."""
    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        if "transformers" in sys.modules:  # it reads the variable when imported
            sys.modules["transformers"].utils.logging.disable_progress_bar()


def stage_main(
    room: str,
    stages: Mapping[str, str],
    argv: list[str] | None = None,
    description: str | None = None,
) -> int:
    """`python -m components.<room> <stage> ...`: run `components.<room>.<stage>_step.main`.
    `stages` maps each stage to its one-line description, listed by `--help`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = f"usage: python -m components.{room} {{{','.join(stages)}}} [--help] ..."
    if argv[:1] in (["-h"], ["--help"]):
        print(stages_help(room, stages, usage, description))
        return 0
    if not argv or argv[0] not in stages:
        print(usage, file=sys.stderr)
        return 2
    module = importlib.import_module(f"components.{room}.{argv[0]}_step")
    return module.main(argv[1:])


def stages_help(room: str, stages: Mapping[str, str], usage: str, description: str | None) -> str:
    width = max(map(len, stages)) + 2
    lines = [usage, "", (description or "").strip(), "", "stages:"]
    lines += [f"  {stage:<{width}}{summary}" for stage, summary in stages.items()]
    lines.append(f"\n`python -m components.{room} <stage> --help` for a stage's arguments.")
    return "\n".join(lines)


def leave_process_group() -> None:
    """End a torchrun job on every rank together: free DDP while its process group lives, wait
    for the other ranks (rank 0 may still be saving), then destroy the group. A rank that simply
    exits can leave another one hanging in DDP's teardown (seen with gloo, about 1 run in 3)."""
    if "torch" not in sys.modules:
        return  # no torch, no process group: importing torch here would cost seconds
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()


def named_paths(values: list[str]) -> dict[str, Path]:
    """`name=path` arguments as an ordered {name: path}."""
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise argparse.ArgumentTypeError(f"--models takes name=path, got {value!r}")
        out[name] = Path(path)
    return out
