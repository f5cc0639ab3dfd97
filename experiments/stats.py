"""Confidence intervals and the verdicts every results page draws from them, defined once.

- Over seeds: the t interval of the mean, `mean ± t(1 - α/2, n - 1) · s / √n`, with s the sample
  std of `experiments.report` (ddof = 1); a paired comparison is the t interval of the per-seed
  differences.
- A proportion of n items: the Wilson score interval.
- An AUROC on n₊ positives and n₋ negatives: the Hanley-McNeil (1982) standard error,
  `SE² = (A(1-A) + (n₊-1)(Q₁-A²) + (n₋-1)(Q₂-A²)) / (n₊ n₋)`, `Q₁ = A/(2-A)`, `Q₂ = 2A²/(1+A)`,
  and `A ± z · SE` clipped to [0, 1].
- A claim "x ≥ threshold" is *supported* when the whole CI is above the threshold, *contradicted*
  when it is all below, and *not shown* otherwise.
- "No difference" is *equivalent* only by two one-sided tests (TOST): the (1 - 2α) CI of the
  difference lies inside ±margin, a margin stated before looking. A CI that merely contains 0 is
  *not shown*, and one that excludes 0 is *different*.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy import stats

from experiments.report import mean_std

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    def __str__(self) -> str:
        return self.format()

    def format(self, digits: int = 2, scale: float = 1.0) -> str:
        """`estimate [low, high]` (e.g. `0.75 [0.61, 0.89]`); `n/a` when undefined."""
        if math.isnan(self.estimate):
            return "n/a"
        if math.isnan(self.low):
            return f"{self.estimate * scale:.{digits}f} [n/a]"
        return (
            f"{self.estimate * scale:.{digits}f} "
            f"[{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"
        )


def mean_ci(values: Iterable[float | None], level: float = LEVEL) -> Interval:
    """The t interval of the mean of the finite values (bounds nan for fewer than two)."""
    clean = [float(v) for v in values if v is not None and math.isfinite(v)]
    return summary_ci(*mean_std(clean), len(clean), level)


def summary_ci(mean: float, std: float | None, n: int, level: float = LEVEL) -> Interval:
    """The t interval of a mean stored as (mean, sample std, n) in a results JSON whose
    per-seed values were not kept (bounds nan for fewer than two)."""
    if n < 2 or std is None or math.isnan(std):
        return Interval(mean, math.nan, math.nan)
    half = stats.t.ppf(1 - (1 - level) / 2, n - 1) * std / math.sqrt(n)
    return Interval(mean, mean - half, mean + half)


def paired_difference_ci(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """The t interval of the mean of per-seed differences a - b (same seeds, same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need the same seeds: {len(a)} != {len(b)}")
    return mean_ci([x - y for x, y in zip(a, b, strict=True)], level)


def wilson_ci(successes: int, n: int, level: float = LEVEL) -> Interval:
    """The Wilson score interval of a proportion successes / n."""
    if n == 0:
        return Interval(math.nan, math.nan, math.nan)
    z = stats.norm.ppf(1 - (1 - level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, centre - half, centre + half)


def auroc_ci(auroc: float, n_positive: int, n_negative: int, level: float = LEVEL) -> Interval:
    """Hanley-McNeil interval of an AUROC measured on n_positive and n_negative items."""
    if n_positive == 0 or n_negative == 0 or math.isnan(auroc):
        return Interval(auroc, math.nan, math.nan)
    a = auroc
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    variance = (a * (1 - a) + (n_positive - 1) * (q1 - a * a) + (n_negative - 1) * (q2 - a * a)) / (
        n_positive * n_negative
    )
    half = stats.norm.ppf(1 - (1 - level) / 2) * math.sqrt(max(variance, 0.0))
    return Interval(a, max(0.0, a - half), min(1.0, a + half))


def threshold_verdict(interval: Interval, threshold: float, greater: bool = True) -> str:
    """`supported` / `contradicted` / `not shown` for the claim "estimate ≥ threshold" (or ≤
    when `greater` is False), read off the whole interval."""
    if math.isnan(interval.low):
        return "not shown"
    low, high = (interval.low, interval.high) if greater else (-interval.high, -interval.low)
    bound = threshold if greater else -threshold
    if low > bound:
        return "supported"
    if high < bound:
        return "contradicted"
    return "not shown"


def equivalence_verdict(differences: Sequence[float], margin: float, alpha: float = 0.05) -> str:
    """TOST on paired differences: `equivalent` when the (1 - 2α) t interval lies inside
    ±margin, `different` when the (1 - α) interval excludes 0, else `not shown`."""
    tost = mean_ci(differences, level=1 - 2 * alpha)
    if math.isnan(tost.low):
        return "not shown"
    if -margin < tost.low and tost.high < margin:
        return "equivalent"
    two_sided = mean_ci(differences, level=1 - alpha)
    if two_sided.low > 0 or two_sided.high < 0:
        return "different"
    return "not shown"
