"""NIfTI volumes with the project's error contract: an unreadable file is a ProjectError naming it;
writes go through `atomic_path`, so a failed step never leaves a half-written volume."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np

from components.common.io import ProjectError, atomic_path


def load_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    """(array, affine, voxel spacing in mm) of a NIfTI file."""
    path = Path(path)
    if not path.is_file():
        raise ProjectError("file not found", file=path)
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises several unrelated types for corrupt files
        raise ProjectError(f"not a readable NIfTI volume ({error})", file=path) from None
    spacing = tuple(float(s) for s in image.header.get_zooms()[: array.ndim])
    return array, image.affine, spacing


def save_nifti(path: str | os.PathLike, array: np.ndarray, affine: np.ndarray) -> Path:
    """Write `array` with `affine` (the suffix, .nii or .nii.gz, picks the compression)."""
    path = Path(path)
    image = nib.Nifti1Image(np.asarray(array), np.asarray(affine, dtype=np.float64))
    image.header.set_xyzt_units("mm")
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))
    return path
