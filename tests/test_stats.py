"""Sampling error and significance tests of CX rates, against values worked out by hand.

Every expected number is derived in the comments from the textbook formula with hand
arithmetic (z_0.975 = 1.959964, Phi(3.0) = 0.998650, phi(x) = exp(-x^2/2)/sqrt(2 pi)), not
by calling the function under test.
"""

from __future__ import annotations

import math

import pytest

from cxkpi.methods.stats import (
    difference_z_test,
    is_significant_change,
    mean_standard_error,
    normal_confidence_interval,
    nps_confidence_interval,
    nps_difference_test,
    nps_from_counts,
    nps_standard_error,
    nps_variance,
    proportion_confidence_interval,
    proportion_standard_error,
    ratio_standard_error,
    two_proportion_z_test,
)

# --- NPS: 50 promoters, 30 passives, 20 detractors (n = 100) ------------------------------


def test_nps_point_variance_and_standard_error():
    # NPS = 100 * (50 - 20) / 100 = 30 points
    assert nps_from_counts(50, 30, 20) == pytest.approx(30.0)
    # p_p = 0.5, p_d = 0.2: Var = 0.5 + 0.2 - (0.5 - 0.2)^2 = 0.7 - 0.09 = 0.61
    assert nps_variance(50, 30, 20) == pytest.approx(0.61)
    # SE = 100 * sqrt(0.61 / 100) = 100 * sqrt(0.0061) = 100 * 0.0781025 = 7.81025 points
    assert nps_standard_error(50, 30, 20) == pytest.approx(7.81025, abs=1e-4)


def test_nps_confidence_interval():
    # half width = 1.959964 * 7.81025 = 15.3078; 30 -/+ 15.3078 = (14.6922, 45.3078)
    low, high = nps_confidence_interval(50, 30, 20)
    assert low == pytest.approx(14.6922, abs=1e-3)
    assert high == pytest.approx(45.3078, abs=1e-3)
    # 90%: z_0.95 = 1.644854; half width = 1.644854 * 7.81025 = 12.8467 -> (17.153, 42.847)
    low, high = nps_confidence_interval(50, 30, 20, confidence=0.90)
    assert (low, high) == pytest.approx((17.1533, 42.8467), abs=1e-3)


def test_nps_extremes():
    # all promoters: NPS 100, Var = 1 + 0 - 1^2 = 0, so the interval collapses to 100
    assert nps_from_counts(10, 0, 0) == 100.0
    assert nps_variance(10, 0, 0) == 0.0
    assert nps_confidence_interval(10, 0, 0) == (100.0, 100.0)
    # half promoters, half detractors: NPS 0, Var = 1 - 0 = 1 (the maximum)
    assert nps_from_counts(5, 0, 5) == 0.0
    assert nps_variance(5, 0, 5) == 1.0
    # 2/0/2 (n = 4): SE = 100 * sqrt(1 / 4) = 50, half width 1.959964 * 50 = 97.9982
    assert nps_confidence_interval(2, 0, 2) == pytest.approx((-97.9982, 97.9982), abs=1e-3)
    # 3/0/1: NPS 50, Var = 0.75 + 0.25 - 0.5^2 = 0.75, SE = 100 * sqrt(0.75 / 4) = 43.30127,
    # half width 84.8693: 50 + 84.87 is clipped to the scale's 100, 50 - 84.87 = -34.8693
    low, high = nps_confidence_interval(3, 0, 1)
    assert high == 100.0
    assert low == pytest.approx(-34.8693, abs=1e-3)


def test_nps_difference_test():
    # A = 50/30/20: NPS 0.30, Var 0.61; B = 40/30/30: NPS 0.10, Var 0.4 + 0.3 - 0.1^2 = 0.69
    # SE = sqrt(0.61/100 + 0.69/100) = sqrt(0.013) = 0.1140175; z = 0.2 / 0.1140175 = 1.754116
    # Phi(1.75) = 0.959941, phi(1.75) = 0.086277: Phi(1.754116) ~ 0.959941 + 0.004116 * 0.086277
    # = 0.960296 -> p = 2 * (1 - 0.960296) = 0.079408
    z, p = nps_difference_test((50, 30, 20), (40, 30, 30))
    assert z == pytest.approx(1.754116, abs=1e-5)
    assert p == pytest.approx(0.07941, abs=2e-4)
    z_rev, p_rev = nps_difference_test((40, 30, 30), (50, 30, 20))
    assert z_rev == pytest.approx(-z) and p_rev == pytest.approx(p)
    assert not is_significant_change(p)
    assert is_significant_change(p, alpha=0.10)


def test_nps_difference_test_larger_samples_become_significant():
    # the same rates with n = 1000 each: SE = sqrt(0.013 / 10) = 0.0360555, z = 5.547
    z, p = nps_difference_test((500, 300, 200), (400, 300, 300))
    assert z == pytest.approx(0.2 / math.sqrt(0.0013), abs=1e-6)
    assert 0 < p < 1e-6  # 2 * (1 - Phi(5.547)) ~ 3e-8
    # far tails keep a positive p-value (2 * (1 - Phi(z)) would cancel to 0 beyond z ~ 8.3)
    _, tiny = nps_difference_test((5000, 3000, 2000), (4000, 3000, 3000))  # z = 17.5
    assert 0 < tiny < 1e-60
    assert is_significant_change(p)


def test_nps_difference_test_without_variance():
    assert nps_difference_test((10, 0, 0), (20, 0, 0)) == (0.0, 1.0)
    assert nps_difference_test((10, 0, 0), (0, 0, 20)) == (math.inf, 0.0)
    assert nps_difference_test((0, 0, 20), (10, 0, 0)) == (-math.inf, 0.0)


# --- proportions --------------------------------------------------------------------------


def test_wilson_interval_81_of_263():
    # p = 81/263 = 0.307985, z^2 = 3.841459, 1 + z^2/n = 1.0146063
    # centre = (0.307985 + 3.841459/526) / 1.0146063 = 0.315288 / 1.0146063 = 0.310749
    # half = 1.959964 * sqrt(0.307985 * 0.692015 / 263 + 3.841459 / (4 * 263^2)) / 1.0146063
    #      = 1.959964 * sqrt(0.00081038 + 0.00001388) / 1.0146063 = 0.055461
    # -> (0.310749 - 0.055461, 0.310749 + 0.055461) = (0.255288, 0.366210)
    low, high = proportion_confidence_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4)
    assert high == pytest.approx(0.3662, abs=1e-4)


def test_wilson_interval_at_the_edges():
    # 0 of 10: centre = (0 + 3.841459/20) / 1.3841459 = 0.138768, half the same: (0, 0.2775)
    low, high = proportion_confidence_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12)
    assert high == pytest.approx(3.841459 / 13.841459, abs=1e-5)  # z^2 / (n + z^2) = 0.277533
    low, high = proportion_confidence_interval(10, 10)
    # 10 of 10 mirrors it: (1 - 0.277533, 1) = (0.722467, 1)
    assert high == pytest.approx(1.0, abs=1e-12)
    assert low == pytest.approx(10 / 13.841459, abs=1e-5)


def test_two_proportion_z_test_120_of_200_vs_90_of_200():
    # p1 = 0.60, p2 = 0.45, pooled = 210/400 = 0.525
    # SE = sqrt(0.525 * 0.475 * (1/200 + 1/200)) = sqrt(0.00249375) = 0.0499375
    # z = 0.15 / 0.0499375 = 3.003755
    # tail: 1 - Phi(3.0) = 0.0013499, minus phi(3.0) * 0.003755 = 0.004432 * 0.003755
    # = 0.0000166 -> 0.0013333; p = 2 * 0.0013333 = 0.0026666
    z, p = two_proportion_z_test(120, 200, 90, 200)
    assert z == pytest.approx(3.003755, abs=1e-5)
    assert p == pytest.approx(0.002667, abs=2e-5)
    assert is_significant_change(p)
    # z^2 is Pearson's chi-square of the 2x2 table (120 | 80, 90 | 110) without continuity
    # correction: expected 105 successes and 95 failures per group, every |O - E| = 15, so
    # chi2 = 2 * 225/105 + 2 * 225/95 = 4.285714 + 4.736842 = 9.022556
    assert z * z == pytest.approx(9.022556, abs=1e-5)


def test_two_proportion_z_test_symmetry_and_degenerate_cases():
    z, p = two_proportion_z_test(90, 200, 120, 200)
    assert z == pytest.approx(-3.003755, abs=1e-5) and p == pytest.approx(0.002667, abs=2e-5)
    assert two_proportion_z_test(0, 50, 0, 80) == (0.0, 1.0)
    assert two_proportion_z_test(50, 50, 80, 80) == (0.0, 1.0)
    assert two_proportion_z_test(30, 60, 40, 80) == (0.0, 1.0)  # equal rates


def test_proportion_standard_error_30_of_120():
    # p = 0.25: SE = sqrt(0.25 * 0.75 / 120) = sqrt(0.0015625) = 0.0395285
    assert proportion_standard_error(30, 120) == pytest.approx(0.0395285, abs=1e-7)
    # no variation, no sampling error
    assert proportion_standard_error(0, 40) == 0.0
    assert proportion_standard_error(40, 40) == 0.0


# --- means and ratios of sums -------------------------------------------------------------


def test_mean_standard_error():
    # 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations 9 + 1 + 1 + 1 + 0 + 0 + 4 + 16 = 32,
    # s^2 = 32 / 7, SE = sqrt(32 / 7 / 8) = sqrt(4 / 7) = 0.7559289
    assert mean_standard_error([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(0.7559289, abs=1e-7)
    assert mean_standard_error([3.0, 3.0, 3.0]) == 0.0


def test_ratio_standard_error():
    # y = 2, 3, 5, 6 over x = 1, 2, 2, 3: R = 16 / 8 = 2, residuals y - 2x = 0, -1, 1, 0,
    # sum of squares 2; SE = sqrt(2 / 3 / 4) / (8 / 4) = sqrt(1 / 6) / 2 = 0.2041241
    assert ratio_standard_error([2, 3, 5, 6], [1, 2, 2, 3]) == pytest.approx(0.2041241, abs=1e-7)
    # y exactly proportional to x: R explains every observation, no sampling error
    assert ratio_standard_error([2, 4, 6], [1, 2, 3]) == 0.0
    # with every x = 1 the ratio of sums is the mean: 0.7559289 as in the mean's test
    values = [2, 4, 4, 4, 5, 5, 7, 9]
    assert ratio_standard_error(values, [1] * 8) == pytest.approx(0.7559289, abs=1e-7)
    # the denominators' scale cancels: x = 10 each gives R / 10 and a tenth of the error
    assert ratio_standard_error(values, [10] * 8) == pytest.approx(0.07559289, abs=1e-8)


# --- any estimate with a standard error ---------------------------------------------------


def test_normal_confidence_interval():
    # 10 -/+ 1.959964 * 2 = 10 -/+ 3.919928, not clipped to any scale
    assert normal_confidence_interval(10.0, 2.0) == pytest.approx((6.080072, 13.919928), abs=1e-5)
    # 90%: 10 -/+ 1.644854 * 2 = (6.710292, 13.289708)
    low, high = normal_confidence_interval(10.0, 2.0, confidence=0.90)
    assert (low, high) == pytest.approx((6.710292, 13.289708), abs=1e-5)
    assert normal_confidence_interval(-95.0, 10.0)[0] == pytest.approx(-114.599, abs=1e-3)


def test_difference_z_test():
    # 30 (SE 3) against 20 (SE 4): SE of the difference sqrt(9 + 16) = 5, z = 10 / 5 = 2,
    # p = 2 * (1 - Phi(2)) = 2 * 0.0227501 = 0.0455003: significant at 5%
    z, p = difference_z_test(30.0, 3.0, 20.0, 4.0)
    assert z == pytest.approx(2.0)
    assert p == pytest.approx(0.0455003, abs=1e-6)
    assert is_significant_change(p)
    # 25 against 20: z = 1, p = 2 * (1 - Phi(1)) = 2 * 0.1586553 = 0.3173105
    z, p = difference_z_test(20.0, 4.0, 25.0, 3.0)
    assert z == pytest.approx(-1.0)
    assert p == pytest.approx(0.3173105, abs=1e-6)
    assert not is_significant_change(p)
    assert difference_z_test(5.0, 0.0, 5.0, 0.0) == (0.0, 1.0)


# --- empty samples and invalid input ------------------------------------------------------


def test_empty_samples_give_nan():
    assert math.isnan(nps_from_counts(0, 0, 0))
    assert math.isnan(nps_variance(0, 0, 0))
    assert math.isnan(nps_standard_error(0, 0, 0))
    assert all(math.isnan(v) for v in nps_confidence_interval(0, 0, 0))
    assert all(math.isnan(v) for v in proportion_confidence_interval(0, 0))
    z, p = two_proportion_z_test(0, 0, 5, 10)
    assert math.isnan(z) and math.isnan(p)
    z, p = nps_difference_test((1, 2, 3), (0, 0, 0))
    assert math.isnan(z) and math.isnan(p)
    assert not is_significant_change(p)
    assert not is_significant_change(None)
    assert math.isnan(proportion_standard_error(0, 0))
    assert math.isnan(mean_standard_error([4.0]))  # one value has no sample variance
    assert math.isnan(ratio_standard_error([1.0], [2.0]))
    assert math.isnan(ratio_standard_error([1.0, 2.0], [0.0, 0.0]))


@pytest.mark.parametrize(
    "call",
    [
        lambda: nps_from_counts(-1, 2, 3),
        lambda: nps_variance(1, -2, 3),
        lambda: nps_confidence_interval(5, 3, 2, confidence=1.0),
        lambda: nps_confidence_interval(5, 3, 2, confidence=0.0),
        lambda: proportion_confidence_interval(11, 10),
        lambda: proportion_confidence_interval(-1, 10),
        lambda: two_proportion_z_test(5, 4, 1, 10),
        lambda: proportion_standard_error(11, 10),
        lambda: ratio_standard_error([1.0, 2.0], [1.0]),
        lambda: normal_confidence_interval(1.0, 1.0, confidence=1.5),
        lambda: is_significant_change(0.01, alpha=0.0),
    ],
)
def test_invalid_input_raises(call):
    with pytest.raises(ValueError):
        call()


def test_significance_threshold_is_strict():
    assert is_significant_change(0.049)
    assert not is_significant_change(0.05)
    assert not is_significant_change(0.2)
    assert is_significant_change(0.009, alpha=0.01)
