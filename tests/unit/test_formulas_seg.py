"""The dual-task segmentation formulas pinned by hand-computed values on tiny tensors: the SDF
target, the SDF / reciprocal / consistency loss terms, the reciprocal transform, RandConv's α-mix
and its draws, and the labelled NT-Xent. Each test names the mutation it exists to catch."""

import math

import numpy as np
import pytest
import torch

from components.seg_train import contrast, losses, randconv
from components.seg_train.contrast import labelled_nt_xent, sample_anchors
from components.seg_train.losses import DualTaskLoss, reciprocal_mask
from components.seg_train.metrics import case_metrics, summarize
from components.seg_train.network import TrainOutput
from components.seg_train.params import SegLossParams
from components.seg_train.randconv import mix_view, random_convolution
from components.seg_train.sdf import inner_boundary, signed_distance


def line(values: list[int]) -> np.ndarray:
    """A (1, 1, n) mask: a 1D profile through a 3D volume."""
    return np.array(values, dtype=bool)[None, None]


def test_sdf_normalises_inside_and_outside_separately():
    # mask 0 0 1 1 1 1 1 0: d_out (to the mask) = 2 1 . . . . . 1, max 2;
    # d_in (to the background) = . . 1 2 3 2 1 ., max 3; voxels 2 and 6 are the inner boundary (0).
    # φ = d_out/2 − d_in/3 = 1, 1/2, 0, −2/3, −1, −2/3, 0, 1/2.
    # Catches: the inside half not normalised (−d_in gives −3: the target collapses to zeros),
    # either half divided by the other side's maximum, the boundary not zeroed.
    sdf = signed_distance(line([0, 0, 1, 1, 1, 1, 1, 0]))
    expected = [1.0, 0.5, 0.0, -2 / 3, -1.0, -2 / 3, 0.0, 0.5]
    np.testing.assert_allclose(sdf[0, 0], expected, rtol=0, atol=1e-7)
    assert sdf.dtype == np.float32


def test_sdf_of_a_mask_that_is_all_boundary_is_skipped():
    # mask 0 1 1 0: both inside voxels touch the background, so φ has no −1: zeros (skip)
    assert not signed_distance(line([0, 1, 1, 0])).any()
    # the array border is not background: voxel 0 of 1 1 0 is inside, not on the boundary
    assert inner_boundary(line([1, 1, 0]))[0, 0].tolist() == [False, True, False]


def terms_of(params: SegLossParams, out: TrainOutput, target, sdf_target=None) -> dict:
    return DualTaskLoss(params)(out, target, sdf_target)[1]


ONLY = {"sdf": 0.0, "reciprocal": 0.0, "consistency": 0.0, "contrastive": 0.0}


def test_a_zero_weight_switches_its_term_off_with_every_input_present(monkeypatch):
    # two views (batch 2), an SDF head and its target, embeddings with a feature loss to give:
    # every term could be computed, and a weight of 0 must leave it out (not add 0 · term), so
    # the log shows what was trained. Catches: `weight > 0` → `weight >= 0` for any of the four.
    monkeypatch.setattr(losses, "contrastive_loss", lambda *args: torch.tensor(0.4))
    target = torch.ones(2, 1, 4, 4, 4)
    out = TrainOutput(
        torch.zeros_like(target), torch.zeros_like(target), torch.zeros(2, 4, 1, 1, 1)
    )
    assert set(terms_of(SegLossParams(**ONLY), out, target, -torch.ones_like(target))) == {"seg"}


def test_sdf_term_is_weighted_l1_over_samples_with_a_lesion():
    # sample 0: ŝ = (0.5, −0.5) against φ = (1, −1): |.| = 0.5, 0.5; sample 1 has φ = 0 (no
    # lesion): skipped. L_SDF = 2 · mean(0.5, 0.5) = 1.0.
    # Catches: L1 → MSE (2 · 0.25 = 0.5), the empty sample kept (2 · mean(.5, .5, .9, .9) = 1.4).
    predicted = torch.tensor([[0.5, -0.5], [0.9, 0.9]]).view(2, 1, 1, 1, 2)
    sdf_target = torch.tensor([[1.0, -1.0], [0.0, 0.0]]).view(2, 1, 1, 1, 2)
    target = (sdf_target < 0).float()
    params = SegLossParams(**{**ONLY, "sdf": 2.0})
    out = TrainOutput(torch.zeros_like(target), predicted, None)
    terms = terms_of(params, out, target, sdf_target)
    assert terms["sdf"] == pytest.approx(1.0, abs=1e-6)


def test_consistency_term_is_weighted_mse_between_the_two_halves_of_the_batch():
    # batch = [view 1 of samples a, b, view 2 of a, b]; logits 0, 0, ln 3, ln 3 → p = .5, .5, .75,
    # .75. Pairs (a1, a2), (b1, b2): differences −.25, −.25. L = 2 · mean(.0625, .0625) = 0.125.
    # Catches: MSE → L1 (2 · .25 = 0.5), views paired as neighbours (p0 − p1 = 0: 0.0), the
    # weight dropped (0.0625), logits compared instead of probabilities (2 · ln3² = 2.41).
    logits = torch.tensor([0.0, 0.0, math.log(3), math.log(3)]).view(4, 1, 1, 1, 1)
    params = SegLossParams(**{**ONLY, "consistency": 2.0})
    terms = terms_of(params, TrainOutput(logits, None, None), torch.ones_like(logits))
    assert terms["consistency"] == pytest.approx(0.125, abs=1e-6)


def test_reciprocal_term_is_weighted_dice_of_the_mask_from_the_sdf():
    # faithful step on ŝ = (−0.5, 0.5) → mask (1, 0) against y = (1, 1):
    # Dice = 2·1 / (1 + 2) = 2/3; L_rec = 3 · (1 − 2/3) = 1.0 (ε = 1e-6 moves it by < 1e-6)
    predicted = torch.tensor([-0.5, 0.5]).view(1, 1, 1, 1, 2)
    target = torch.ones_like(predicted)
    params = SegLossParams(**{**ONLY, "reciprocal": 3.0}, rec_mode="faithful")
    terms = terms_of(params, TrainOutput(torch.zeros_like(target), predicted, None), target)
    assert terms["reciprocal"] == pytest.approx(1.0, abs=1e-5)


def test_reciprocal_transforms_by_hand():
    # dtc_smooth σ(−k·s), k = 100: s = −0.01, 0, 0.01 → σ(1), σ(0), σ(−1)
    smooth = reciprocal_mask(torch.tensor([-0.01, 0.0, 0.01]), "dtc_smooth", k=100.0)
    sigma1 = 1 / (1 + math.exp(-1))  # 0.7310586
    torch.testing.assert_close(smooth, torch.tensor([sigma1, 0.5, 1 - sigma1]))
    # the authors' step: 1 for s ≤ 0, 0 for 0 < s ≤ 0.999999, s itself above
    step = reciprocal_mask(torch.tensor([-0.5, 0.0, 0.5, 0.999999, 0.9999995]), "faithful")
    torch.testing.assert_close(step, torch.tensor([1.0, 1.0, 0.0, 0.0, 0.9999995]))


PROFILE = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 1, 3)


def kernel(value: float) -> torch.Tensor:
    return torch.full((1, 1, 1, 1, 1), value)


@pytest.mark.parametrize(
    ("weight", "bias", "alpha", "expected"),
    [
        # conv = 1 − x = (1, .5, 0); α = .25: .25·conv + .75·x = (.25, .5, .75), min-max (0, .5, 1).
        # Without the mix the view is conv itself, inverted: (1, .5, 0).
        (-1.0, 1.0, 0.25, [0.0, 0.5, 1.0]),
        # conv = 2x = (0, 1, 2); α = .25: (0, .625, 1.25), clamped (0, .625, 1), min-max the same.
        # Without the mix: clamp (0, 1, 1); α and 1 − α swapped: (0, .875, 1.75) → (0, .875, 1).
        (2.0, 0.0, 0.25, [0.0, 0.625, 1.0]),
        # α = 1 is the convolution alone: clamp(2x) = (0, 1, 1)
        (2.0, 0.0, 1.0, [0.0, 1.0, 1.0]),
        # min-max after the clamp: conv = x + .5 → α = .5: (.25, .75, 1.25) → (.25, .75, 1) →
        # ((0, .5, .75) / .75) = (0, 2/3, 1)
        (1.0, 0.5, 0.5, [0.0, 2 / 3, 1.0]),
    ],
)
def test_randconv_view_is_the_alpha_mix_clamped_and_min_max_normalised(
    weight, bias, alpha, expected
):
    view = mix_view(PROFILE, kernel(weight), torch.tensor([bias]), torch.tensor([alpha]))
    torch.testing.assert_close(view.flatten(), torch.tensor(expected))


def test_randconv_pads_by_half_the_kernel_and_normalises_per_sample():
    # a 3³ kernel that copies the centre voxel is the identity with padding 1 (shape kept);
    # two samples of different range are each stretched to [0, 1] on their own
    identity = torch.zeros(1, 1, 3, 3, 3)
    identity[0, 0, 1, 1, 1] = 1.0
    x = torch.tensor([[0.2, 0.4, 0.6], [0.0, 0.1, 0.3]]).view(2, 1, 1, 1, 3)
    view = mix_view(x, identity, torch.zeros(1), torch.tensor([0.5]))
    torch.testing.assert_close(view.flatten(1), torch.tensor([[0.0, 0.5, 1.0], [0.0, 1 / 3, 1.0]]))
    # a constant input stays constant (range clamped to 1e-6, no 0/0 NaN)
    flat = mix_view(torch.full((1, 1, 1, 1, 3), 0.5), kernel(1.0), torch.zeros(1), torch.ones(1))
    assert torch.equal(flat, torch.zeros(1, 1, 1, 1, 3))


def test_randconv_draws_kaiming_weights_uniform_bias_and_alpha(monkeypatch):
    # the kernel draw, seen through the mix: weight ~ N(0, 2/fan_in), bias ~ U(±1/√fan_in),
    # α ~ U(0, 1), with fan_in = K³ (K = 3: std √(2/27) = 0.272, |bias| ≤ 0.192)
    draws = []
    monkeypatch.setattr(randconv, "mix_view", lambda x, w, b, a: draws.append((w, b, a)) or x)
    generator = torch.Generator().manual_seed(0)
    for _ in range(400):
        random_convolution(PROFILE, kernel_sizes=(3,), generator=generator)
    weights = torch.cat([w.flatten() for w, _, _ in draws])
    biases = torch.cat([b for _, b, _ in draws])
    alphas = torch.cat([a for _, _, a in draws])
    assert {tuple(w.shape) for w, _, _ in draws} == {(1, 1, 3, 3, 3)}
    assert float(weights.std()) == pytest.approx(math.sqrt(2 / 27), rel=0.03)  # n = 10800
    assert float(weights.mean()) == pytest.approx(0.0, abs=0.01)
    bound = 1 / math.sqrt(27)
    assert float(biases.abs().max()) <= bound and float(biases.abs().max()) > 0.95 * bound
    assert float(biases.min()) < -0.8 * bound and float(biases.max()) > 0.8 * bound
    assert 0 <= float(alphas.min()) < 0.02 and 0.98 < float(alphas.max()) <= 1
    # every kernel size of the list is drawn
    sizes = set()
    for _ in range(60):
        random_convolution(PROFILE, kernel_sizes=(1, 3), generator=generator)
        sizes.add(draws[-1][0].shape[-1])
    assert sizes == {1, 3}


def test_randconv_falls_back_to_the_input_on_nan():
    x = PROFILE.clone()
    view = mix_view(x, kernel(float("nan")), torch.zeros(1), torch.tensor([0.5]))
    assert torch.equal(view, x)


def test_nt_xent_denominator_is_the_positive_plus_the_other_class():
    # a = (2, 0), b = (0, 3), c = (−1, 0) labelled 1; n = (0, −5) labelled 0 (norms differ: cosine).
    # cos: ab 0, ac −1, an 0, bc 0, bn −1, cn 0. τ = 0.5. For a pair (x, p) the loss is
    # −log(e^{2cos(x,p)} / (e^{2cos(x,p)} + e^{2cos(x,n)})) = log(1 + e^{2(cos(x,n) − cos(x,p))}):
    # (a,b) log 2, (a,c) log(1+e²), (b,a) log(1+e⁻²), (b,c) log(1+e⁻²), (c,a) log(1+e²),
    # (c,b) log 2; n has no positive. Mean = (log 2 + log(1+e²) + log(1+e⁻²)) / 3 = 1.2195.
    # Catches: other positives in the denominator (SimCLR/SupCon style: (a,b) → log(2 + e⁻²)),
    # the positive left out of it, τ not applied, no cosine normalisation.
    features = torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [0.0, -5.0]])
    labels = torch.tensor([1, 1, 1, 0])
    expected = (math.log(2) + math.log(1 + math.e**2) + math.log(1 + math.e**-2)) / 3
    loss = labelled_nt_xent(features, labels, temperature=0.5)
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # the default τ = 0.05 scales the same cosines by 20
    default = (math.log(2) + math.log(1 + math.e**20) + math.log(1 + math.e**-20)) / 3
    assert float(labelled_nt_xent(features, labels)) == pytest.approx(default, rel=1e-6)


def test_nt_xent_anchors_of_both_classes_use_the_other_class_as_negatives():
    # a = b = (1, 0) labelled 1; c = (−1, 0), d = (0, 1) labelled 0; τ = 1.
    # (a,b), (b,a): log(e¹ + e⁻¹ + e⁰) − 1 (negatives c, d); (c,d): log(1 + 2e⁻¹) (negatives a,
    # b at cos −1); (d,c): log 3 (all cosines 0). Mean of the four.
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([1, 1, 0, 0])
    ab = math.log(math.e + math.e**-1 + 1) - 1
    expected = (2 * ab + math.log(1 + 2 / math.e) + math.log(3)) / 4
    assert float(labelled_nt_xent(features, labels, temperature=1.0)) == pytest.approx(expected)
    # every anchor alone in its class: no positive pair, the term is skipped
    assert labelled_nt_xent(features[1:3], labels[1:3]) is None


def profile_mask(indices: list[int], length: int = 8) -> torch.Tensor:
    """A (1, 1, 1, 1, length) binary volume with ones at `indices` along the last axis."""
    volume = torch.zeros(1, 1, 1, 1, length)
    volume[..., indices] = 1.0
    return volume


SPACING = (1.0, 1.0, 2.0)


def test_case_metrics_of_an_overlapping_prediction_by_hand():
    # label z = 0..3, prediction z = 2..6: overlap 2; Dice 2·2/(4 + 5) = 4/9, precision 2/5,
    # recall 2/4. Every voxel of a 1-voxel-thick line is on its surface; at 2 mm per step the
    # distances prediction → label are 0, 0, 2, 4, 6 and label → prediction 4, 2, 0, 0.
    # 95th percentiles (linear): 5.6 and 3.7; HD95 = the larger, 5.6 mm.
    metrics = case_metrics(profile_mask([2, 3, 4, 5, 6]), profile_mask([0, 1, 2, 3]), SPACING)
    assert metrics == pytest.approx(
        {"dice": 4 / 9, "hd95": 5.6, "precision": 0.4, "recall": 0.5}, abs=1e-5
    )


def test_case_metrics_of_empty_predictions_and_labels():
    # nothing predicted for a lesion: HD95 = the ROI's diagonal √(1² + 1² + 16²) mm, precision 0
    diagonal = math.sqrt(1 + 1 + 16**2)
    missed = case_metrics(profile_mask([]), profile_mask([0, 1]), SPACING)
    assert missed == pytest.approx({"dice": 0.0, "hd95": diagonal, "precision": 0.0, "recall": 0.0})
    # a lesion predicted where there is none: the same penalty, recall 1 (nothing to find)
    false_alarm = case_metrics(profile_mask([3]), profile_mask([]), SPACING)
    assert false_alarm == pytest.approx(
        {"dice": 0.0, "hd95": diagonal, "precision": 0.0, "recall": 1.0}
    )
    # both empty: a perfect answer (Dice 1, HD95 0), precision 0 by the NaN rule
    empty = case_metrics(profile_mask([]), profile_mask([]), SPACING)
    assert empty == pytest.approx({"dice": 1.0, "hd95": 0.0, "precision": 0.0, "recall": 1.0})


def test_summarize_means_per_domain_and_per_split():
    # domain a: dice .2, .4 → .3; domain b: .9; split val = rows 1, 3: (.2 + .9)/2 = .55,
    # split test = row 2: .4
    rows = [
        {"domain": "a", "split": "val", "dice": 0.2, "hd95": 4.0, "precision": 1.0, "recall": 0.0},
        {"domain": "a", "split": "test", "dice": 0.4, "hd95": 2.0, "precision": 0.5, "recall": 1.0},
        {"domain": "b", "split": "val", "dice": 0.9, "hd95": 1.0, "precision": 0.0, "recall": 0.5},
    ]
    summary = summarize(rows)
    assert summary == pytest.approx(
        {
            "dice.a": 0.3, "hd95.a": 3.0, "precision.a": 0.75, "recall.a": 0.5,
            "dice.b": 0.9, "hd95.b": 1.0, "precision.b": 0.0, "recall.b": 0.5,
            "dice_val": 0.55, "hd95_val": 2.5, "precision_val": 0.5, "recall_val": 0.25,
            "dice_test": 0.4, "hd95_test": 2.0, "precision_test": 0.5, "recall_test": 1.0,
        }
    )  # fmt: skip


def test_contrastive_loss_reads_the_features_at_the_sampled_voxels(monkeypatch):
    # the sampler (random) is replaced by fixed anchors (batch, x, y, z): positives a at
    # (0, 1, 0, 0) and b at (1, 0, 1, 0), negative n at (0, 0, 0, 0); every other voxel is (7, 7).
    # a = (2, 0), b = (0, 3), n = (−1, 0): cos ab 0, an −1, bn 0. At τ = 1:
    # (a, b): log(1 + e^{−1 − 0}); (b, a): log(1 + e^{0 − 0}) = log 2; mean of the two.
    # At the default τ = 0.05: log(1 + e^{−20}) and log 2.
    seen = []

    def anchors(target, stride, n_min, ring_size):
        seen.append((target, stride, n_min, ring_size))
        return [(0, 1, 0, 0), (1, 0, 1, 0)], [(0, 0, 0, 0)]

    monkeypatch.setattr(contrast, "sample_anchors", anchors)
    embeddings = torch.full((2, 2, 2, 2, 2), 7.0)
    embeddings[0, :, 1, 0, 0] = torch.tensor([2.0, 0.0])
    embeddings[1, :, 0, 1, 0] = torch.tensor([0.0, 3.0])
    embeddings[0, :, 0, 0, 0] = torch.tensor([-1.0, 0.0])
    target = torch.zeros(2, 1, 8, 8, 8)
    loss = contrast.contrastive_loss(embeddings, target, 4, 1.0, n_min=3, ring_size=(6, 8))
    assert float(loss) == pytest.approx((math.log(1 + math.exp(-1)) + math.log(2)) / 2, rel=1e-6)
    default = contrast.contrastive_loss(embeddings, target, 4)
    assert float(default) == pytest.approx((math.log(1 + math.exp(-20)) + math.log(2)) / 2)
    assert seen == [(target, 4, 3, (6, 8)), (target, 4, 5, (10, 20))]
    # no anchors: the term is skipped
    monkeypatch.setattr(contrast, "sample_anchors", lambda *args: None)
    assert contrast.contrastive_loss(embeddings, target, 4) is None


def test_contrastive_term_is_weighted_and_gets_the_loss_params(monkeypatch):
    # the feature term enters as weight · L_feat: 0.5 · 0.4 = 0.2, with the stride, τ, n_min and
    # ring size of the params; a skipped term (None) leaves no entry
    calls = []

    def feature_loss(embeddings, target, stride, temperature, n_min, ring_size):
        calls.append((stride, temperature, n_min, ring_size))
        return torch.tensor(0.4)

    monkeypatch.setattr(losses, "contrastive_loss", feature_loss)
    params = SegLossParams(
        **{**ONLY, "contrastive": 0.5}, temperature=0.07, n_min=3, ring_size=(6, 8)
    )
    out = TrainOutput(torch.zeros(1, 1, 1, 1, 2), None, torch.zeros(1, 2, 1, 1, 1))
    terms = DualTaskLoss(params, embed_stride=8)(out, torch.ones(1, 1, 1, 1, 2))[1]
    assert terms["contrastive"] == pytest.approx(0.2)
    assert calls == [(8, 0.07, 3, (6, 8))]
    monkeypatch.setattr(losses, "contrastive_loss", lambda *args: None)
    assert "contrastive" not in DualTaskLoss(params)(out, torch.ones(1, 1, 1, 1, 2))[1]


def test_box_dilation_of_one_voxel_is_the_box():
    # the ring of negatives is a box dilation: one voxel at (2, 2, 2) of a 5³ grid dilated by
    # (3, 5, 1) covers x 1..3, y 0..4, z 2 only: 3 · 5 · 1 = 15 voxels
    mask = torch.zeros(1, 5, 5, 5, dtype=torch.bool)
    mask[0, 2, 2, 2] = True
    expected = torch.zeros_like(mask)
    expected[0, 1:4, 0:5, 2] = True
    assert torch.equal(contrast._box_dilate(mask, (3, 5, 1)), expected)


def test_sampler_ring_is_the_box_around_the_lesion_and_falls_back_to_one_voxel():
    # one lesion voxel at (4, 4, 4) of a 9³ crop, stride 1, ring size fixed at 5: the ring is the
    # 5 × 5 × 3 box around it (k = 5, kz = k − 3 = 2 → odd 3) less the voxel. Every slice has fewer
    # than n_min = 5 lesion voxels, so the sampler falls back to n = 1: the one positive is the
    # voxel itself, and each of the 3 ring slices z = 3, 4, 5 gives one negative inside the box.
    torch.manual_seed(0)
    target = torch.zeros(1, 1, 9, 9, 9)
    target[0, 0, 4, 4, 4] = 1.0
    positives, negatives = sample_anchors(target, stride=1, n_min=5, ring_size=(5, 5))
    assert positives == [(0, 4, 4, 4)]
    assert sorted(z for *_, z in negatives) == [3, 4, 5]
    assert all(abs(x - 4) <= 2 and abs(y - 4) <= 2 for _, x, y, _ in negatives)
    assert (0, 4, 4, 4) not in negatives


def test_case_metrics_of_one_voxel_predictions_and_labels():
    # a one-voxel prediction inside a two-voxel label: precision 1, recall 1/2, Dice 2/3
    inside = case_metrics(profile_mask([2]), profile_mask([2, 3]), SPACING)
    assert (inside["precision"], inside["recall"], inside["dice"]) == pytest.approx((1, 0.5, 2 / 3))
    # a one-voxel label missed by a one-voxel prediction next to it: recall 0, HD95 one step (2 mm)
    beside = case_metrics(profile_mask([3]), profile_mask([2]), SPACING)
    assert (beside["recall"], beside["precision"], beside["hd95"]) == pytest.approx((0, 0, 2.0))


def test_seg_term_is_per_sample_dice_plus_bce():
    # sample 0: y = (1, 1), logits (50, 0) → p = (1, 0.5): Dice 2·1.5/(1.5 + 2) = 6/7, loss 1/7;
    # sample 1: y = (0, 0), logits −50: an empty target predicted empty costs 0. Dice per sample,
    # then the mean: 1/14 (over the batch it would be 1/7). BCE: log 2 on the one p = 0.5 voxel,
    # ≈ 0 elsewhere, mean over the 4 voxels: log 2 / 4. L = 1/14 + log 2 / 4 = 0.2447.
    logits = torch.tensor([[50.0, 0.0], [-50.0, -50.0]]).view(2, 1, 1, 1, 2)
    target = torch.tensor([[1.0, 1.0], [0.0, 0.0]]).view(2, 1, 1, 1, 2)
    terms = terms_of(SegLossParams(**ONLY), TrainOutput(logits, None, None), target)
    assert terms["seg"] == pytest.approx(1 / 14 + math.log(2) / 4, abs=1e-5)


def test_reciprocal_term_uses_the_params_mode_and_k():
    # dtc_smooth with k = 100 on ŝ = (−0.01, 0.01): mask (σ(1), σ(−1)) = (s, 1 − s), s = 0.731059,
    # against y = (1, 0): Dice 2s / ((s + 1 − s) + 1) = s, L_rec = 1 − s = 0.268941 (the faithful
    # step gives mask (1, 0) and k = 1500 nearly so: L ≈ 0)
    predicted = torch.tensor([-0.01, 0.01]).view(1, 1, 1, 1, 2)
    target = torch.tensor([1.0, 0.0]).view(1, 1, 1, 1, 2)
    params = SegLossParams(**{**ONLY, "reciprocal": 1.0}, rec_mode="dtc_smooth", rec_k=100.0)
    terms = terms_of(params, TrainOutput(torch.zeros_like(target), predicted, None), target)
    assert terms["reciprocal"] == pytest.approx(1 - 1 / (1 + math.exp(-1)), abs=1e-5)


def test_randconv_view_is_reproducible_from_its_generator():
    x = torch.rand(1, 1, 4, 4, 4)
    first = random_convolution(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, random_convolution(x, generator=torch.Generator().manual_seed(3)))


def test_sdf_reads_an_integer_mask_as_inside_or_outside_and_skips_in_float32():
    # the profile of test_sdf_normalises_inside_and_outside_separately as integers 0/2 (~2 on an
    # int array is -3, not "outside"): the same φ. An empty, a full and an all-boundary mask give
    # float32 zeros, like a real target.
    sdf = signed_distance(np.array([0, 0, 2, 2, 2, 2, 2, 0])[None, None])
    expected = [1.0, 0.5, 0.0, -2 / 3, -1.0, -2 / 3, 0.0, 0.5]
    np.testing.assert_allclose(sdf[0, 0], expected, rtol=0, atol=1e-7)
    for skipped in (line([0, 0, 0]), line([1, 1, 1]), line([0, 1, 1, 0])):
        assert signed_distance(skipped).dtype == np.float32


def test_randconv_clamps_below_zero_before_normalising():
    # a 1-voxel kernel of -1, bias 0.5, alpha 1 on x = 0, 0.5, 1: conv = 0.5, 0, -0.5; clamped to
    # [0, 1]: 0.5, 0, 0; min-max: 1, 0, 0 (without the lower clamp: 1, 0.5, 0)
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 3, 1, 1)
    view = mix_view(x, -torch.ones(1, 1, 1, 1, 1), torch.tensor([0.5]), torch.tensor([1.0]))
    assert view.flatten().tolist() == [1.0, 0.0, 0.0]


def test_consistency_pairs_the_halves_of_a_batch_of_six():
    # three samples: logits 0, 0, 0 | ln 3, ln 3, ln 3 → p .5 | .75: each pair differs by .25,
    # L = 2 · .0625 = 0.125 (split into three chunks the batch would not pair at all)
    logits = torch.tensor([0.0] * 3 + [math.log(3)] * 3).view(6, 1, 1, 1, 1)
    params = SegLossParams(**{**ONLY, "consistency": 2.0})
    terms = terms_of(params, TrainOutput(logits, None, None), torch.ones_like(logits))
    assert terms["consistency"] == pytest.approx(0.125, abs=1e-6)


@pytest.mark.parametrize("along_x", [True, False])
def test_sampler_default_n_min_is_five_lesion_voxels_per_axial_slice(along_x):
    # a 9³ crop, stride 1: a row of 5 lesion voxels (2..6 at 4, along x or along y) in slice
    # z = 2 and a row of 4 (2..5) in slice z = 6. With the default n_min = 5 only slice 2 gives a
    # positive; n_min 4 or 6 (falling back to 4) would take both. Counts are per axial slice, over
    # x and y: counted over x and z (or y and z), a row along y (or x) would give no positive.
    torch.manual_seed(0)
    target = torch.zeros(1, 1, 9, 9, 9)
    for z, length in ((2, 5), (6, 4)):
        row = slice(2, 2 + length)
        target[(0, 0, row, 4, z) if along_x else (0, 0, 4, row, z)] = 1.0
    positives, negatives = sample_anchors(target, stride=1, ring_size=(5, 5))
    assert [(b, z) for b, *_, z in positives] == [(0, 2)]
    assert negatives


def test_reciprocal_dice_is_per_sample_with_equal_smoothing():
    dice = DualTaskLoss(SegLossParams()).dice
    # empty mask and empty target: 1 - (0 + EPS) / (0 + EPS) = 0 only when both smoothings match
    empty = torch.zeros(1, 1, 2, 2, 2)
    assert float(dice(empty, empty)) == pytest.approx(0.0, abs=1e-6)
    # two samples, 8 voxels each, mask all ones. A: target all ones -> loss 0. B: target one voxel,
    # I = 1, |mask| + |target| = 9 -> 1 - 2/9 = 0.7778. Per sample then the mean: 0.3889
    # (pooled over the batch it would be 1 - 2 * 9 / 25 = 0.28)
    mask = torch.ones(2, 1, 2, 2, 2)
    target = torch.ones(2, 1, 2, 2, 2)
    target[1] = 0
    target[1, 0, 0, 0, 0] = 1
    assert float(dice(mask, target)) == pytest.approx((0.0 + 7 / 9) / 2, abs=1e-5)


def one_voxel_lesion() -> torch.Tensor:
    target = torch.zeros(1, 1, 9, 9, 9)
    target[0, 0, 4, 4, 4] = 1
    return target


def test_a_small_ring_stays_in_the_lesions_axial_slice():
    # ring_size (3, 3): k = 3, kz = max(3 - 3, 1) | 1 = 1, so the ring is the 3 x 3 x 1 box around
    # the voxel minus the voxel: 8 voxels, all in slice z = 4 (kz = 3 would add slices 3 and 5)
    torch.manual_seed(0)
    positives, negatives = sample_anchors(one_voxel_lesion(), 1, n_min=1, ring_size=(3, 3))
    assert positives == [(0, 4, 4, 4)]
    assert {z for _, _, _, z in negatives} == {4}


def test_ring_size_bounds_are_inclusive():
    # k = randint(low, high + 1) | 1. (1, 1): k = 1, no ring, no negatives, None every time;
    # (3, 3): k = 3 every time; (1, 3): k in {1, 2, 3} | 1 = {1, 3, 3}, both outcomes occur
    def outcomes(ring_size):
        found = set()
        for seed in range(30):
            torch.manual_seed(seed)
            found.add(sample_anchors(one_voxel_lesion(), 1, 1, ring_size) is None)
        return found

    assert outcomes((1, 1)) == {True}
    assert outcomes((3, 3)) == {False}
    assert outcomes((1, 3)) == {True, False}


def test_ring_counts_are_per_axial_slice_of_a_non_cubic_crop():
    # a 9 x 9 x 3 crop (3 axial slices), lesion voxel at z = 1: the 3 x 3 ring lies in slice 1.
    # Counting ring voxels per row y (summing x and z) instead of per slice z would take rows
    # 3-5 for slices, out of this crop's range.
    target = torch.zeros(1, 1, 9, 9, 3)
    target[0, 0, 4, 4, 1] = 1
    torch.manual_seed(0)
    positives, negatives = sample_anchors(target, 1, n_min=1, ring_size=(3, 3))
    assert positives == [(0, 4, 4, 1)]
    assert {z for _, _, _, z in negatives} == {1}
