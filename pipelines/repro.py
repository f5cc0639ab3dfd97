"""`python -m pipelines.repro`: what `make repro` runs, every stage of dvc.yaml through `dvc repro`,
in two lanes on two cores.

DVC runs one stage at a time. After `check`, the LLM chain shares nothing with the segmentation
and reward chains, and their stages train small models that a second thread barely speeds up, so
the two lanes run side by side as two `dvc repro --downstream` processes with one thread each.
DVC releases its repository lock while a stage's command runs and waits for it
(`--wait-for-lock`) to record the stage in dvc.lock; each lane's stages lock their own outputs.
The MLflow store and experiment are created first, by this process alone: two stages opening a
new store at once would both try to create it. Every line a lane prints starts with its name.

`dvc repro` on its own runs the same stages one after the other; `dvc status` afterwards is clean
either way."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO

# first stage(s) of each lane: `dvc repro --downstream` runs them and everything after them
LANES: dict[str, tuple[str, ...]] = {
    "llm+kt+govern": ("data_prep", "knowtuning_data", "govern_data"),
    "seg+grm+atm+rlhb": ("ct_data", "grm_data", "atm_data", "rlhb_data"),
}
# what runs before the lanes, alone: it validates params.yaml and the user's files for all of them
FIRST = "check"


def dvc() -> str:
    """The dvc next to this interpreter (the venv's), else the one on PATH."""
    local = Path(sys.executable).with_name("dvc")
    return str(local) if local.exists() else "dvc"


def lane_command(first_stages: Sequence[str], force: bool) -> list[str]:
    force_flag = ["--force"] if force else []
    return [dvc(), "--wait-for-lock", "repro", "--downstream", *force_flag, *first_stages]


def open_tracking_store() -> None:
    from components.common.tracking import open_experiment

    open_experiment()


def relay(name: str, stream: IO[str], out: IO[str], lock: threading.Lock) -> None:
    """Copies a lane's output to ours line by line, each line prefixed with the lane's name."""
    width = max(map(len, LANES))
    for line in stream:
        with lock:
            out.write(f"[{name:<{width}}] {line}")
            out.flush()


def run_lanes(lanes: dict[str, list[str]], env: dict[str, str]) -> dict[str, int]:
    """Starts every lane's command at once and waits for all: {lane: exit code}."""
    lock = threading.Lock()
    processes: dict[str, subprocess.Popen[str]] = {}
    relays: list[threading.Thread] = []
    for name, command in lanes.items():
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        relay_thread = threading.Thread(
            target=relay, args=(name, process.stdout, sys.stdout, lock), daemon=True
        )
        relay_thread.start()
        processes[name] = process
        relays.append(relay_thread)
    codes = {name: process.wait() for name, process in processes.items()}
    for relay_thread in relays:
        relay_thread.join()
    return codes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.repro", description=__doc__)
    parser.add_argument("--force", action="store_true", help="re-run every stage (dvc repro -f)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch/OpenMP threads per lane (default 1)"
    )
    args = parser.parse_args(argv)

    open_tracking_store()
    first = subprocess.run([dvc(), "repro", *(["--force"] if args.force else []), FIRST])
    if first.returncode != 0:
        return first.returncode
    threads = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    lanes = {name: lane_command(stages, args.force) for name, stages in LANES.items()}
    codes = run_lanes(lanes, env)
    failed = [name for name, code in codes.items() if code != 0]
    if failed:
        print(f"dvc repro failed in lane(s) {', '.join(failed)}: see its lines above", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
