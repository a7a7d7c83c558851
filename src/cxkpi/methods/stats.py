"""Sampling error and significance tests for CX rates and means: NPS, top-box shares,
conversion, average scores and ratios of sums.

Pure functions on counts, standard library only: normal quantiles come from
:class:`statistics.NormalDist`, two-sided tail probabilities
``2 * (1 - Phi(|z|)) = erfc(|z| / sqrt(2))`` from :func:`math.erfc`. All intervals and tests
use the normal approximation, which is sound for the sample sizes at which a KPI is
reported at all (see ``min_sample``).

Conventions
-----------
* NPS is in **points**, -100..100; its variance is of the per-respondent score in
  **proportion units** (a promoter scores +1, a passive 0, a detractor -1).
* An **empty sample** (n = 0) has no estimate: every function that would divide by n
  returns ``math.nan`` (a pair of NaNs for intervals and tests) instead of raising, so a
  report over many slices can carry the gap; :func:`is_significant_change` treats NaN (and
  ``None``) as "not significant". Negative counts, ``successes > n`` and a confidence outside
  (0, 1) raise :class:`ValueError`.
* A test whose standard error is zero (both samples without any variation) returns
  ``(0.0, 1.0)`` when the two estimates are equal and ``(±inf, 0.0)`` when they differ: the
  limits of the statistic as the variance goes to zero.

References
----------
* Reichheld, F. F. (2003). The one number you need to grow. *Harvard Business Review*
  81(12), 46-54 (NPS = % promoters 9-10 minus % detractors 0-6).
* Rocks, B. (2016). Interval estimation for the "Net Promoter Score". *The American
  Statistician* 70(4), 365-372 (variance of the NPS as a difference of two multinomial
  proportions; Wald interval).
* Wilson, E. B. (1927). Probable inference, the law of succession, and statistical
  inference. *JASA* 22(158), 209-212; Agresti, A. & Coull, B. A. (1998). Approximate is
  better than "exact" for interval estimation of binomial proportions. *The American
  Statistician* 52(2), 119-126.
* Agresti, A. (2013). *Categorical Data Analysis*, 3rd ed., Wiley, sec. 3.1 and 3.2
  (two-sample test of proportions with the pooled standard error).
* Cochran, W. G. (1977). *Sampling Techniques*, 3rd ed., Wiley, sec. 2.4 (standard error of
  a mean) and sec. 6.3-6.4 (variance of the ratio estimate R = sum y / sum x, Taylor
  linearisation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist, stdev
from typing import Final

__all__ = [
    "NpsCounts",
    "difference_z_test",
    "is_significant_change",
    "mean_standard_error",
    "normal_confidence_interval",
    "nps_confidence_interval",
    "nps_difference_test",
    "nps_from_counts",
    "nps_standard_error",
    "nps_variance",
    "proportion_confidence_interval",
    "proportion_standard_error",
    "ratio_standard_error",
    "two_proportion_z_test",
]

NpsCounts = tuple[int, int, int]
"""(promoters, passives, detractors) of one sample."""

_STANDARD_NORMAL: Final = NormalDist()
_NAN_PAIR: Final = (math.nan, math.nan)


def _check_counts(*counts: int) -> None:
    for count in counts:
        if count < 0:
            raise ValueError(f"counts must be non-negative, got {count}")


def _z_critical(confidence: float) -> float:
    """Two-sided critical value z_{1-alpha/2} for ``confidence`` = 1 - alpha."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    return _STANDARD_NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _two_sided_test(difference: float, standard_error: float) -> tuple[float, float]:
    """(z, p) for ``difference / standard_error`` against N(0, 1), two-sided.

    p = 2 * (1 - Phi(|z|)) = erfc(|z| / sqrt(2)), computed with erfc so that the p-values of
    large |z| do not cancel to 0; a zero standard error gives the limits described in the
    module docstring.
    """
    if standard_error == 0.0:
        if difference == 0.0:
            return 0.0, 1.0
        return math.copysign(math.inf, difference), 0.0
    z = difference / standard_error
    p_value = math.erfc(abs(z) / math.sqrt(2.0))
    return z, p_value


# --- NPS ----------------------------------------------------------------------------------


def nps_from_counts(promoters: int, passives: int, detractors: int) -> float:
    """Net Promoter Score in points: ``100 * (promoters - detractors) / n``.

    n = promoters + passives + detractors; returns NaN when n = 0.
    """
    _check_counts(promoters, passives, detractors)
    n = promoters + passives + detractors
    if n == 0:
        return math.nan
    return 100.0 * (promoters - detractors) / n


def nps_variance(promoters: int, passives: int, detractors: int) -> float:
    """Variance of the per-respondent NPS score (+1 / 0 / -1), in proportion units.

    With p_p = promoters / n and p_d = detractors / n, the score S has E[S] = p_p - p_d and
    E[S^2] = p_p + p_d, so ``Var(S) = p_p + p_d - (p_p - p_d)^2`` (the maximum-likelihood,
    divide-by-n variance; Rocks 2016). Returns NaN when n = 0.
    """
    _check_counts(promoters, passives, detractors)
    n = promoters + passives + detractors
    if n == 0:
        return math.nan
    p_p, p_d = promoters / n, detractors / n
    return p_p + p_d - (p_p - p_d) ** 2


def nps_standard_error(promoters: int, passives: int, detractors: int) -> float:
    """Standard error of the NPS in points: ``100 * sqrt(Var(S) / n)``; NaN when n = 0."""
    n = promoters + passives + detractors
    variance = nps_variance(promoters, passives, detractors)
    if n == 0:
        return math.nan
    return 100.0 * math.sqrt(variance / n)


def nps_confidence_interval(
    promoters: int, passives: int, detractors: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Normal-approximation (Wald) interval of the NPS in points.

    ``NPS ± z_{1-alpha/2} * SE``, clipped to the scale's limits [-100, 100]. With all answers
    in one category the standard error is 0 and the interval collapses to the point; use the
    interval only above the KPI's minimum sample. Returns (NaN, NaN) when n = 0.
    """
    _z_critical(confidence)  # an invalid confidence raises even for an empty sample
    nps = nps_from_counts(promoters, passives, detractors)
    if math.isnan(nps):
        return _NAN_PAIR
    standard_error = nps_standard_error(promoters, passives, detractors)
    low, high = normal_confidence_interval(nps, standard_error, confidence)
    return max(-100.0, low), min(100.0, high)


def nps_difference_test(counts_a: NpsCounts, counts_b: NpsCounts) -> tuple[float, float]:
    """Two-sided z test of NPS_a = NPS_b for two independent samples.

    In proportion units, ``z = (nps_a - nps_b) / sqrt(Var_a / n_a + Var_b / n_b)`` with the
    unpooled variances of :func:`nps_variance`; ``p = 2 * Phi(-|z|)``. A positive z means
    sample a scores higher. Returns (NaN, NaN) when either sample is empty.
    """
    n_a, n_b = sum(counts_a), sum(counts_b)
    nps_a, nps_b = nps_from_counts(*counts_a), nps_from_counts(*counts_b)
    if n_a == 0 or n_b == 0:
        return _NAN_PAIR
    standard_error = math.sqrt(nps_variance(*counts_a) / n_a + nps_variance(*counts_b) / n_b)
    return _two_sided_test((nps_a - nps_b) / 100.0, standard_error)


# --- proportions --------------------------------------------------------------------------


def proportion_standard_error(successes: int, n: int) -> float:
    """Standard error of a proportion p = successes / n: ``sqrt(p (1 - p) / n)``.

    The maximum-likelihood (Wald) error, in proportion units; NaN when n = 0.
    """
    _check_counts(successes, n)
    if successes > n:
        raise ValueError(f"successes ({successes}) exceed n ({n})")
    if n == 0:
        return math.nan
    p = successes / n
    return math.sqrt(p * (1.0 - p) / n)


def proportion_confidence_interval(
    successes: int, n: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Wilson score interval of a proportion (Wilson 1927), within [0, 1].

    With p = successes / n and z = z_{1-alpha/2}::

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z * sqrt(p (1 - p) / n + z^2 / (4 n^2)) / (1 + z^2 / n)

    Unlike the Wald interval it stays inside [0, 1] and keeps its coverage near p = 0 or 1
    (Agresti & Coull 1998). Returns (NaN, NaN) when n = 0.
    """
    _check_counts(successes, n)
    if successes > n:
        raise ValueError(f"successes ({successes}) exceed n ({n})")
    z = _z_critical(confidence)
    if n == 0:
        return _NAN_PAIR
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half_width = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Two-sided z test of p1 = p2 with the pooled standard error.

    p_i = x_i / n_i, pooled p = (x1 + x2) / (n1 + n2),
    ``z = (p1 - p2) / sqrt(p (1 - p) (1/n1 + 1/n2))`` and ``p_value = 2 * Phi(-|z|)``
    (Agresti 2013, sec. 3.1; equal to the Pearson chi-square test of the 2x2 table without
    continuity correction, chi^2 = z^2). Returns (NaN, NaN) when n1 or n2 is 0.
    """
    _check_counts(x1, n1, x2, n2)
    if x1 > n1 or x2 > n2:
        raise ValueError("successes exceed their sample size")
    if n1 == 0 or n2 == 0:
        return _NAN_PAIR
    pooled = (x1 + x2) / (n1 + n2)
    standard_error = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
    return _two_sided_test(x1 / n1 - x2 / n2, standard_error)


# --- means and ratios of sums -------------------------------------------------------------


def mean_standard_error(values: Sequence[float]) -> float:
    """Standard error of a sample mean: ``s / sqrt(n)``, s the sample standard deviation
    (divisor n - 1; Cochran 1977, sec. 2.4). NaN below two values, which have no s.
    """
    if len(values) < 2:
        return math.nan
    return stdev(values) / math.sqrt(len(values))


def ratio_standard_error(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Standard error of the ratio of sums R = sum(y) / sum(x) over n paired observations.

    Taylor linearisation (Cochran 1977, sec. 6.3-6.4, without finite population correction)::

        SE(R) = sqrt( sum((y_i - R x_i)^2) / (n - 1) / n ) / mean(x)

    With every x_i = 1 it is :func:`mean_standard_error` of the y. NaN below two
    observations or when sum(x) = 0.
    """
    if len(numerators) != len(denominators):
        raise ValueError("numerators and denominators must pair up")
    n = len(numerators)
    total_x = math.fsum(denominators)
    if n < 2 or total_x == 0.0:
        return math.nan
    ratio = math.fsum(numerators) / total_x
    residual_sum_of_squares = math.fsum(
        (y - ratio * x) ** 2 for y, x in zip(numerators, denominators, strict=True)
    )
    return math.sqrt(residual_sum_of_squares / (n - 1) / n) / (total_x / n)


# --- any estimate with a standard error ---------------------------------------------------


def normal_confidence_interval(
    estimate: float, standard_error: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Normal-approximation interval ``estimate ± z_{1-alpha/2} * standard_error``, not
    clipped to any scale (:func:`nps_confidence_interval` clips to the NPS scale)."""
    half_width = _z_critical(confidence) * standard_error
    return estimate - half_width, estimate + half_width


def difference_z_test(
    estimate_a: float, standard_error_a: float, estimate_b: float, standard_error_b: float
) -> tuple[float, float]:
    """Two-sided z test of equal expectations for two independent estimates.

    ``z = (a - b) / sqrt(SE_a^2 + SE_b^2)``, ``p = 2 * Phi(-|z|)``: the test of a change
    between two periods (or units) whose estimates come with their own standard errors,
    whatever kind of estimate they are. A positive z means a is higher.
    """
    standard_error = math.hypot(standard_error_a, standard_error_b)
    return _two_sided_test(estimate_a - estimate_b, standard_error)


def is_significant_change(p_value: float | None, alpha: float = 0.05) -> bool:
    """Whether a change is significant at level ``alpha``: ``p_value < alpha``.

    A missing p-value (None or NaN, e.g. from an empty sample) is never significant.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if p_value is None or math.isnan(p_value):
        return False
    return p_value < alpha
