"""The dual-task network: a MONAI SegResNet whose final 1×1 conv has two outputs (segmentation
logit, signed-distance pre-tanh) on the same decoder features, plus a projection head on encoder
features for the contrastive term. With both extra heads off it is the plain SegResNet."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from monai.networks.nets import SegResNet
from torch import nn

from components.seg_train.params import SegNetworkParams


class TrainOutput(NamedTuple):
    logits: torch.Tensor  # (B, 1, X, Y, Z) segmentation logit
    sdf: torch.Tensor | None  # (B, 1, X, Y, Z) tanh of the SDF head, in (-1, 1)
    embeddings: torch.Tensor | None  # (B, proj_dim, X/s, Y/s, Z/s)


class DualTaskSegResNet(nn.Module):
    """`forward` returns only the segmentation logit (what inference and sliding windows need);
    `forward_train` also returns the SDF and the projected features."""

    def __init__(
        self, params: SegNetworkParams, sdf_head: bool = True, projection: bool = True
    ) -> None:
        super().__init__()
        self.params, self.sdf_head = params, sdf_head
        self.backbone = SegResNet(
            spatial_dims=3,
            in_channels=1,
            out_channels=2 if sdf_head else 1,
            init_filters=params.init_filters,
            blocks_down=params.blocks_down,
            blocks_up=params.blocks_up,
            norm=("GROUP", {"num_groups": 8}),
            upsample_mode="nontrainable",
        )
        if params.foreground_prior is not None:
            prior = params.foreground_prior
            with torch.no_grad():
                self.backbone.conv_final[-1].conv.bias[0] = math.log(prior / (1 - prior))
        self.embed_level = int(math.log2(params.embed_stride))
        channels = params.init_filters * 2**self.embed_level
        self.projection = (
            nn.Sequential(nn.Conv3d(channels, params.proj_dim, 1), nn.ReLU())
            if projection
            else None
        )
        # what predict needs to rebuild the model from a checkpoint
        self.config: dict[str, Any] = {
            "network": params.model_dump(mode="json"),
            "sdf_head": sdf_head,
            "projection": projection,
        }

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this (the bottleneck's stride)."""
        return 2 ** (len(self.params.blocks_down) - 1)

    def forward_train(self, x: torch.Tensor) -> TrainOutput:
        bottleneck, skips = self.backbone.encode(x)
        embeddings = self.projection(skips[self.embed_level]) if self.projection else None
        out = self.backbone.decode(bottleneck, skips[::-1])
        sdf = torch.tanh(out[:, 1:2]) if self.sdf_head else None
        return TrainOutput(out[:, :1], sdf, embeddings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottleneck, skips = self.backbone.encode(x)
        return self.backbone.decode(bottleneck, skips[::-1])[:, :1]
