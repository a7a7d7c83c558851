"""Derived importance of experience factors (key-driver analysis), step 2d of the method.

Stated importance asks customers what matters; derived importance measures how strongly
each factor's experience rating relates to an outcome (NPS, overall satisfaction,
repurchase) across respondents. Two standard measures are reported side by side:

1. **Standardized regression coefficients.** OLS of the z-scored outcome on the z-scored
   factors, ``beta = (Z'Z)^-1 Z'y`` (via :func:`numpy.linalg.lstsq`), with the analytical
   standard errors ``se = sqrt(diag(s^2 (Z'Z)^-1))``, ``s^2 = RSS / (n - p - 1)`` (one degree
   of freedom for the intercept that the centring removed) and two-sided p-values from the
   normal approximation of the t distribution, ``p = 2 (1 - Phi(|t|)) = erfc(|t| / sqrt(2))``
   with ``t = beta / se``: with the hundreds of respondents a key-driver analysis needs,
   t_{n-p-1} and N(0, 1) agree to the third decimal. Betas answer "what if this factor
   moved, the others held fixed", and become unstable (large se, even flipped signs) when
   factors are collinear, which experience ratings usually are (a halo of overall
   satisfaction).

2. **Relative weights** (Johnson 2000). The factors X (correlation matrix
   ``R_xx = Q diag(lambda) Q'``) are replaced by their closest orthonormal counterparts
   Z; ``Lambda = Q diag(sqrt(lambda)) Q'`` holds the correlations of X with Z and
   ``b = Lambda^-1 r_xy`` the regression of y on Z. The weight of factor j is
   ``eps_j = sum_k Lambda_jk^2 b_k^2``; the weights are non-negative and sum to the model's
   R^2, so each factor's share of the explained variance is ``eps_j / R^2``. They stay
   meaningful under collinearity and agree closely with dominance analysis (Budescu 1993).
   Their sampling error comes from a seeded percentile bootstrap over respondents
   (Tonidandel, LeBreton & Johnson 2009).

References
----------
* Johnson, J. W. (2000). A heuristic method for estimating the relative weight of predictor
  variables in multiple regression. *Multivariate Behavioral Research* 35(1), 1-19.
* Tonidandel, S., LeBreton, J. M. & Johnson, J. W. (2009). Determining the statistical
  significance of relative weights. *Psychological Methods* 14(4), 387-399.
* Budescu, D. V. (1993). Dominance analysis: a new approach to the problem of relative
  importance of predictors in multiple regression. *Psychological Bulletin* 114(3), 542-551.
* Efron, B. & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*, ch. 13
  (percentile intervals).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from cxkpi.canonical import EXPERIENCE_FACTORS

if TYPE_CHECKING:
    import duckdb

__all__ = ["FACTOR_RELATION", "FactorImportance", "derived_importance", "factor_frame"]

# The warehouse relation with one row per response and factor, carrying the response's NPS.
FACTOR_RELATION: Final = "intermediate.int_factor_ratings_enriched"

_EIGEN_TOLERANCE: Final = 1e-12  # relative: eigenvalues below it count as zero (exact collinearity)


@dataclass(frozen=True)
class FactorImportance:
    """Derived importance of one factor for one outcome.

    ``beta*`` are on the standardized scale (outcome standard deviations per factor standard
    deviation); ``relative_weight*`` describe the share of the outcome's variance explained;
    ``ci_low``/``ci_high`` bound the relative weight (percentile bootstrap, NaN when
    ``bootstrap=0``); ``rank`` 1 is the largest relative weight; ``n`` and ``r_squared`` are
    those of the whole model (the same on every row).
    """

    factor: str
    beta: float
    beta_se: float
    beta_p_value: float
    relative_weight: float
    relative_weight_share: float
    ci_low: float
    ci_high: float
    rank: int
    n: int
    r_squared: float


def derived_importance(
    frame: pd.DataFrame,
    outcome: str,
    factors: Sequence[str],
    *,
    bootstrap: int = 200,
    seed: int = 7,
    confidence: float = 0.95,
) -> list[FactorImportance]:
    """Key-driver analysis of ``outcome`` on ``factors``; one result per factor, by rank.

    Each row of ``frame`` is a respondent; the outcome and factor columns must be numeric
    (booleans count as 0/1). Rows with a missing value in any of them are dropped (listwise
    deletion) and the number of rows used is reported as ``n``. ``bootstrap`` resamples of
    the rows (a :func:`numpy.random.default_rng` seeded with ``seed``, so results are
    reproducible) give the ``confidence`` percentile interval of each relative weight.

    Raises :class:`ValueError` for a missing, duplicated or non-numeric column, fewer than
    ``len(factors) + 2`` complete rows, or a column without variation.
    """
    factors = list(factors)
    if not factors:
        raise ValueError("at least one factor is needed")
    if len(set(factors)) != len(factors):
        raise ValueError(f"factors are duplicated: {factors}")
    if outcome in factors:
        raise ValueError(f"the outcome {outcome!r} cannot also be a factor")
    missing = [c for c in [outcome, *factors] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {missing}")
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")

    data = _numeric_matrix(frame, [outcome, *factors])
    n, p = data.shape[0], len(factors)
    if n < p + 2:
        raise ValueError(
            f"{n} complete rows for {p} factors: at least {p + 2} are needed "
            "(and many more for a stable result)"
        )
    sd = data.std(axis=0, ddof=1)
    constant = [name for name, s in zip([outcome, *factors], sd, strict=True) if not s > 0]
    if constant:
        raise ValueError(f"columns without variation: {constant}")

    z = (data - data.mean(axis=0)) / sd
    beta, beta_se, beta_p = _standardized_ols(z[:, 1:], z[:, 0])
    weights, r_squared = _relative_weights(np.corrcoef(data, rowvar=False))

    ci_low = ci_high = np.full(p, math.nan)
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = np.full((bootstrap, p), math.nan)
        for b in range(bootstrap):
            sample = data[rng.integers(0, n, n)]
            if np.all(sample.std(axis=0) > 0):  # a degenerate resample stays NaN
                draws[b] = _relative_weights(np.corrcoef(sample, rowvar=False))[0]
        tail = 100.0 * (1.0 - confidence) / 2.0
        ci_low, ci_high = np.nanpercentile(draws, [tail, 100.0 - tail], axis=0)

    order = sorted(range(p), key=lambda j: (-weights[j], j))
    ranks = {j: r for r, j in enumerate(order, start=1)}
    return [
        FactorImportance(
            factor=factors[j],
            beta=float(beta[j]),
            beta_se=float(beta_se[j]),
            beta_p_value=float(beta_p[j]),
            relative_weight=float(weights[j]),
            relative_weight_share=float(weights[j] / r_squared) if r_squared > 0 else math.nan,
            ci_low=float(ci_low[j]),
            ci_high=float(ci_high[j]),
            rank=ranks[j],
            n=n,
            r_squared=float(r_squared),
        )
        for j in order
    ]


def factor_frame(
    con_or_df: pd.DataFrame | duckdb.DuckDBPyConnection,
    *,
    outcome: str = "nps",
    value: str = "experience",
    relation: str = FACTOR_RELATION,
) -> pd.DataFrame:
    """Long factor ratings -> one row per response, one column per factor, plus the outcome.

    The input has one row per response and factor with the columns ``response_id``,
    ``factor``, ``value`` (the rating to spread, by default ``experience``) and ``outcome``
    (one value per response, repeated on its factor rows). It is either a DataFrame or a
    DuckDB connection, read from ``relation`` (by default the warehouse model
    ``intermediate.int_factor_ratings_enriched``).

    The result is indexed by ``response_id`` (sorted); its columns are the factors, the six
    standard factors first in their canonical order and further (company-specific) factors
    after them in order of appearance, then ``outcome``. A factor a response did not rate is
    NaN; :func:`derived_importance` drops such rows. Raises :class:`ValueError` for missing
    columns, a factor rated twice in one response, or a response with two outcome values.
    """
    columns = ["response_id", "factor", value, outcome]
    if isinstance(con_or_df, pd.DataFrame):
        long = con_or_df
    else:
        from cxkpi.warehouse import quote_ident

        source = ".".join(quote_ident(part) for part in relation.split("."))
        select = ", ".join(quote_ident(c) for c in columns)
        long = con_or_df.execute(f"select {select} from {source}").df()
    missing = [c for c in columns if c not in long.columns]
    if missing:
        raise ValueError(f"long factor ratings lack the columns {missing}")
    long = long[columns].copy()
    long[value] = pd.to_numeric(long[value])
    long[outcome] = pd.to_numeric(long[outcome])

    duplicated = long.duplicated(["response_id", "factor"])
    if duplicated.any():
        first = long.loc[duplicated, ["response_id", "factor"]].iloc[0].tolist()
        raise ValueError(f"a factor is rated twice in one response, e.g. {first}")
    outcomes = long.groupby("response_id", sort=True)[outcome]
    inconsistent = outcomes.nunique(dropna=False) > 1
    if inconsistent.any():
        raise ValueError(
            f"responses with more than one {outcome!r} value, e.g. "
            f"{inconsistent[inconsistent].index[0]!r}"
        )

    present = list(dict.fromkeys(long["factor"].dropna()))
    factors = [f for f in EXPERIENCE_FACTORS if f in present]
    factors += [f for f in present if f not in factors]
    wide = long.pivot(index="response_id", columns="factor", values=value)
    wide = wide.reindex(columns=factors).sort_index()
    wide.columns.name = None
    wide[outcome] = outcomes.first()
    return wide


# --- computation --------------------------------------------------------------------------


def _numeric_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The columns as a float matrix, rows with any missing value dropped."""
    parts = {}
    for column in columns:
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            series = series.astype("float64")
        try:
            parts[column] = pd.to_numeric(series).astype("float64")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {column!r} is not numeric: {exc}") from None
    matrix = pd.DataFrame(parts).to_numpy(dtype="float64", na_value=np.nan)
    return matrix[~np.isnan(matrix).any(axis=1)]


def _standardized_ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients, standard errors and normal-approximation p-values of y on x (z-scores)."""
    n, p = x.shape
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ beta
    sigma2 = float(residual @ residual) / (n - p - 1)
    covariance = sigma2 * np.linalg.pinv(x.T @ x)
    se = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(se > 0, beta / se, np.nan)
    p_values = np.array(
        [math.erfc(abs(v) / math.sqrt(2.0)) if np.isfinite(v) else np.nan for v in t]
    )
    return beta, se, p_values


def _relative_weights(correlation: np.ndarray) -> tuple[np.ndarray, float]:
    """Johnson's (2000) relative weights and R^2 from the correlation matrix of (y, x...).

    ``R_xx = Q diag(lambda) Q'``; ``Lambda = Q diag(sqrt(lambda)) Q'``;
    ``b = Q diag(1 / sqrt(lambda)) Q' r_xy``; ``eps_j = sum_k Lambda_jk^2 b_k^2``;
    ``R^2 = sum_j eps_j = r_xy' R_xx^-1 r_xy``. Eigenvalues at zero (exactly collinear
    factors) are dropped, i.e. the pseudo-inverse is used.
    """
    r_xy = correlation[1:, 0]
    r_xx = correlation[1:, 1:]
    eigenvalues, q = np.linalg.eigh(r_xx)
    keep = eigenvalues > _EIGEN_TOLERANCE * max(float(eigenvalues.max()), 1.0)
    root = np.sqrt(np.where(keep, eigenvalues, 0.0))
    inverse_root = np.where(keep, 1.0 / np.where(keep, root, 1.0), 0.0)
    lam = (q * root) @ q.T
    b = (q * inverse_root) @ q.T @ r_xy
    weights = (lam**2) @ (b**2)
    return weights, float(weights.sum())
