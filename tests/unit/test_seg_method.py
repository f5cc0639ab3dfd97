"""The method's math on hand-made 16³ volumes: SDF target, reciprocal transform, RandConv views,
the loss terms, the contrastive sampler and NT-Xent, and the network's shapes."""

import numpy as np
import pytest
import torch
from monai.losses import DiceLoss
from skimage.segmentation import find_boundaries

from components.seg_train.contrast import labelled_nt_xent, sample_anchors
from components.seg_train.losses import DualTaskLoss, reciprocal_mask
from components.seg_train.network import DualTaskSegResNet, TrainOutput
from components.seg_train.params import SegLossParams, SegNetworkParams
from components.seg_train.randconv import random_convolution, two_views
from components.seg_train.sdf import signed_distance


def sphere(radius: float = 5.0, size: int = 16, centre: float = 7.5) -> np.ndarray:
    grid = np.indices((size, size, size)) - centre
    return (grid**2).sum(0) <= radius**2


def test_sdf_sign_scaling_and_boundary_on_a_sphere():
    mask = sphere()
    sdf = signed_distance(mask)
    assert sdf.dtype == np.float32 and sdf.shape == mask.shape
    assert sdf.min() == -1.0 and sdf.max() == 1.0
    assert (sdf[mask] <= 0).all() and (sdf[~mask] > 0).all()
    boundary = find_boundaries(mask, mode="inner")
    assert (sdf[boundary] == 0).all() and (sdf[mask & ~boundary] < 0).all()
    # deepest inside at the centre, farthest outside at a corner
    assert sdf[7:9, 7:9, 7:9].max() == -1.0
    assert sdf[0, 0, 0] == 1.0 or sdf[15, 15, 15] == 1.0
    # scaling: outside is the distance to the mask over its maximum
    from scipy.ndimage import distance_transform_edt

    d_out = distance_transform_edt(~mask)
    np.testing.assert_allclose(sdf[~mask], (d_out / d_out.max())[~mask], rtol=1e-6)


@pytest.mark.parametrize("mask", [np.zeros((16,) * 3, bool), np.ones((16,) * 3, bool)])
def test_sdf_of_empty_or_full_mask_is_zero(mask):
    assert not signed_distance(mask).any()


def test_reciprocal_transform_of_a_perfect_sdf_recovers_the_mask():
    mask = sphere()
    sdf = torch.from_numpy(signed_distance(mask))[None, None]
    target = torch.from_numpy(mask).float()[None, None]
    assert torch.equal((sdf <= 0).float(), target)  # H(−φ) == y
    # the authors' hard step on what tanh can output (it passes values above 0.999999 through)
    assert torch.equal(reciprocal_mask(sdf.clamp(max=0.999), "faithful"), target)
    # DTC's σ(−k·φ): exact off the inner boundary, 0.5 on it (φ = 0 there)
    smooth = reciprocal_mask(sdf, "dtc_smooth", k=1500)
    boundary = torch.from_numpy(find_boundaries(mask, mode="inner"))[None, None]
    torch.testing.assert_close(smooth[~boundary], target[~boundary], atol=1e-6, rtol=0)
    assert (smooth[boundary] == 0.5).all()
    # the spec's Dice(σ(−1500·φ(y)), y) > 0.98. σ = 0.5 on the B inner-boundary voxels (φ = 0)
    # and exact on the other N − B: soft Dice = (2N − B) / (2N − B/2), above 0.98 only while
    # B/N < 0.078, i.e. for a sphere of radius ≳ 32 voxels (r = 14: B/N = 0.17, Dice 0.956;
    # r = 38: B/N = 0.064, Dice 0.984)
    big = sphere(radius=38, size=80, centre=39.5)
    big_sdf = torch.from_numpy(signed_distance(big))[None, None]
    dice = 1 - DiceLoss()(reciprocal_mask(big_sdf), torch.from_numpy(big).float()[None, None])
    n, b = big.sum(), find_boundaries(big, mode="inner").sum()
    assert float(dice) == pytest.approx((2 * n - b) / (2 * n - b / 2), rel=1e-6)
    assert dice > 0.98


def test_random_convolution_keeps_shape_and_range_and_differs_per_draw():
    x = torch.rand(2, 1, 16, 16, 16)
    torch.manual_seed(0)
    views = two_views(x)
    assert views.shape == (4, 1, 16, 16, 16)
    assert views.min() >= 0 and views.max() <= 1
    assert not torch.allclose(views[:2], views[2:])
    torch.manual_seed(0)
    assert torch.equal(two_views(x), views)  # deterministic under a seed
    constant = random_convolution(torch.full((1, 1, 16, 16, 16), 0.5))
    assert torch.isfinite(constant).all() and constant.min() >= 0 and constant.max() <= 1


def perfect_output(
    mask: np.ndarray, views: int = 2
) -> tuple[TrainOutput, torch.Tensor, torch.Tensor]:
    target = torch.from_numpy(mask).float()[None, None].repeat(views, 1, 1, 1, 1)
    sdf = torch.from_numpy(signed_distance(mask))[None, None].repeat(views, 1, 1, 1, 1)
    logits = (target * 2 - 1) * 50  # σ = 1 inside, 0 outside, to float precision
    # the best tanh can do: |ŝ| < 1
    return TrainOutput(logits, sdf.clamp(-0.999999, 0.999999), None), target, sdf


def test_each_loss_term_is_zero_on_a_perfect_prediction():
    out, target, sdf = perfect_output(sphere())
    params = SegLossParams(rec_mode="faithful", contrastive=0.0)
    total, terms = DualTaskLoss(params)(out, target, sdf)
    assert set(terms) == {"seg", "sdf", "reciprocal", "consistency"}
    for name, value in terms.items():
        assert value == pytest.approx(0.0, abs=1e-5), name
    assert float(total) == pytest.approx(0.0, abs=1e-4)


def test_terms_switch_off_and_an_empty_crop_stays_finite():
    out, target, sdf = perfect_output(np.zeros((16,) * 3, bool), views=1)
    params = SegLossParams(views=False, consistency=0.0, reciprocal=0.0, contrastive=0.0)
    total, terms = DualTaskLoss(params)(out, target, sdf)
    assert set(terms) == {"seg"}  # the SDF term is skipped for a crop without lesion
    assert torch.isfinite(total) and float(total) == pytest.approx(0.0, abs=1e-5)


def test_nt_xent_is_lower_for_identical_positives_and_skips_one_class():
    torch.manual_seed(0)
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    random = labelled_nt_xent(torch.randn(6, 8), labels)
    aligned = torch.cat([torch.ones(3, 8), -torch.ones(3, 8)]) + 0.01 * torch.randn(6, 8)
    assert labelled_nt_xent(aligned, labels) < random
    assert labelled_nt_xent(torch.randn(4, 8), torch.ones(4, dtype=torch.long)) is None


def test_sampler_one_anchor_per_slice_positives_inside_negatives_in_the_ring():
    torch.manual_seed(0)
    mask = torch.from_numpy(sphere(radius=6)).float()[None, None].repeat(2, 1, 1, 1, 1)
    positives, negatives = sample_anchors(mask, stride=2, n_min=2, ring_size=(6, 8))
    low = mask[:, 0, ::2, ::2, ::2] > 0.5
    for points, inside in ((positives, True), (negatives, False)):
        slices = [(b, z) for b, _, _, z in points]
        assert len(slices) == len(set(slices))  # at most one per (view, slice)
        assert all(bool(low[b, x, y, z]) is inside for b, x, y, z in points)
    assert {b for b, *_ in positives} == {0, 1}
    assert sample_anchors(torch.zeros(1, 1, 16, 16, 16), stride=2) is None


def test_network_shapes_and_heads():
    x = torch.rand(2, 1, 16, 16, 16)
    net = DualTaskSegResNet(SegNetworkParams(embed_stride=8))
    out = net.forward_train(x)
    assert out.logits.shape == out.sdf.shape == (2, 1, 16, 16, 16)
    assert out.sdf.abs().max() < 1
    assert out.embeddings.shape == (2, 16, 2, 2, 2) and net.divisor == 8
    assert net(x).shape == (2, 1, 16, 16, 16)
    plain = DualTaskSegResNet(SegNetworkParams(), sdf_head=False, projection=False)
    out = plain.forward_train(x)
    assert out.sdf is None and out.embeddings is None
    assert plain.backbone.conv_final[-1].conv.out_channels == 1
