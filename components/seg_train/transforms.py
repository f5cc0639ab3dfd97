"""MONAI transform chains. A deterministic prefix (load, RAS, resample, HU window, target, ROI
crop) that CacheDataset keeps in memory, then the random part of training (ROI margins, the
authors' augmentations, min-max) and the SDF target computed after augmentation."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from monai.transforms import (
    Compose,
    CropForegroundd,
    DeleteItemsd,
    DivisiblePadd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    MapTransform,
    Orientationd,
    RandAdjustContrastd,
    RandFlipd,
    RandGaussianNoised,
    Randomizable,
    RandRotated,
    RandZoomd,
    ScaleIntensityd,
    ScaleIntensityRanged,
    Spacingd,
    SpatialCrop,
)
from monai.transforms.utils import generate_spatial_bounding_box

from components.seg_train.params import SegTrainParams
from components.seg_train.sdf import signed_distance


class Targetd(MapTransform):
    """From an MSD label (0/1/2): `roi` = pancreas incl. lesion, `label` = the binary target."""

    def __init__(self, target: str = "lesion", label_key: str = "label", roi_key: str = "roi"):
        super().__init__(label_key)
        self.target, self.label_key, self.roi_key = target, label_key, roi_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        label = d[self.label_key]
        d[self.roi_key] = (label > 0).float()
        d[self.label_key] = (label == 2).float() if self.target == "lesion" else (label > 0).float()
        return d


class RoiCropd(Randomizable, MapTransform):
    """Crop to the bounding box of `source_key` plus a margin per side drawn from U(low, high) mm
    (fixed when low == high), converted to voxels with the image's own spacing."""

    def __init__(self, keys: Sequence[str], source_key: str, margin_mm: Sequence[float]) -> None:
        MapTransform.__init__(self, keys)
        self.source_key, self.margin_mm = source_key, margin_mm

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        source = d[self.source_key]
        start, end = generate_spatial_bounding_box(source)
        spacing = np.asarray(source.pixdim, dtype=float)
        low, high = self.margin_mm
        before, after = (np.rint(self.R.uniform(low, high, len(start)) / spacing) for _ in "ab")
        crop = SpatialCrop(
            roi_start=np.maximum(np.array(start) - before, 0).astype(int),
            roi_end=np.minimum(np.array(end) + after, source.shape[1:]).astype(int),
        )
        for key in self.key_iterator(d):
            d[key] = crop(d[key])
        return d


class SignedDistanced(MapTransform):
    """`sdf` = the normalised signed distance of the binary `label` (zeros: skip the sample)."""

    def __init__(self, label_key: str = "label", sdf_key: str = "sdf") -> None:
        super().__init__(label_key)
        self.label_key, self.sdf_key = label_key, sdf_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        mask = np.asarray(d[self.label_key][0]) > 0.5
        d[self.sdf_key] = torch.from_numpy(signed_distance(mask))[None]
        return d


def preprocess(
    spacing: Sequence[float] | None,
    hu_window: Sequence[float],
    keys: Sequence[str] = ("image", "label"),
) -> list[MapTransform]:
    """Load, channel-first, RAS, optional resampling, HU window (low, high) → [0, 1], clipped."""
    modes = ["bilinear" if key == "image" else "nearest" for key in keys]
    chain: list[MapTransform] = [
        LoadImaged(keys=list(keys), image_only=True),
        EnsureChannelFirstd(keys=list(keys)),
        # labels spelled out (MONAI's current default): left to the default, MONAI warns on every
        # run that the default will change
        Orientationd(keys=list(keys), axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
    ]
    if spacing is not None:
        chain.append(Spacingd(keys=list(keys), pixdim=tuple(spacing), mode=modes))
    low, high = hu_window
    chain.append(ScaleIntensityRanged("image", low, high, 0.0, 1.0, clip=True))
    return chain


def eval_transforms(params: SegTrainParams, divisor: int) -> Compose:
    """Held-out cases: the pancreas box plus a fixed margin (the paper's GT-pancreas ROI)."""
    keys = ["image", "label", "roi"]
    return Compose(
        [
            *preprocess(params.spacing, params.hu_window),
            Targetd(params.target),
            RoiCropd(keys, source_key="roi", margin_mm=(params.inference.margin,) * 2),
            DivisiblePadd(keys, k=divisor),
            EnsureTyped(keys, dtype=torch.float32),
        ]
    )


def train_transforms(params: SegTrainParams, divisor: int, with_sdf: bool) -> Compose:
    keys = ["image", "label"]
    modes = ["bilinear", "nearest"]
    angle = math.radians(15)
    chain: list = [*preprocess(params.spacing, params.hu_window), Targetd(params.target)]
    if params.spacing is not None:
        # deterministic, so CacheDataset keeps the box, not the whole volume: the widest margin
        # any random draw can take, in voxels of the resampled grid
        margin = math.ceil(params.roi_margin[1] / min(params.spacing))
        chain.append(CropForegroundd([*keys, "roi"], source_key="roi", margin=margin))
    chain += [
        RoiCropd([*keys, "roi"], source_key="roi", margin_mm=params.roi_margin),
        DeleteItemsd("roi"),
        DivisiblePadd(keys, k=divisor),
    ]
    if params.augment:
        chain += [
            RandZoomd(keys, prob=0.5, min_zoom=0.8, max_zoom=1.2, mode=["trilinear", "nearest"]),
            RandRotated(keys, range_x=angle, range_y=angle, range_z=angle, prob=0.5, mode=modes),
            *(RandFlipd(keys, prob=0.5, spatial_axis=axis) for axis in range(3)),
            RandAdjustContrastd("image", prob=0.5, gamma=(0.7, 1.5)),
            RandGaussianNoised("image", prob=0.5, std=0.1, sample_std=True),
        ]
    chain += [ScaleIntensityd("image", minv=0.0, maxv=1.0), EnsureTyped(keys, dtype=torch.float32)]
    if with_sdf:
        chain.append(SignedDistanced())
    return Compose(chain)


def predict_transforms(
    spacing: Sequence[float] | None,
    hu_window: Sequence[float],
    margin: float,
    with_roi: bool,
    divisor: int,
) -> Compose:
    """A user's volume (and optionally a pancreas mask that sets the ROI), invertible so the
    prediction can be written on the input's grid."""
    keys = ["image", "roi"] if with_roi else ["image"]
    chain: list = [*preprocess(spacing, hu_window, keys)]
    if with_roi:
        chain.append(RoiCropd(keys, source_key="roi", margin_mm=(margin, margin)))
    chain += [DivisiblePadd(keys, k=divisor), EnsureTyped(keys, dtype=torch.float32)]
    return Compose(chain)
