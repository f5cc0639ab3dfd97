"""Start-up cost of every DVC stage: what its entry point costs to import, and what `--help` and
a params error cost, each in a fresh interpreter, against `python -c pass` in the same run.

    python -m bench.startup --label before [--repeats 3]   # bench/results/startup_before.{json,md}
    python -m bench.startup --compare before after          # bench/results/startup_compare.md

Per stage (dvc.yaml's `cmd`): the import of what the stage loads before its job starts, in one
interpreter: its entry modules (`tests.dvc_deps.entry_modules`) and what their `run` imports in its
body (a step imports its libraries there, once params are valid); `python -m <module> [<stage>]
--help`; the same with `--set profile=bogus` (refused by params validation before the step runs,
exit 2; another exit status is reported on stderr). Rounds are interleaved (every command once per
round, `python -c pass` first) and medians are reported, so a busy machine slows all of them alike.
Where the time goes: `python -X importtime` once per stage, self time summed per top-level
package (the sums add up to the whole import)."""

from __future__ import annotations

import argparse
import ast
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict

import yaml

from experiments.report import table
from tests.dvc_deps import ROOT, entry_modules, module_file

RESULTS = ROOT / "bench" / "results"
TOP_PACKAGES = 6
# The libraries that cost seconds each; a stage should load only those its job uses.
HEAVY = ("torch", "transformers", "mlflow", "great_expectations", "monai", "pandas", "matplotlib")
# A multi-stage room's `__main__` calls stage_main at import: given `--help` it prints its usage
# and exits 0, so importing it costs what the room's entry point costs and nothing more.
IMPORT_SNIPPET = """
import contextlib, importlib, io, sys
sys.argv = ["startup", "--help"]
for module in sys.argv_modules:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(module)
    except SystemExit:
        pass
"""


def run_imports(module: str) -> list[str]:
    """The modules that `module`'s top-level `run` function imports in its body."""
    tree = ast.parse(module_file(module).read_text(encoding="utf-8"))
    runs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
    found: list[str] = []
    for node in (n for run in runs for n in ast.walk(run)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append(submodule if module_file(submodule) else node.module)
    return found


def startup_modules(cmd: str) -> list[str]:
    """What a stage imports before its job starts: entry modules, then what their `run` imports."""
    entries = entry_modules(cmd)
    return list(dict.fromkeys(entries + [n for module in entries for n in run_imports(module)]))


def import_command(modules: list[str]) -> list[str]:
    code = f"import sys; sys.argv_modules = {modules!r}\n{IMPORT_SNIPPET}"
    return [sys.executable, "-c", code]


def stage_commands(cmd: str) -> dict[str, list[str]]:
    """The three timed commands of one stage, from its dvc.yaml `cmd`."""
    words = shlex.split(cmd)
    at = words.index("-m")
    entry = [sys.executable, "-m", words[at + 1]]
    rest = words[at + 2 :]
    if rest and not rest[0].startswith("-"):
        entry.append(rest[0])  # the stage of a multi-stage room
    return {
        "import": import_command(startup_modules(cmd)),
        "help": [*entry, "--help"],
        "bad_params": [*entry, "--set", "profile=bogus"],
    }


def expected_status(kind: str) -> int:
    return 2 if kind == "bad_params" else 0


def timed(command: list[str], expect: int) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != expect:  # reported, not fatal: one odd stage should not void the run
        print(
            f"warning: {shlex.join(command)[:200]} exited {done.returncode}, expected {expect}:\n"
            + done.stderr[-2000:],
            file=sys.stderr,
        )
    return elapsed


def import_profile(command: list[str]) -> dict[str, float]:
    """Seconds of import self time per top-level package (`python -X importtime`)."""
    done = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], cwd=ROOT, capture_output=True, text=True
    )
    per_package: dict[str, float] = defaultdict(float)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        per_package[name.strip().split(".")[0]] += int(self_us) / 1e6
    return dict(sorted(per_package.items(), key=lambda item: -item[1]))


def measure(repeats: int) -> dict:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    commands = {name: stage_commands(stage["cmd"]) for name, stage in stages.items()}
    baseline: list[float] = []
    runs: dict[str, dict[str, list[float]]] = {name: defaultdict(list) for name in commands}
    for round_number in range(repeats):
        baseline.append(timed([sys.executable, "-c", "pass"], 0))
        for name, kinds in commands.items():
            for kind, command in kinds.items():
                runs[name][kind].append(timed(command, expected_status(kind)))
        print(f"round {round_number + 1}/{repeats} done", file=sys.stderr)
    python_s = statistics.median(baseline)
    result: dict = {"python_s": python_s, "repeats": repeats, "stages": {}}
    for name, kinds in commands.items():
        profile = import_profile(kinds["import"])
        medians = {kind: statistics.median(times) for kind, times in runs[name].items()}
        result["stages"][name] = {
            "startup_modules": startup_modules(stages[name]["cmd"]),
            **{f"{kind}_s": seconds for kind, seconds in medians.items()},
            **{f"{kind}_ratio": seconds / python_s for kind, seconds in medians.items()},
            "runs_s": dict(runs[name]),
            "top_packages_s": dict(list(profile.items())[:TOP_PACKAGES]),
            "import_self_total_s": sum(profile.values()),
            "heavy_loaded": [name for name in HEAVY if name in profile],
        }
    return result


def offenders(packages: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in packages.items())


def stage_table(result: dict) -> str:
    header = ["stage", "import s", "× python", "--help s", "bad params s", "top imports (self s)"]
    rows = [
        [
            name,
            f"{stage['import_s']:.2f}",
            f"{stage['import_ratio']:.1f}",
            f"{stage['help_s']:.2f}",
            f"{stage['bad_params_s']:.2f}",
            offenders(stage["top_packages_s"]),
        ]
        for name, stage in result["stages"].items()
    ]
    note = f"`python -c pass`: {result['python_s']:.3f} s; medians of {result['repeats']} runs."
    return table(header, rows) + "\n\n" + note


def compare_table(before: dict, after: dict) -> str:
    header = ["stage"] + [
        f"{label} {when}"
        for label in ("import s", "import self s", "--help s", "bad params s")
        for when in ("before", "after")
    ]
    header.append("no longer imported at start-up")
    kinds = ("import_s", "import_self_total_s", "help_s", "bad_params_s")
    rows = []
    for name, old in before["stages"].items():
        new = after["stages"].get(name)
        if new is None:
            continue
        cells = [f"{run[kind]:.2f}" for kind in kinds for run in (old, new)]
        dropped = [lib for lib in old["heavy_loaded"] if lib not in new["heavy_loaded"]]
        rows.append([name, *cells, ", ".join(dropped) or "-"])
    note = (
        f"`python -c pass`: {before['python_s']:.3f} s before, {after['python_s']:.3f} s after; "
        f"medians of {before['repeats']} / {after['repeats']} runs. *import self s*: the sum of "
        "`python -X importtime` self times (one run). A library no longer imported at start-up is "
        "either never used by the stage or imported where the job first uses it."
    )
    return table(header, rows) + "\n\n" + note


def write(name: str, text: str, payload: dict | None = None) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text + "\n", encoding="utf-8")
    if payload is not None:
        (RESULTS / f"{name}.json").write_text(
            json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    print(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--label", default="latest", help="writes startup_<label>.{json,md}")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="two labels")
    args = parser.parse_args(argv)
    if args.compare:
        before, after = (
            json.loads((RESULTS / f"startup_{label}.json").read_text(encoding="utf-8"))
            for label in args.compare
        )
        write("startup_compare", compare_table(before, after))
        return 0
    result = measure(args.repeats)
    write(f"startup_{args.label}", stage_table(result), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
