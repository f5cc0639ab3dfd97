"""The normalised signed-distance target of a binary mask (DTC / the authors' `compute_sdf`)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def inner_boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with a face neighbour in the background (skimage's
    `find_boundaries(mode="inner")`); the array border does not count as background."""
    face = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, face, border_value=1)


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """φ = d_out / max(d_out) − d_in / max(d_in), in voxel units: −1…0 inside, 0…1 outside,
    0 on the inner boundary. A mask without an inside or an outside, or so thin that every inside
    voxel is on the boundary, gives zeros, which the SDF loss reads as "skip this sample"."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any() or mask.all():
        return np.zeros(mask.shape, np.float32)
    d_out = ndimage.distance_transform_edt(~mask)
    d_in = ndimage.distance_transform_edt(mask)
    sdf = d_out / d_out.max() - d_in / d_in.max()
    sdf[inner_boundary(mask)] = 0.0
    if sdf.min() != -1.0 or sdf.max() != 1.0:
        return np.zeros(mask.shape, np.float32)
    return sdf.astype(np.float32)
