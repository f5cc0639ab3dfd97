"""The dual-task objective (of the paper's coarse tumour network): Dice + BCE on the segmentation
logit, L1 on the normalised SDF, the reciprocal Dice of the mask recovered from the predicted
SDF, MSE consistency between two RandConv views, and the labelled contrastive term. Each can be
switched off."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceLoss
from torch import nn

from components.seg_train.contrast import contrastive_loss
from components.seg_train.network import TrainOutput
from components.seg_train.params import SegLossParams

# soft Dice per sample, no squaring, ε = 1e-6 (an empty target predicted empty costs nothing)
EPS = 1e-6


def reciprocal_mask(sdf: torch.Tensor, mode: str = "dtc_smooth", k: float = 1500.0) -> torch.Tensor:
    """The mask implied by a signed distance (negative inside).

    dtc_smooth: σ(−k·s) (DTC); faithful: the authors' hard step, 1 for s ≤ 0, 0 for
    0 < s ≤ 0.999999, s above; it has (almost) no gradient, kept to reproduce their code."""
    if mode == "dtc_smooth":
        return torch.sigmoid(-k * sdf)
    return torch.where(sdf <= 0, torch.ones_like(sdf), torch.where(sdf > 0.999999, sdf, 0 * sdf))


class DualTaskLoss(nn.Module):
    """Weighted sum of the terms; `forward` returns the total and each term (for logging)."""

    def __init__(self, params: SegLossParams, embed_stride: int = 4) -> None:
        super().__init__()
        self.params, self.embed_stride = params, embed_stride
        self.dice_ce = DiceCELoss(sigmoid=True, batch=False, smooth_nr=EPS, smooth_dr=EPS)
        self.dice = DiceLoss(sigmoid=False, batch=False, smooth_nr=EPS, smooth_dr=EPS)

    def forward(
        self, out: TrainOutput, target: torch.Tensor, sdf_target: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        p = self.params
        terms: dict[str, torch.Tensor] = {"seg": self.dice_ce(out.logits, target)}
        if out.sdf is not None and p.sdf > 0 and sdf_target is not None:
            # samples whose target is all zeros (no lesion in the crop) are skipped
            valid = sdf_target.flatten(1).abs().amax(1) > 0
            if valid.any():
                terms["sdf"] = p.sdf * (out.sdf[valid] - sdf_target[valid]).abs().mean()
        if out.sdf is not None and p.reciprocal > 0:
            mask = reciprocal_mask(out.sdf, p.rec_mode, p.rec_k)
            terms["reciprocal"] = p.reciprocal * self.dice(mask, target)
        if p.consistency > 0 and len(out.logits) % 2 == 0 and len(out.logits) > 1:
            # the batch is [view 1 of every sample, view 2 of every sample]
            first, second = torch.sigmoid(out.logits).chunk(2)
            terms["consistency"] = p.consistency * (first - second).pow(2).mean()
        if out.embeddings is not None and p.contrastive > 0:
            feat = contrastive_loss(
                out.embeddings, target, self.embed_stride, p.temperature, p.n_min, p.ring_size
            )
            if feat is not None:
                terms["contrastive"] = p.contrastive * feat
        total = torch.stack(list(terms.values())).sum()
        return total, {name: float(value.detach()) for name, value in terms.items()}
