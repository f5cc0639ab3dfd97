"""The import contracts of pyproject.toml ([tool.importlinter]) hold on this tree and catch a
deliberately bad import in a copy of it."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True
    )


@pytest.fixture
def tree_copy(tmp_path):
    for package in ("components", "pipelines", "experiments"):
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        # also breaks independence: every room that imports common.io now reaches pretrain
        ("components/common/io.py", "import components.pretrain.step", "below every room"),
        ("components/seg_train/losses.py", "import components.ct_data.synth", "independent"),
        ("components/evaluate/step.py", "import pipelines.params", "above components"),
    ],
)
def test_a_bad_import_breaks_its_contract(tree_copy, module, bad_import, contract):
    path = tree_copy / module
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    result = lint_imports(tree_copy)
    assert result.returncode == 1
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(contract in line for line in broken), result.stdout
