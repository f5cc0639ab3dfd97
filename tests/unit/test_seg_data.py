"""CT data: the MSD-layout loader, volume checks naming the bad file, the synthetic scanners, the
HU window of preprocessing, and the segmentation params' validation."""

from pathlib import Path

import numpy as np
import pytest

from components.common.io import ProjectError, write_json
from components.common.msd import domain_cases, require_lesions
from components.common.nifti import save_nifti
from components.ct_data.synth import SCANNERS, make_case, write_domain
from components.ct_data.volumes import check_domain, check_volume
from components.seg_train import train_step
from components.seg_train.params import SegTrainParams
from components.seg_train.transforms import eval_transforms
from pipelines.params import load_project_params
from tests.ct_volumes import tiny_case, write_tiny_task


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


def test_every_bad_case_of_a_folder_is_named_in_one_error(tmp_path):
    root = write_tiny_task(tmp_path / "Task", n_cases=3)
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    _, label = tiny_case(0)
    for index in (0, 2):
        save_nifti(root / f"labelsTr/case_00{index}.nii.gz", label[:, :, :15], affine)
    with pytest.raises(ProjectError) as error:
        check_domain(root)
    message = str(error.value)
    assert error.value.file == root and message.startswith(f"{root}: 2 bad cases: ")
    assert "case_000.nii.gz [shape]" in message and "case_002.nii.gz [shape]" in message
    assert "case_001" not in message and "\n" not in message


def test_a_lesion_model_on_labels_without_lesions_fails_naming_the_domains(tmp_path, mlflow_uri):
    data = tmp_path / "ct"
    write_tiny_task(data / "A", seed=0, lesions=False)
    write_tiny_task(data / "B", seed=1)
    write_tiny_task(data / "C", seed=2, lesions=False)
    write_json(data / "domains.json", {name: name for name in "ABC"})
    params = SegTrainParams(train_domains=("A", "B", "C"), test_domains=(), holdout_per_domain=1)
    model_dir = tmp_path / "models/seg"
    with pytest.raises(ProjectError, match=r"domain\(s\) A, C has a lesion voxel") as error:
        train_step.run(params, "tiny", data, model_dir, tmp_path / "reports")
    assert error.value.field == "seg_train.target" and not model_dir.exists()
    require_lesions({"B": domain_cases(data / "B")})  # a domain with lesions passes


def test_missing_listed_file_and_bad_manifest_are_named(tmp_path):
    root = write_tiny_task(tmp_path / "Task", n_cases=1)
    (root / "labelsTr/case_000.nii.gz").unlink()
    with pytest.raises(ProjectError, match="missing") as error:
        domain_cases(root)
    assert error.value.file == root / "labelsTr/case_000.nii.gz"
    several = write_tiny_task(tmp_path / "Several", n_cases=3)
    for name in ("imagesTr/case_001.nii.gz", "labelsTr/case_002.nii.gz"):
        (several / name).unlink()
    with pytest.raises(ProjectError, match="2 listed files are missing: ") as error:
        domain_cases(several)
    assert error.value.file == several / "dataset.json"
    assert "imagesTr/case_001.nii.gz; " in str(error.value) and "case_002" in str(error.value)
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
