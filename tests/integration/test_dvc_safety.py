"""`dvc exp run` with the user's MSD folders, in a copy of the repo on tiny synthetic folders: the
README's recipe is accepted, a bad value stops the check stage and a bad volume stops ct_data
with the last good outputs in place, and a changed volume makes ct_data (and only it) out of
date."""

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from components.common.nifti import save_nifti
from tests.conftest import REPO_ROOT, copy_repo, dvc
from tests.ct_volumes import write_tiny_task

pytestmark = pytest.mark.integration

# the README's folders, replaced by tiny ones
README_FOLDERS = {"/data/Task07_Pancreas": "msd", "/data/site2": "site2"}
CT_OUTPUTS = ("data/ct/domains.json", "reports/seg/data/volumes.json", "metrics/ct_data.json")


def readme_msd_recipe() -> list[str]:
    """The README's `dvc exp run` command for MSD folders, as arguments after `dvc`."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"\.venv/bin/dvc (exp run -S ct_data\.source=msd .*?)\n(?! )", readme, re.S)
    assert match, "README: the MSD recipe `dvc exp run -S ct_data.source=msd ...` is gone"
    return shlex.split(match.group(1).replace("\\\n", " "))


@pytest.fixture(scope="module")
def msd_repo(tmp_path_factory) -> Path:
    """A copy of the repo after the README's MSD recipe (check stage only) and `dvc repro
    ct_data` on two tiny MSD folders."""
    folders = tmp_path_factory.mktemp("msd")
    write_tiny_task(folders / "msd")
    write_tiny_task(folders / "site2", seed=1)
    repo = copy_repo(tmp_path_factory.mktemp("repo"))
    args = readme_msd_recipe()
    for readme_path, name in README_FOLDERS.items():
        args = [arg.replace(readme_path, str(folders / name)) for arg in args]
    recipe = dvc(repo, "exp", "run", "check", *args[2:])
    assert recipe.returncode == 0, recipe.stdout[-2000:] + recipe.stderr[-2000:]
    result = dvc(repo, "repro", "ct_data")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return repo


def test_the_readme_msd_recipe_sets_the_folders_and_passes_the_check(msd_repo):
    manifest = json.loads((msd_repo / "data/inputs/ct_data.json").read_text())
    assert sorted(manifest) == ["ct_data.msd_domains.msd", "ct_data.msd_domains.site2"]
    assert "labelsTr/case_000.nii.gz" in manifest["ct_data.msd_domains.site2"]["files"]
    domains = json.loads((msd_repo / "data/ct/domains.json").read_text())
    assert sorted(domains) == ["msd", "site2"]


def test_a_failed_exp_run_leaves_the_last_good_outputs(msd_repo):
    before = {path: (msd_repo / path).read_bytes() for path in CT_OUTPUTS}
    good_params = (msd_repo / "params.yaml").read_text()
    try:
        result = dvc(msd_repo, "exp", "run", "-S", "ct_data.seed=x")
        assert result.returncode != 0
        assert "error: params.yaml [ct_data.seed]: " in result.stderr
        assert "failed to reproduce 'check'" in result.stderr
        assert {path: (msd_repo / path).read_bytes() for path in CT_OUTPUTS} == before
        assert "seed: x" in (msd_repo / "params.yaml").read_text()  # what the README says
    finally:
        (msd_repo / "params.yaml").write_text(good_params)
    rerun = dvc(msd_repo, "repro", "ct_data")  # the check again, and nothing else
    assert rerun.returncode == 0 and "Stage 'ct_data' didn't change" in rerun.stdout


def test_a_volume_failing_the_content_checks_leaves_the_last_good_outputs(msd_repo):
    """The NIfTI content checks run inside ct_data, after the check stage: its outs are
    `persist`, so DVC does not remove them before the step has validated every case."""
    before = {path: (msd_repo / path).read_bytes() for path in CT_OUTPUTS}
    site2 = Path(json.loads((msd_repo / "data/ct/domains.json").read_text())["site2"])
    label_path = site2 / "labelsTr/case_002.nii.gz"
    good_label = label_path.read_bytes()
    label = np.zeros((16, 16, 16), np.uint8)
    label[4:8, 4:8, 4:8] = 7
    save_nifti(label_path, label, np.diag([1.0, 1.0, 2.0, 1.0]))
    try:
        result = dvc(msd_repo, "repro", "ct_data")
        assert result.returncode != 0
        assert "case_002.nii.gz" in result.stderr and "[labels]" in result.stderr
        assert "label values [7.0]" in result.stderr
        assert {path: (msd_repo / path).read_bytes() for path in CT_OUTPUTS} == before
    finally:
        label_path.write_bytes(good_label)
    assert dvc(msd_repo, "repro", "ct_data").returncode == 0


def test_a_changed_volume_makes_ct_data_out_of_date(msd_repo):
    assert json.loads(dvc(msd_repo, "status", "--json", "ct_data").stdout) == {}
    prep_manifest = (msd_repo / "data/inputs/data_prep.json").read_bytes()
    site2 = json.loads((msd_repo / "data/ct/domains.json").read_text())["site2"]
    label = np.zeros((16, 16, 16), np.uint8)
    label[4:8, 4:8, 4:8] = 2
    save_nifti(Path(site2) / "labelsTr/case_001.nii.gz", label, np.diag([1.0, 1.0, 2.0, 1.0]))
    assert dvc(msd_repo, "repro", "check").returncode == 0
    status = json.loads(dvc(msd_repo, "status", "--json", "ct_data").stdout)
    assert status == {"ct_data": [{"changed deps": {"data/inputs/ct_data.json": "modified"}}]}
    assert (msd_repo / "data/inputs/data_prep.json").read_bytes() == prep_manifest
