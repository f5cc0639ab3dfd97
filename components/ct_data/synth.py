"""A deterministic synthetic multi-site abdominal CT benchmark in the Medical Segmentation Decathlon
layout (labels 0 background, 1 pancreas, 2 lesion).

Each case is a phantom (body, fat, soft-tissue loops, liver- and kidney-like distractors with
pancreas-like intensity, a curved pancreas with an optional duct, one lesion) rendered by one of
three "scanners" that differ in contrast, noise, blur, bias field, slice thickness and in the
lesion type their population shows. Anatomy is drawn per case; the domain shift is in the
rendering and the lesion type."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from components.common.io import atomic_path
from components.common.nifti import save_nifti

# the HU window the scanner effects act in (-100..240 maps to [0, 1]); the same as the default of
# seg_train.hu_window, so the simulated contrast and noise land inside what the network sees
HU_LOW, HU_HIGH = -100.0, 240.0
LABELS = {"0": "background", "1": "pancreas", "2": "cancer"}
# tissue codes of the phantom before rendering
AIR, FAT, SOFT, LIVER, KIDNEY, PANCREAS, DUCT, LESION, RIM = range(9)


@dataclass(frozen=True)
class Scanner:
    """How one site renders a phantom: tissue HU, noise σ (HU), blur σ (in-plane voxels), gamma on
    the windowed intensity, multiplicative bias-field amplitude, slice-thickness factor, and the
    lesion type of its population (H hypodense, I irregular blobs, C dark core + bright rim)."""

    fat: float
    soft: float
    pancreas: float
    lesion: float
    noise: float
    blur: float
    lesion_type: str
    rim: float | None = None
    gamma: float = 1.0
    bias: float = 0.0
    z_factor: int = 1


SCANNERS: dict[str, Scanner] = {
    "A": Scanner(fat=-100, soft=40, pancreas=110, lesion=50, noise=10, blur=0.5, lesion_type="H"),
    "B": Scanner(
        fat=-90, soft=50, pancreas=80, lesion=55, noise=25, blur=1.0, lesion_type="I", gamma=1.3
    ),
    "C": Scanner(
        fat=-110,
        soft=30,
        pancreas=95,
        lesion=20,
        rim=150,
        noise=15,
        blur=0.7,
        lesion_type="C",
        bias=0.15,
        z_factor=2,
    ),
}


def _ball(coords: tuple[np.ndarray, ...], centre: np.ndarray, radii: np.ndarray) -> np.ndarray:
    return sum(((c - m) / r) ** 2 for c, m, r in zip(coords, centre, radii, strict=True)) <= 1.0


def phantom(
    shape: tuple[int, int, int], spacing: tuple[float, float, float], lesion_type: str, rng
) -> np.ndarray:
    """A tissue-code volume (x, y, z) with one pancreas and one lesion of `lesion_type`."""
    size = np.array(shape) * np.array(spacing)
    coords = np.meshgrid(
        *(np.arange(n) * s for n, s in zip(shape, spacing, strict=True)), indexing="ij"
    )
    tissue = np.full(shape, AIR, dtype=np.uint8)
    body = _body(tissue, coords, size, rng)
    curve = _pancreas_curve(size, rng)
    pancreas = np.zeros(shape, bool)
    for point, radius in zip(curve, _pancreas_radii(len(curve), rng), strict=True):
        pancreas |= _ball(coords, point, np.full(3, radius))
    near_pancreas = ndimage.binary_dilation(pancreas, iterations=2)
    _organs(tissue, coords, curve, body, pancreas, near_pancreas, rng)
    lesion = _lesion(coords, curve, near_pancreas, lesion_type, rng)
    tissue[lesion] = LESION
    if lesion_type == "C":
        tissue[lesion & ~ndimage.binary_erosion(lesion)] = RIM
    return tissue


def _body(tissue: np.ndarray, coords: list, size: np.ndarray, rng) -> np.ndarray:
    """Fat inside an elliptic body cross-section, with bowel-like soft-tissue loops."""
    centre = size / 2
    body = ((coords[0] - centre[0]) / (0.46 * size[0])) ** 2 + (
        (coords[1] - centre[1]) / (0.38 * size[1])
    ) ** 2 <= 1
    tissue[body] = FAT
    for _ in range(rng.integers(3, 6)):
        blob = centre + rng.uniform(-0.3, 0.3, 3) * size * (1, 1, 0.8)
        tissue[_ball(coords, blob, rng.uniform(3, 7, 3)) & body] = SOFT
    return body


def _pancreas_curve(size: np.ndarray, rng) -> np.ndarray:
    """Points along a quadratic Bezier curve from the head (low x) to the tail."""
    centre = size / 2
    head = centre + np.array([-0.28, 0.06, -0.05]) * size + rng.normal(0, 1.5, 3)
    tail = centre + np.array([0.28, -0.08, 0.05]) * size + rng.normal(0, 1.5, 3)
    bend = (head + tail) / 2 + np.array([0, rng.uniform(-0.15, 0.15) * size[1], 0])
    t = np.linspace(0, 1, int(rng.integers(12, 21)))[:, None]
    return (1 - t) ** 2 * head + 2 * (1 - t) * t * bend + t**2 * tail


def _pancreas_radii(n_samples: int, rng) -> np.ndarray:
    """Tube radius along the curve: the head thicker than the tail."""
    return np.linspace(rng.uniform(4, 5), rng.uniform(3, 4), n_samples)


def _organs(
    tissue: np.ndarray,
    coords: list,
    curve: np.ndarray,
    body: np.ndarray,
    pancreas: np.ndarray,
    near_pancreas: np.ndarray,
    rng,
) -> None:
    """Liver- and kidney-like distractors with pancreas-like intensity (kept off the pancreas),
    the pancreas, and in half the cases a darker main duct (a hard negative for lesions)."""
    liver = _ball(coords, curve[0] + np.array([-6, 10, 0]), np.array([12, 10, 16]))
    kidney = _ball(coords, curve[-1] + np.array([2, 12, -2]), np.array([5, 6, 9]))
    tissue[liver & body & ~near_pancreas] = LIVER
    tissue[kidney & body & ~near_pancreas] = KIDNEY
    tissue[pancreas] = PANCREAS
    if rng.random() < 0.5:
        duct = np.zeros(tissue.shape, bool)
        for point in curve[1:-1]:
            duct |= _ball(coords, point, np.array([1.2, 1.2, 1.2]))
        tissue[duct & pancreas] = DUCT


def _lesion(
    coords: list, curve: np.ndarray, near_pancreas: np.ndarray, lesion_type: str, rng
) -> np.ndarray:
    """A lesion on the centreline that may protrude up to 2 voxels beyond the pancreas: drawn
    again (up to 20 times) until it has at least 20 voxels."""
    n_samples = len(curve)
    for _ in range(20):
        middle = curve[int(rng.integers(n_samples // 4, 3 * n_samples // 4 + 1))]
        radius = rng.uniform(4, 8)
        if lesion_type == "H":
            lesion = _ball(coords, middle, radius * rng.uniform(0.8, 1.2, 3))
        elif lesion_type == "I":
            lesion = np.zeros(near_pancreas.shape, bool)
            for _ in range(rng.integers(2, 4)):
                offset = rng.uniform(-0.5, 0.5, 3) * radius
                lesion |= _ball(coords, middle + offset, np.full(3, radius * rng.uniform(0.4, 0.7)))
            lesion &= _ball(coords, middle, np.full(3, radius))
        else:
            lesion = _ball(coords, middle, np.full(3, radius * rng.uniform(0.8, 1.0)))
        lesion &= near_pancreas
        if lesion.sum() >= 20:
            break
    return lesion


def labels_of(tissue: np.ndarray) -> np.ndarray:
    label = np.zeros(tissue.shape, np.uint8)
    label[(tissue == PANCREAS) | (tissue == DUCT)] = 1
    label[(tissue == LESION) | (tissue == RIM)] = 2
    return label


def _bias_field(shape: tuple[int, ...], rng) -> np.ndarray:
    """A smooth field in [-1, 1]: a 3×3×3 random grid, cubic-upsampled."""
    coarse = rng.uniform(-1, 1, (3, 3, 3))
    field = ndimage.zoom(coarse, [n / 3 for n in shape], order=3)[tuple(slice(n) for n in shape)]
    return field / max(np.abs(field).max(), 1e-6)


def render(
    tissue: np.ndarray, scanner: Scanner, spacing: tuple[float, float, float], rng
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """(HU int16 image, label, spacing) of a phantom as `scanner` acquires it."""
    hu_of = {
        AIR: -1000.0,
        FAT: scanner.fat,
        SOFT: scanner.soft,
        LIVER: scanner.pancreas - 15,
        KIDNEY: scanner.pancreas + 20,
        PANCREAS: scanner.pancreas,
        DUCT: scanner.soft,
        LESION: scanner.lesion,
        RIM: scanner.rim if scanner.rim is not None else scanner.lesion,
    }
    # patient variability: each tissue a little brighter or darker in each case
    table = np.array([hu_of[code] + (rng.normal(0, 5) if code else 0) for code in range(9)])
    # the scanner's effects act on the windowed intensity t (0..1 inside the HU window)
    t = (table[tissue] - HU_LOW) / (HU_HIGH - HU_LOW)
    t = ndimage.gaussian_filter(t, sigma=[scanner.blur * spacing[0] / s for s in spacing])
    if scanner.bias:
        t = t * (1 + scanner.bias * _bias_field(t.shape, rng))
    if scanner.gamma != 1.0:
        inside = (t > 0) & (t < 1)
        t[inside] = t[inside] ** scanner.gamma
    label = labels_of(tissue)
    if scanner.z_factor > 1:  # thick slices: average neighbours; a voxel is lesion if any part is
        k = scanner.z_factor
        depth = t.shape[2] // k * k
        t = t[..., :depth].reshape(*t.shape[:2], -1, k).mean(-1)
        label = label[..., :depth].reshape(*label.shape[:2], -1, k).max(-1)
        spacing = (spacing[0], spacing[1], spacing[2] * k)
    t = t + rng.normal(0, scanner.noise / (HU_HIGH - HU_LOW), t.shape)
    hu = np.clip(np.round(t * (HU_HIGH - HU_LOW) + HU_LOW), -1024, 3071).astype(np.int16)
    return hu, label, spacing


def make_case(
    domain: str,
    index: int,
    seed: int,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """Case `index` of `domain`: the same arguments always give the same volume."""
    scanner = SCANNERS[domain]
    rng = np.random.default_rng([seed, ord(domain), index])
    tissue = phantom(shape, spacing, scanner.lesion_type, rng)
    return render(tissue, scanner, spacing, rng)


def write_domain(
    root: Path,
    domain: str,
    n_cases: int,
    seed: int,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
) -> Path:
    """`root`/imagesTr, labelsTr and dataset.json of one synthetic site, written atomically."""
    with atomic_path(root) as tmp:
        training = []
        for index in range(n_cases):
            image, label, case_spacing = make_case(domain, index, seed, shape, spacing)
            affine = np.diag([*case_spacing, 1.0])
            name = f"{domain}_{index:03d}.nii.gz"
            save_nifti(tmp / "imagesTr" / name, image, affine)
            save_nifti(tmp / "labelsTr" / name, label, affine)
            training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        scanner = SCANNERS[domain]
        dataset = {
            "name": f"SyntheticPancreas-{domain}",
            "description": f"synthetic scanner {domain}: {scanner}",
            "tensorImageSize": "3D",
            "modality": {"0": "CT"},
            "labels": LABELS,
            "numTraining": n_cases,
            "numTest": 0,
            "training": training,
            "test": [],
        }
        (tmp / "dataset.json").write_text(json.dumps(dataset, indent=2) + "\n", encoding="utf-8")
    return root
