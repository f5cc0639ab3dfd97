"""The spec's synthetic teachers: a known truth, and teachers that each make large errors on their
own samples.

    x ~ N(0, I_dim),  f*(x) = w.x + 0.5 sin(u.x),  y ~ Bernoulli(sigmoid(f*(x)))
    t_k(x) = f*(x) + e_k(x)

Regime `heavy` (the spec's H): with probability `heavy_share` per (teacher, sample) e is
+-U(heavy_range) (random sign), else N(0, small_std^2). These errors are independent of x and of
mean zero, so a student regressing on the teachers' mean still learns f* (the noise averages out
over samples). Regime `regional` (ours): each teacher is badly wrong on its own region of the
input space, the half-space v_k.x > z of mass `heavy_share`, with an error of one sign per
teacher (s_k U(heavy_range)) there and N(0, small_std^2) elsewhere: the mean is biased wherever a
teacher is wrong, in every sample of that region, and a vote is not while a majority is right.
That is how real teachers err (the same input fools them every time). Regime `gaussian` (the
control G): e ~ N(0, gaussian_std^2), where the mean is the better estimate. `truth` (f*) is kept
for the oracle student and the checks; training never reads it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from components.govern.params import GovernDataParams
from components.govern.samples import Split


@dataclass(frozen=True)
class Regions:
    """Each teacher's region of large errors (regime `regional`): v_k.x > threshold, sign s_k."""

    directions: np.ndarray  # (K, dim), unit rows
    threshold: float
    signs: np.ndarray  # (K,)


def make_regions(params: GovernDataParams, rng: np.random.Generator) -> Regions:
    directions = rng.normal(size=(params.teachers, params.dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    threshold = float(norm.ppf(1 - params.heavy_share)) if params.heavy_share > 0 else np.inf
    return Regions(directions, threshold, rng.choice([-1.0, 1.0], params.teachers))


def teacher_errors(
    params: GovernDataParams, x: np.ndarray, regions: Regions, rng: np.random.Generator
) -> np.ndarray:
    shape = (len(x), params.teachers)
    if params.regime == "gaussian":
        return rng.normal(0.0, params.gaussian_std, shape)
    small = rng.normal(0.0, params.small_std, shape)
    magnitude = rng.uniform(*params.heavy_range, shape)
    if params.regime == "heavy":
        large = magnitude * rng.choice([-1.0, 1.0], shape)
        return np.where(rng.random(shape) < params.heavy_share, large, small)
    inside = x @ regions.directions.T > regions.threshold
    return np.where(inside, magnitude * regions.signs, small)


def make_world(params: GovernDataParams) -> dict[str, Split]:
    """Every split of `params.sizes`, drawn from one truth (seeded by `params.seed`)."""
    rng = np.random.default_rng(params.seed)
    w = rng.normal(size=params.dim)
    w *= params.signal_scale / np.linalg.norm(w)
    u = rng.normal(size=params.dim) / np.sqrt(params.dim)
    regions = make_regions(params, rng)
    splits = {}
    for name, n in params.sizes.items():
        x = rng.normal(size=(n, params.dim))
        truth = x @ w + 0.5 * np.sin(x @ u)
        labels = (rng.random(n) < 1 / (1 + np.exp(-truth))).astype(np.int64)
        teachers = truth[:, None] + teacher_errors(params, x, regions, rng)
        splits[name] = Split(x.astype(np.float32), teachers.astype(np.float32), labels, truth)
    return splits
