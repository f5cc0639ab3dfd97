"""Start-up: a step's `--help` and a params error load none of its heavy libraries, and no step
imports a library it never uses (bench/startup.py measures the seconds)."""

import json
import shlex
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO_ROOT

HEAVY = ("torch", "transformers", "mlflow", "great_expectations", "monai", "pandas", "matplotlib")
# These E-GRM stages' modules share torch helpers at import (decode, cost, scorer), so their
# --help still loads torch (left for later; bench/results/startup_after.md has the seconds).
HEAVY_ENTRY = {"grm_policy", "grm_scorer", "grm_evaluate"}
STAGES = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def loaded_after(code: str) -> set[str]:
    """The HEAVY libraries in sys.modules after running `code` in a fresh interpreter."""
    report = f"import json, sys\nprint(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    probe = f"{code}\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def entry_argv(stage: str) -> tuple[str, list[str]]:
    """(module, arguments before the options) of a dvc.yaml stage's `python -m` command."""
    words = shlex.split(STAGES[stage]["cmd"])
    at = words.index("-m")
    rest = words[at + 2 :]
    return words[at + 1], rest[:1] if rest and not rest[0].startswith("-") else []


def entry_stages() -> list[str]:
    """One stage per entry point: stages that run the same module and stage word (a step reused
    under another params section, e.g. finetune as knowtuning_sft) import the same code."""
    first: dict[tuple[str, tuple[str, ...]], str] = {}
    for stage in sorted(set(STAGES) - HEAVY_ENTRY):
        module, stage_word = entry_argv(stage)
        first.setdefault((module, tuple(stage_word)), stage)
    return sorted(first.values())


@pytest.mark.parametrize("stage", entry_stages())
@pytest.mark.parametrize("options", [["--help"], ["--set", "profile=bogus"]])
def test_help_and_a_params_error_load_no_heavy_library(stage, options):
    module, stage_word = entry_argv(stage)
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['x', *{stage_word + options!r}]\n"
        "try:\n"
        f"    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == (0 if '--help' in sys.argv else 2), exit.code\n"
    )
    assert loaded_after(code) == set()


@pytest.mark.parametrize(
    ("module", "unused"),
    [
        ("components.data_prep.step", {"torch", "monai", "matplotlib"}),
        ("components.ct_data.step", {"torch", "monai", "transformers", "great_expectations"}),
        ("components.grm_scorer.scorer_step", {"great_expectations"}),
        ("components.grm_scorer.evaluate_step", {"great_expectations"}),
    ],
)
def test_a_step_imports_no_library_it_never_uses(module, unused):
    assert loaded_after(f"import {module}") & unused == set()


def test_seeding_without_torch_leaves_torch_unimported():
    code = "from components.common.repro import seed_everything\n"
    code += "seed_everything(3, with_torch=False)"
    assert "torch" not in loaded_after(code)
