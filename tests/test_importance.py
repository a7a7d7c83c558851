"""Derived importance: standardized betas and Johnson's relative weights recover planted
structure, on synthetic frames and on the demo data (whose generator plants service,
product and convenience as NPS factors and brand_image as a placebo)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from cxkpi import demo
from cxkpi.canonical import EXPERIENCE_FACTORS
from cxkpi.methods.importance import FactorImportance, derived_importance, factor_frame


def by_factor(results: list[FactorImportance]) -> dict[str, FactorImportance]:
    return {r.factor: r for r in results}


def synthetic(n: int = 2000, seed: int = 11) -> pd.DataFrame:
    """y = 0.6 x1 + 0.3 x2 + e with independent standard normal x and Var(e) = 0.55.

    Var(y) = 0.36 + 0.09 + 0.55 = 1, so the standardized betas equal the raw ones (0.6, 0.3,
    0), the relative weights of uncorrelated factors are their squared correlations with y
    (0.36, 0.09, 0) and R^2 = 0.45.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = 0.6 * x[:, 0] + 0.3 * x[:, 1] + rng.normal(0.0, np.sqrt(0.55), n)
    return pd.DataFrame({"y": y, "x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2]})


def johnson_by_svd(frame: pd.DataFrame, outcome: str, factors: list[str]) -> np.ndarray:
    """Johnson's (2000) original construction from the data matrix, for cross-checking.

    X (z-scores / sqrt(n - 1)) = P D Q'; Z = P Q' is the closest orthonormal matrix to X;
    Lambda = Z'X = Q D Q'; beta = Z'y; eps_j = sum_k Lambda_jk^2 beta_k^2.
    """
    data = frame[[outcome, *factors]].dropna().to_numpy(dtype=float)
    z = (data - data.mean(axis=0)) / data.std(axis=0, ddof=1) / np.sqrt(len(data) - 1)
    p_, _singular, qt = np.linalg.svd(z[:, 1:], full_matrices=False)
    zz = p_ @ qt
    lam = zz.T @ z[:, 1:]
    beta = zz.T @ z[:, 0]
    return (lam**2) @ (beta**2)


def ols_r_squared(frame: pd.DataFrame, outcome: str, factors: list[str]) -> float:
    data = frame[[outcome, *factors]].dropna().to_numpy(dtype=float)
    x = np.column_stack([np.ones(len(data)), data[:, 1:]])
    coef, *_ = np.linalg.lstsq(x, data[:, 0], rcond=None)
    residual = data[:, 0] - x @ coef
    centred = data[:, 0] - data[:, 0].mean()
    return 1.0 - float(residual @ residual) / float(centred @ centred)


# --- known structure ----------------------------------------------------------------------


def test_recovers_known_structure():
    frame = synthetic()
    results = derived_importance(frame, "y", ["x1", "x2", "x3"])
    r = by_factor(results)

    assert [x.factor for x in results] == ["x1", "x2", "x3"]  # sorted by rank
    assert [r[d].rank for d in ("x1", "x2", "x3")] == [1, 2, 3]
    assert r["x1"].beta == pytest.approx(0.6, abs=0.04)
    assert r["x2"].beta == pytest.approx(0.3, abs=0.04)
    assert r["x3"].beta == pytest.approx(0.0, abs=0.04)
    assert r["x1"].beta_p_value < 1e-10 and r["x2"].beta_p_value < 1e-10
    assert r["x3"].beta_p_value > 0.01
    # se of a standardized beta with uncorrelated factors ~ sqrt((1 - R^2) / n)
    assert r["x3"].beta_se == pytest.approx(np.sqrt(0.55 / 2000), rel=0.1)

    assert r["x1"].relative_weight == pytest.approx(0.36, abs=0.04)
    assert r["x2"].relative_weight == pytest.approx(0.09, abs=0.03)
    assert r["x1"].relative_weight > r["x2"].relative_weight > r["x3"].relative_weight >= 0
    assert r["x3"].ci_low < 0.005  # the unrelated factor's interval reaches ~0 ...
    assert r["x2"].ci_low > 0.05  # ... the real factors' do not
    for x in results:
        assert x.ci_low <= x.relative_weight <= x.ci_high or x.factor == "x3"

    r_squared = results[0].r_squared
    assert r_squared == pytest.approx(0.45, abs=0.04)
    assert r_squared == pytest.approx(ols_r_squared(frame, "y", ["x1", "x2", "x3"]), abs=1e-10)
    assert sum(x.relative_weight for x in results) == pytest.approx(r_squared, abs=1e-10)
    assert sum(x.relative_weight_share for x in results) == pytest.approx(1.0, abs=1e-10)
    assert {x.n for x in results} == {2000}


def test_relative_weights_match_johnsons_svd_construction():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(800, 1))
    x = 0.7 * base + rng.normal(size=(800, 4))  # correlated factors (r ~ 0.33)
    y = x @ np.array([0.5, 0.2, 0.0, -0.3]) + rng.normal(size=800)
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"]).assign(y=y)
    factors = ["a", "b", "c", "d"]
    r = by_factor(derived_importance(frame, "y", factors, bootstrap=0))
    expected = johnson_by_svd(frame, "y", factors)
    got = np.array([r[d].relative_weight for d in factors])
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert all(np.isnan(r[d].ci_low) and np.isnan(r[d].ci_high) for d in factors)


def test_collinear_drivers_keep_positive_weights_while_betas_wobble():
    rng = np.random.default_rng(5)
    n = 600
    x1 = rng.normal(size=n)
    x2 = x1 + rng.normal(0.0, 0.05, n)  # r(x1, x2) ~ 0.999
    x3 = rng.normal(size=n)
    y = 0.5 * x1 + 0.5 * x2 + rng.normal(size=n)
    frame = pd.DataFrame({"y": y, "x1": x1, "x2": x2, "x3": x3})
    results = derived_importance(frame, "y", ["x1", "x2", "x3"])
    r = by_factor(results)

    r_squared = results[0].r_squared
    assert sum(x.relative_weight for x in results) == pytest.approx(r_squared, abs=1e-10)
    assert r["x1"].relative_weight > 0.3 * r_squared
    assert r["x2"].relative_weight > 0.3 * r_squared
    # the two near-copies share the explained variance about equally
    assert r["x1"].relative_weight == pytest.approx(r["x2"].relative_weight, rel=0.1)
    assert r["x3"].relative_weight < 0.01
    assert all(x.ci_low >= 0 for x in results)
    # the betas are poorly determined: their se is ~20x that of the independent factor
    assert r["x1"].beta_se > 10 * r["x3"].beta_se
    assert r["x2"].beta_se > 10 * r["x3"].beta_se


def test_exactly_collinear_drivers_split_the_weight():
    rng = np.random.default_rng(9)
    x1 = rng.normal(size=300)
    frame = pd.DataFrame({"x1": x1, "x2": 2.0 * x1 + 1.0, "y": x1 + rng.normal(size=300)})
    results = derived_importance(frame, "y", ["x1", "x2"], bootstrap=20)
    r = by_factor(results)
    assert r["x1"].relative_weight == pytest.approx(r["x2"].relative_weight, rel=1e-6)
    assert r["x1"].relative_weight + r["x2"].relative_weight == pytest.approx(
        results[0].r_squared, abs=1e-10
    )
    assert results[0].r_squared == pytest.approx(ols_r_squared(frame, "y", ["x1"]), abs=1e-10)


def test_missing_rows_are_dropped_and_counted():
    frame = synthetic(n=500)
    frame.loc[[0, 1, 2], "x1"] = np.nan
    frame.loc[[2, 3], "y"] = np.nan
    frame["flag"] = frame["x3"] > 0  # booleans count as 0/1
    results = derived_importance(frame, "y", ["x1", "x2", "flag"], bootstrap=10)
    assert {x.n for x in results} == {496}


def test_deterministic_for_a_seed():
    frame = synthetic(n=400)
    first = derived_importance(frame, "y", ["x1", "x2", "x3"], bootstrap=50, seed=1)
    again = derived_importance(frame, "y", ["x1", "x2", "x3"], bootstrap=50, seed=1)
    other = derived_importance(frame, "y", ["x1", "x2", "x3"], bootstrap=50, seed=2)
    assert first == again
    assert [x.relative_weight for x in first] == [x.relative_weight for x in other]
    assert [x.ci_low for x in first] != [x.ci_low for x in other]


@pytest.mark.parametrize(
    ("outcome", "factors", "message"),
    [
        ("y", [], "at least one factor"),
        ("y", ["x1", "x1"], "duplicated"),
        ("y", ["y", "x1"], "cannot also be a factor"),
        ("y", ["x1", "nope"], "not in the frame"),
        ("y", ["x1", "const"], "without variation"),
        ("y", ["x1", "text"], "not numeric"),
    ],
)
def test_invalid_input(outcome, factors, message):
    frame = synthetic(n=50).assign(const=1.0, text="a")
    with pytest.raises(ValueError, match=message):
        derived_importance(frame, outcome, factors)


def test_too_few_rows():
    with pytest.raises(ValueError, match="complete rows"):
        derived_importance(synthetic(n=4), "y", ["x1", "x2", "x3"])


# --- factor_frame -------------------------------------------------------------------------

LONG = pd.DataFrame(
    {
        "response_id": ["R2", "R2", "R1", "R1", "R1", "R3"],
        "factor": ["service", "product", "custom", "product", "service", "product"],
        "experience": [6.0, 7.5, 3.0, 8.0, 9.0, None],
        "nps": [6, 6, 10, 10, 10, None],
    }
)


def test_factor_frame_from_a_dataframe():
    wide = factor_frame(LONG)
    assert list(wide.index) == ["R1", "R2", "R3"]
    assert list(wide.columns) == ["product", "service", "custom", "nps"]
    assert wide.loc["R1"].tolist() == [8.0, 9.0, 3.0, 10.0]
    assert wide.loc["R2", ["product", "service", "nps"]].tolist() == [7.5, 6.0, 6.0]
    assert np.isnan(wide.loc["R2", "custom"]) and wide.loc["R3"].isna().all()


def test_factor_frame_from_the_warehouse_relation():
    con = duckdb.connect()
    con.register("long_view", LONG.assign(expectation=5.0))
    con.execute("create schema intermediate")
    con.execute("create table intermediate.int_factor_ratings_enriched as from long_view")
    pd.testing.assert_frame_equal(factor_frame(con), factor_frame(LONG), check_dtype=False)
    assert factor_frame(con, value="expectation")["product"].tolist() == [5.0, 5.0, 5.0]
    con.close()


def test_factor_frame_rejects_inconsistent_input():
    with pytest.raises(ValueError, match="rated twice"):
        factor_frame(pd.concat([LONG, LONG.iloc[[0]]]))
    with pytest.raises(ValueError, match="more than one 'nps'"):
        factor_frame(LONG.assign(nps=[6, 7, 10, 10, 10, None]))
    with pytest.raises(ValueError, match="lack the columns"):
        factor_frame(LONG.drop(columns="nps"))


# --- the demo data: planted factors and placebo -------------------------------------------


@pytest.fixture(scope="module")
def demo_importance(tmp_path_factory: pytest.TempPathFactory) -> list[FactorImportance]:
    landing: Path = tmp_path_factory.mktemp("importance") / "landing"
    demo.generate(landing, scale=0.5)
    surveys = landing / "surveys"
    ratings = pd.concat(pd.read_csv(p) for p in sorted(surveys.glob("factor_ratings_*.csv")))
    responses = pd.concat(pd.read_csv(p) for p in sorted(surveys.glob("responses_*.csv")))
    nps = responses[["ResponseId", "NPS"]].rename(
        columns={"ResponseId": "response_id", "NPS": "nps"}
    )
    wide = factor_frame(ratings.merge(nps, on="response_id", how="left"))
    return derived_importance(wide, "nps", list(EXPERIENCE_FACTORS))


def test_demo_planted_drivers_rank_on_top(demo_importance):
    r = by_factor(demo_importance)
    top = {x.factor for x in demo_importance if x.rank <= 3}
    assert top == set(demo.PLANTED["nps_factors"]) == {"service", "product", "convenience"}
    for factor in top:
        assert r[factor].beta > 0.2 and r[factor].beta_p_value < 1e-6
        assert r[factor].ci_low > 0.1  # each explains over a tenth of the NPS variance
    # together the three factors explain most of what the model explains
    assert sum(r[d].relative_weight_share for d in top) > 0.9
    n = demo_importance[0].n
    assert 1_500 < n < 2_000  # ~2,000 responses, ~10% skip the factor block, some nulls
    assert 0.4 < demo_importance[0].r_squared < 0.8


def test_demo_placebo_matters_not_at_all(demo_importance):
    placebo = demo.PLANTED["placebo_factor"]
    r = by_factor(demo_importance)[placebo]
    assert placebo == "brand_image"
    assert r.rank == len(EXPERIENCE_FACTORS)  # the smallest relative weight
    assert r.ci_low < 0.01
    assert r.relative_weight < 0.005
    assert abs(r.beta) < 0.05 and r.beta_p_value > 0.01


def test_the_warehouse_pivot_gives_what_factor_frame_gives() -> None:
    """The analyze stage pivots the factor ratings in DuckDB (the long rows would not fit
    in memory at --scale 1000): the same frame factor_frame makes of the long rows."""
    import duckdb

    from cxkpi.methods import factor_importance

    rng = np.random.default_rng(3)
    con = duckdb.connect()
    con.execute("create schema intermediate")
    responses = pd.DataFrame(
        {
            "response_id": [f"R{i:04d}" for i in rng.permutation(300)],
            "nps": rng.integers(0, 11, 300).astype(float),
            "repurchased_within_90d": rng.random(300) < 0.4,
            "responded_at": pd.Timestamp("2026-01-01")
            + pd.to_timedelta(rng.integers(0, 300, 300), "D"),
        }
    )
    responses.loc[::17, "nps"] = np.nan
    factors = ["delivery", "price", "zz_company_factor", "service"]
    long = pd.DataFrame(
        [
            (r, f, float(rng.integers(0, 11)), n)
            for r, n in zip(responses["response_id"], responses["nps"], strict=True)
            for f in factors
            if rng.random() < 0.9
        ],
        columns=["response_id", "factor", "experience", "nps"],
    )
    con.register("long_df", long)
    con.register("responses_df", responses)
    con.execute("create table intermediate.int_factor_ratings_enriched as select * from long_df")
    con.execute(
        "create table intermediate.int_survey_responses_enriched as select * from responses_df"
    )
    con.execute(
        "create table intermediate.int_order_history as select timestamp '2026-12-31' as ordered_at"
    )
    frames = factor_importance._frames(con)
    expected = factor_frame(long.sort_values(["response_id", "factor"]))
    pd.testing.assert_frame_equal(frames["nps"], expected, check_names=False)
    assert list(frames) == ["nps", "repurchased_within_90d"]
    window = responses[responses["responded_at"] <= pd.Timestamp("2026-10-02")]
    assert set(frames["repurchased_within_90d"].index) == set(window["response_id"]) & set(
        long["response_id"]
    )
