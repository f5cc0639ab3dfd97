"""seg_train's section (read by the seg_train and seg_evaluate stages)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import StrictModel, step_schema


class SegNetworkParams(StrictModel):
    """MONAI SegResNet backbone plus the SDF and projection heads."""

    init_filters: int = Field(8, gt=0, multiple_of=8)  # GroupNorm with 8 groups
    blocks_down: tuple[int, ...] = (1, 1, 1, 1)  # 4 levels: bottleneck at 1/8
    blocks_up: tuple[int, ...] = (1, 1, 1)
    # contrastive features at 1/8 (the authors') or 1/4 (ours: synthetic lesions vanish at 1/8)
    embed_stride: Literal[4, 8] = 4
    proj_dim: int = Field(16, gt=0)
    # initial foreground probability of the segmentation logit (bias = logit of it): small lesions
    # otherwise sit for hundreds of steps near p = 0.5, where a 0.5 threshold is a coin toss
    foreground_prior: float | None = Field(0.02, gt=0, lt=1)


class SegLossParams(StrictModel):
    """Weights of the dual-task objective; a weight of 0 (or views: false) switches a term off.
    Dice + BCE is always on."""

    sdf: float = Field(1.0, ge=0)
    reciprocal: float = Field(1.0, ge=0)
    rec_mode: Literal["dtc_smooth", "faithful"] = "dtc_smooth"
    rec_k: float = Field(1500.0, gt=0)
    views: bool = True  # two random-convolution views of each crop
    consistency: float = Field(1.0, ge=0)  # MSE between the two views' probabilities
    contrastive: float = Field(0.1, ge=0)
    temperature: float = Field(0.05, gt=0)
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    n_min: int = Field(5, ge=1)  # voxels per slice before a slice gives an anchor
    ring_size: tuple[int, int] = (10, 20)  # negatives: ring of a random box dilation

    @model_validator(mode="after")
    def _check(self) -> SegLossParams:
        if self.consistency > 0 and not self.views:
            raise ValueError("seg_train.loss.consistency needs views: true")
        return self


class SegInferenceParams(StrictModel):
    threshold: float = Field(0.5, gt=0, lt=1)  # fixed, never tuned on the held-out domain
    tta: bool = True  # mean probability over the 8 flip combinations
    roi_size: tuple[int, int, int] = (64, 64, 32)  # sliding-window size
    overlap: float = Field(0.5, ge=0, lt=1)
    largest_component: bool = True
    margin: float = Field(4.0, ge=0)  # mm around the pancreas box at evaluation


class SegTrainParams(StrictModel):
    """seg_train and seg_evaluate: leave-one-domain-out training and evaluation."""

    seed: int = 0
    train_domains: tuple[str, ...] = ("A", "B")
    test_domains: tuple[str, ...] = ("C",)
    # the last N cases of each domain: in-domain validation (train domains), test (held-out ones)
    holdout_per_domain: int = Field(8, ge=1)
    target: Literal["lesion", "pancreas"] = "lesion"
    spacing: tuple[float, float, float] | None = (1.0, 1.0, 2.0)  # resample to (mm); null: native
    # HU range mapped to [0, 1] (clipped outside): soft tissue and lesion contrast of abdominal CT
    hu_window: tuple[float, float] = (-100.0, 240.0)
    roi_margin: tuple[float, float] = (2.0, 6.0)  # random mm around the pancreas box per side
    augment: bool = True
    iterations: int = Field(300, gt=0)  # one volume (two views) per iteration
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    poly_power: float = Field(0.9, ge=0)
    num_threads: int = Field(2, gt=0)
    log_every: int = Field(10, gt=0)
    network: SegNetworkParams = SegNetworkParams()
    loss: SegLossParams = SegLossParams()
    inference: SegInferenceParams = SegInferenceParams()
    overlay_cases: int = Field(3, ge=0)
    registered_model_name: str = "pancreas-seg"
    promote_metric: str = "dice_val"  # in-domain validation: the held-out domain stays unseen
    greater_is_better: bool = True

    @model_validator(mode="after")
    def _check(self) -> SegTrainParams:
        if not self.train_domains:
            raise ValueError("seg_train.train_domains is empty")
        if set(self.train_domains) & set(self.test_domains):
            raise ValueError("seg_train.test_domains overlap train_domains")
        if self.hu_window[0] >= self.hu_window[1]:
            raise ValueError("seg_train.hu_window needs [low, high] with low < high")
        return self


# what `python -m components.seg_train train|evaluate` reads from params.yaml
SegTrainStep = step_schema("SegTrainStep", seg_train=SegTrainParams)
