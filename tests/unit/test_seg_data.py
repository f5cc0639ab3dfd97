"""CT data: the MSD-layout loader, volume checks naming the bad file, the synthetic scanners, the
HU window of preprocessing, and the segmentation params' validation. `write_tiny_task` is shared
with the integration tests."""

import json
from pathlib import Path

import numpy as np
import pytest

from components.common.io import ProjectError
from components.common.msd import domain_cases
from components.common.nifti import save_nifti
from components.ct_data.synth import SCANNERS, make_case, write_domain
from components.ct_data.volumes import check_domain, check_volume
from components.seg_train.params import SegTrainParams
from components.seg_train.transforms import eval_transforms
from pipelines.params import load_project_params


def tiny_case(seed: int, contrast: float = 60.0, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A 16³ case: pancreas ellipsoid (label 1) with a darker lesion ball (label 2) in fat."""
    rng = np.random.default_rng(seed)
    offset = np.indices((size,) * 3) - (size / 2 + rng.uniform(-1, 1, 3))[:, None, None, None]
    pancreas = (offset**2 / np.array([36.0, 9.0, 9.0])[:, None, None, None]).sum(0) <= 1
    lesion = (offset**2).sum(0) <= 2.5**2
    label = np.where(lesion, 2, np.where(pancreas, 1, 0)).astype(np.uint8)
    hu = np.choose(label, [-100.0, 110.0, 110.0 - contrast]) + rng.normal(0, 10, label.shape)
    return hu.astype(np.int16), label


def write_tiny_task(root: Path, n_cases: int = 3, contrast: float = 60.0, seed: int = 0) -> Path:
    """An MSD task folder of 16³ cases (spacing 1 × 1 × 2 mm)."""
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    training = []
    for index in range(n_cases):
        image, label = tiny_case(seed * 100 + index, contrast)
        name = f"case_{index:03d}.nii.gz"
        save_nifti(root / "imagesTr" / name, image, affine)
        save_nifti(root / "labelsTr" / name, label, affine)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    (root / "dataset.json").write_text(json.dumps({"training": training, "test": []}))
    return root


def test_loader_reads_the_msd_layout_and_checks_pass(tmp_path):
    root = write_tiny_task(tmp_path / "Task")
    cases = domain_cases(root)
    assert [c["id"] for c in cases] == ["case_000", "case_001", "case_002"]
    summary = check_domain(root)
    assert summary[0]["shape"] == [16, 16, 16] and summary[0]["spacing"] == [1.0, 1.0, 2.0]
    assert summary[0]["lesion_voxels"] > 0


def _break(root: Path, what: str) -> tuple[Path, str]:
    image, label = root / "imagesTr/case_000.nii.gz", root / "labelsTr/case_000.nii.gz"
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    good_image, good_label = tiny_case(0)
    if what == "shape":
        save_nifti(label, good_label[:, :, :15], affine)
        return label, "shape"
    if what == "label 3":
        save_nifti(label, np.where(good_label == 2, 3, good_label).astype(np.uint8), affine)
        return label, "labels"
    if what == "nan":
        bad = good_image.astype(np.float32)
        bad[3, 3, 3] = np.nan
        save_nifti(image, bad, affine)
        return image, "intensity"
    if what == "affine":
        save_nifti(label, good_label, np.diag([1.0, 1.0, 3.0, 1.0]))
        return label, "affine"
    save_nifti(label, np.zeros_like(good_label), affine)  # empty foreground
    return label, "labels"


@pytest.mark.parametrize("what", ["shape", "label 3", "nan", "affine", "empty"])
def test_bad_volume_fails_with_the_file_named(tmp_path, what):
    root = write_tiny_task(tmp_path / "Task", n_cases=1)
    path, field = _break(root, what)
    with pytest.raises(ProjectError) as error:
        check_domain(root)
    assert error.value.file == path and error.value.field == field
    assert str(path) in str(error.value)


def test_missing_listed_file_and_bad_manifest_are_named(tmp_path):
    root = write_tiny_task(tmp_path / "Task", n_cases=1)
    (root / "labelsTr/case_000.nii.gz").unlink()
    with pytest.raises(ProjectError, match="missing") as error:
        domain_cases(root)
    assert error.value.file == root / "labelsTr/case_000.nii.gz"
    (root / "dataset.json").write_text('{"training": [{"image": "x"}]}')
    with pytest.raises(ProjectError) as error:
        domain_cases(root)
    assert error.value.field == "training.0"
    with pytest.raises(ProjectError, match="not a readable NIfTI"):
        (root / "bad.nii.gz").write_bytes(b"not nifti")
        check_volume(root / "bad.nii.gz", root / "bad.nii.gz")


def test_synthetic_scanners_are_deterministic_and_differ(tmp_path):
    shape, spacing = (32, 32, 16), (1.0, 1.0, 2.0)
    a1, label_a, spacing_a = make_case("A", 0, 0, shape, spacing)
    a2, _, _ = make_case("A", 0, 0, shape, spacing)
    assert np.array_equal(a1, a2) and a1.dtype == np.int16
    assert set(np.unique(label_a)) == {0, 1, 2} and spacing_a == spacing
    c, label_c, spacing_c = make_case("C", 0, 0, shape, spacing)
    assert c.shape == (32, 32, 8) and spacing_c == (1.0, 1.0, 4.0)  # thick slices
    assert (label_c == 2).any()
    lesion = {d: SCANNERS[d].lesion - SCANNERS[d].pancreas for d in SCANNERS}
    assert lesion["A"] < 0 and lesion["C"] < 0 and SCANNERS["C"].rim > SCANNERS["C"].pancreas
    root = write_domain(tmp_path / "B", "B", 2, 0, shape, spacing)
    assert len(check_domain(root)) == 2


def test_segmentation_params_name_the_bad_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seg_train:\n  train_domains: [A, B]\n  test_domains: [B]\n")
    with pytest.raises(ProjectError, match="overlap"):
        load_project_params(path)
    path.write_text("seg_train:\n  loss: {views: false}\n")
    with pytest.raises(ProjectError, match="consistency needs views") as error:
        load_project_params(path)
    assert error.value.field == "seg_train.loss"
    path.write_text("seg_train:\n  loss: {sdf_weight: 1}\n")
    with pytest.raises(ProjectError) as error:
        load_project_params(path)
    assert error.value.field == "seg_train.loss.sdf_weight"


def test_hu_window_is_a_parameter_of_preprocessing(tmp_path):
    """The window, not the synthetic generator, decides which HU map to 0 and 1."""
    root = write_tiny_task(tmp_path / "Task", n_cases=1)
    case = domain_cases(root)[0]
    default = SegTrainParams(inference={"margin": 20.0})
    narrow = default.model_copy(update={"hu_window": (0.0, 50.0)})
    images = {
        params.hu_window: eval_transforms(params, 1)(
            {"image": case["image"], "label": case["label"]}
        )
        for params in (default, narrow)
    }
    # fat (-100 HU) is the window's floor in both; pancreas (110 HU) is above the narrow window
    assert float(images[(0.0, 50.0)]["image"].max()) == 1.0
    assert float(images[(-100.0, 240.0)]["image"].max()) < 1.0
    path = tmp_path / "params.yaml"
    path.write_text("seg_train:\n  hu_window: [240, -100]\n")
    with pytest.raises(ProjectError, match="low < high"):
        load_project_params(path)
