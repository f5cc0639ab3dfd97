"""Tiny CT volumes in the MSD layout for tests (imports no torch or MONAI, so that the tests of
the light modules stay fast)."""

import json
from pathlib import Path

import numpy as np

from components.common.nifti import save_nifti


def tiny_case(seed: int, contrast: float = 60.0, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """A 16³ case: pancreas ellipsoid (label 1) with a darker lesion ball (label 2) in fat."""
    rng = np.random.default_rng(seed)
    offset = np.indices((size,) * 3) - (size / 2 + rng.uniform(-1, 1, 3))[:, None, None, None]
    pancreas = (offset**2 / np.array([36.0, 9.0, 9.0])[:, None, None, None]).sum(0) <= 1
    lesion = (offset**2).sum(0) <= 2.5**2
    label = np.where(lesion, 2, np.where(pancreas, 1, 0)).astype(np.uint8)
    hu = np.choose(label, [-100.0, 110.0, 110.0 - contrast]) + rng.normal(0, 10, label.shape)
    return hu.astype(np.int16), label


def write_tiny_task(
    root: Path, n_cases: int = 3, contrast: float = 60.0, seed: int = 0, lesions: bool = True
) -> Path:
    """An MSD task folder of 16³ cases (spacing 1 × 1 × 2 mm); `lesions=False`: pancreas-only
    labels (the lesion voxels labelled 1)."""
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    training = []
    for index in range(n_cases):
        image, label = tiny_case(seed * 100 + index, contrast)
        if not lesions:
            label = np.minimum(label, 1).astype(np.uint8)
        name = f"case_{index:03d}.nii.gz"
        save_nifti(root / "imagesTr" / name, image, affine)
        save_nifti(root / "labelsTr" / name, label, affine)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
    (root / "dataset.json").write_text(json.dumps({"training": training, "test": []}))
    return root
