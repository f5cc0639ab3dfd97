"""Skeleton-guided supervised contrastive learning on low-resolution features (the predecessor
JBHI 2023 module as in the authors' code): lesion-skeleton voxels are positives, voxels on the 2D
skeleton of a ring around the lesion are negatives, one of each per axial slice, pulled together /
pushed apart with a labelled NT-Xent."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from skimage.morphology import skeletonize

Point = tuple[int, int, int, int]  # (batch, x, y, z) at feature resolution
# fewer voxels per slice are accepted, in this order, before the term is skipped
FALLBACK_N_MIN = (4, 3, 2, 1)


def _skeleton(mask: torch.Tensor) -> torch.Tensor:
    """Skeleton of each item of a boolean (N, *spatial) mask, 2D or 3D (scikit-image)."""
    skeletons = np.stack([skeletonize(item) for item in mask.cpu().numpy()])
    return torch.from_numpy(skeletons).to(mask.device)


def _box_dilate(mask: torch.Tensor, box: Sequence[int]) -> torch.Tensor:
    """Dilation of a (B, X, Y, Z) mask by an odd box, one axis at a time (a box is separable;
    one 3D max-pool would cost k³ per voxel)."""
    out = mask[:, None].float()
    for axis, k in enumerate(box):
        kernel, padding = [1, 1, 1], [0, 0, 0]
        kernel[axis], padding[axis] = k, k // 2
        out = F.max_pool3d(out, kernel, stride=1, padding=padding)
    return out[:, 0] > 0


def _pick(candidates: torch.Tensor, eligible: torch.Tensor) -> list[Point]:
    """One random candidate voxel per eligible (batch, z-slice)."""
    points = []
    for b, z in eligible.nonzero().tolist():
        where = candidates[b, :, :, z].nonzero()
        if len(where):
            x, y = where[int(torch.randint(len(where), (1,)))].tolist()
            points.append((b, x, y, z))
    return points


def sample_anchors(
    target: torch.Tensor, stride: int, n_min: int = 5, ring_size: Sequence[int] = (10, 20)
) -> tuple[list[Point], list[Point]] | None:
    """(positives, negatives) at 1/`stride` resolution for a binary target (B, 1, X, Y, Z), with
    axial slices along the last axis; None when either set stays empty down to n_min = 1."""
    lesion = target[:, 0] > 0.5
    k = int(torch.randint(ring_size[0], ring_size[1] + 1, (1,))) | 1  # odd: a centred box
    kz = max(k - 3, 1) | 1
    ring = _box_dilate(lesion, (k, k, kz)) & ~lesion
    lesion, ring = (m[:, ::stride, ::stride, ::stride] for m in (lesion, ring))
    positives = _skeleton(lesion)
    # negatives from each axial slice's 2D skeleton of the ring
    b, x, y, z = ring.shape
    slices = ring.permute(0, 3, 1, 2).reshape(b * z, x, y)
    negatives = _skeleton(slices).reshape(b, z, x, y).permute(0, 2, 3, 1)
    lesion_count, ring_count = lesion.sum((1, 2)), ring.sum((1, 2))
    for n in [n_min, *(n for n in FALLBACK_N_MIN if n < n_min)]:
        pos = _pick(positives, lesion_count >= n)
        neg = _pick(negatives, ring_count >= n)
        if pos and neg:
            return pos, neg
    return None


def labelled_nt_xent(
    features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor | None:
    """Supervised NT-Xent over every same-label pair (a, p):
    −log(e^{cos(a,p)/τ} / (e^{cos(a,p)/τ} + Σ_{n: label ≠ label_a} e^{cos(a,n)/τ})), averaged.
    None for a one-class batch or no positive pair (the term is then skipped)."""
    z = F.normalize(features, dim=1)
    sim = z @ z.T / temperature
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    if same.all() or not positive.any():
        return None
    negatives = torch.logsumexp(sim.masked_fill(same, float("-inf")), dim=1, keepdim=True)
    return (torch.logaddexp(sim, negatives) - sim)[positive].mean()


def contrastive_loss(
    embeddings: torch.Tensor,
    target: torch.Tensor,
    stride: int,
    temperature: float = 0.05,
    n_min: int = 5,
    ring_size: Sequence[int] = (10, 20),
) -> torch.Tensor | None:
    """The feature-space term for embeddings (B, C, X/s, Y/s, Z/s) and a target (B, 1, X, Y, Z)."""
    anchors = sample_anchors(target, stride, n_min, ring_size)
    if anchors is None:
        return None
    points = anchors[0] + anchors[1]
    index = torch.tensor(points, device=embeddings.device)
    features = embeddings.permute(0, 2, 3, 4, 1)[index[:, 0], index[:, 1], index[:, 2], index[:, 3]]
    labels = torch.tensor([1] * len(anchors[0]) + [0] * len(anchors[1]), device=embeddings.device)
    return labelled_nt_xent(features, labels, temperature)
