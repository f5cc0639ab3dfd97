"""Checking the volumes of a Medical Segmentation Decathlon task folder (the synthetic sites and
the real Task07_Pancreas alike) before anything trains on them.

A failed check is a ProjectError that names the file and the failed property (`field`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import ProjectError, first_few
from components.common.msd import domain_cases
from components.common.nifti import load_nifti

ALLOWED_LABELS = (0, 1, 2)
# image and label affines of real MSD files differ by float noise only
AFFINE_ATOL = 1e-3


def check_volume(image_path: str | os.PathLike, label_path: str | os.PathLike) -> dict[str, Any]:
    """Shape and affine agree, labels in {0, 1, 2}, finite intensities, non-empty foreground.

    Returns a summary of the case (shape, spacing, voxel counts, intensity range)."""
    image_path, label_path = Path(image_path), Path(label_path)
    image, image_affine, spacing = load_nifti(image_path)
    label, label_affine, _ = load_nifti(label_path)
    if image.ndim != 3:
        raise ProjectError(f"expected a 3D volume, got shape {image.shape}", file=image_path)
    if image.shape != label.shape:
        raise ProjectError(
            f"label shape {label.shape} != image shape {image.shape}",
            file=label_path,
            field="shape",
        )
    if not np.allclose(image_affine, label_affine, atol=AFFINE_ATOL):
        raise ProjectError("label affine differs from the image's", file=label_path, field="affine")
    if not np.isfinite(image).all():
        raise ProjectError(
            "non-finite intensities (NaN or inf)", file=image_path, field="intensity"
        )
    values = np.unique(label)
    bad = [float(v) for v in values if v not in ALLOWED_LABELS]
    if bad:
        raise ProjectError(
            f"label values {bad} outside {list(ALLOWED_LABELS)}", file=label_path, field="labels"
        )
    counts = {int(v): int((label == v).sum()) for v in ALLOWED_LABELS}
    if counts[1] + counts[2] == 0:
        raise ProjectError(
            "empty foreground (no pancreas or lesion)", file=label_path, field="labels"
        )
    return {
        "shape": list(image.shape),
        "spacing": list(spacing),
        "pancreas_voxels": counts[1],
        "lesion_voxels": counts[2],
        "intensity_min": float(image.min()),
        "intensity_max": float(image.max()),
    }


def check_domain(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Check every case of one task folder; the bad cases are all reported in one error."""
    summaries, errors = [], []
    for case in domain_cases(root):
        try:
            summaries.append({"id": case["id"], **check_volume(case["image"], case["label"])})
        except ProjectError as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise several_bad_cases(Path(root), errors)
    return summaries


def several_bad_cases(root: Path, errors: list[ProjectError]) -> ProjectError:
    """One line naming each bad case's file, property and problem."""
    return ProjectError(f"{len(errors)} bad cases: {first_few(errors)}", file=root)
