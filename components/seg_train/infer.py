"""Inference as the authors do it: sliding-window probabilities (Gaussian-weighted), the mean over
the 8 flip combinations as test-time augmentation, a fixed threshold, the largest 26-connected
component. The SDF and projection heads are not used."""

from __future__ import annotations

import itertools

import torch
from monai.inferers import sliding_window_inference
from monai.transforms import KeepLargestConnectedComponent
from torch import nn

from components.seg_train.params import SegInferenceParams

SPATIAL_DIMS = (2, 3, 4)


def flip_sets(tta: bool) -> list[tuple[int, ...]]:
    """Every subset of the spatial axes (8 with TTA), or none."""
    if not tta:
        return [()]
    return [dims for n in range(4) for dims in itertools.combinations(SPATIAL_DIMS, n)]


@torch.no_grad()
def predict_probability(
    model: nn.Module, image: torch.Tensor, params: SegInferenceParams
) -> torch.Tensor:
    """Foreground probability (B, 1, X, Y, Z) of an image whose size is a multiple of the
    network's divisor; windows never exceed the image (the whole ROI when it fits)."""
    model.eval()
    roi = [min(r, s) for r, s in zip(params.roi_size, image.shape[2:], strict=True)]
    total = torch.zeros_like(image[:, :1])
    flips = flip_sets(params.tta)
    for dims in flips:
        view = image.flip(dims) if dims else image
        logits = sliding_window_inference(
            view, roi, sw_batch_size=4, predictor=model, overlap=params.overlap, mode="gaussian"
        )
        prob = torch.sigmoid(logits)
        total += prob.flip(dims) if dims else prob
    return total / len(flips)


def segment(probability: torch.Tensor, params: SegInferenceParams) -> torch.Tensor:
    """Binary mask (B, 1, X, Y, Z) from probabilities: threshold, then the largest component."""
    mask = (probability > params.threshold).to(torch.uint8)
    if params.largest_component:
        keep = KeepLargestConnectedComponent(is_onehot=False, connectivity=3)
        mask = torch.stack([torch.as_tensor(keep(m)) for m in mask])
    return mask
