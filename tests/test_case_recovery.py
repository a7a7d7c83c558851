"""The inner loop's effect: recovery and repurchase of detractors reached in time against
those who were not, recomputed independently from the landing files; the demo's planted
effect found; a placebo rule (the same cases' follow-ups shuffled among them) finding none;
and the loop KPIs counting the same cases."""

from __future__ import annotations

import csv
import hashlib
import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_DATE, REPO, make_settings, query

from cxkpi import pipeline
from cxkpi.demo import PLANTED
from cxkpi.demo.model import FOLLOW_UP_SLA_HOURS, REPEATED_TICKET_SLA_HOURS

pytestmark = pytest.mark.integration

Z = 1.959964
RULE = "detractor_callback"


def _wilson(successes: int, n: int) -> tuple[float, float]:
    p, z2 = successes / n, Z * Z
    centre, half = p + z2 / (2 * n), Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return (centre - half) / (1 + z2 / n), (centre + half) / (1 + z2 / n)


def _landing_responses(landing: Path) -> pd.DataFrame:
    frames = [
        pd.read_csv(p, dtype=str, keep_default_na=False)
        for p in landing.glob("surveys/responses_*.csv")
    ]
    raw = pd.concat(frames, ignore_index=True)
    local = pd.to_datetime(raw["RecordedDate"], format="%Y-%m-%d %H:%M:%S")
    at = local.dt.tz_localize("Europe/Berlin", ambiguous=False, nonexistent="shift_forward")
    return pd.DataFrame(
        {
            "response_id": raw["ResponseId"],
            "customer_id": raw["CustomerId"],
            "at": at.dt.tz_convert("UTC").dt.tz_localize(None),
            "nps": pd.to_numeric(raw["NPS"].replace("", None)),
        }
    )


def _independent_recovery(landing: Path, cases: pd.DataFrame, window_days: int) -> dict:
    """(measure, group) -> (cases, successes), from the landing files and each case's
    first-contact SLA outcome (the SLA itself is checked by hand in test_case_history)."""
    responses = _landing_responses(landing)
    orders = pd.concat(
        [pd.read_parquet(p) for p in landing.glob("orders/orders_*.parquet")], ignore_index=True
    )
    ordered_until = orders["ordered_at"].max()
    rated = responses[responses["nps"].notna()].sort_values(["at", "response_id"])
    by_customer = dict(tuple(rated.groupby("customer_id")))
    orders_by_customer = dict(tuple(orders.groupby("customer_id")))
    window = pd.Timedelta(days=window_days)
    answers = responses.set_index("response_id")
    counts: dict[tuple[str, str], list[int]] = {}
    for case in cases.itertuples():
        answer = answers.loc[case.source_key]
        if not answer["nps"] <= 6 or case.first_contact_sla == "pending":
            continue
        group = "reached" if case.first_contact_sla == "met" else "not_reached"
        opened, end = answer["at"], answer["at"] + window
        later = by_customer.get(answer["customer_id"], rated.iloc[0:0])
        later = later[(later["at"] > opened) & (later["at"] <= end)]
        if len(later):
            tally = counts.setdefault(("recovery", group), [0, 0])
            tally[0] += 1
            tally[1] += int(later["nps"].iloc[0] >= 7)
        if end <= ordered_until:
            bought = orders_by_customer.get(answer["customer_id"], orders.iloc[0:0])["ordered_at"]
            tally = counts.setdefault(("repurchase", group), [0, 0])
            tally[0] += 1
            tally[1] += int(((bought > opened) & (bought <= end)).any())
    return {key: tuple(value) for key, value in counts.items()}


def test_recovery_agrees_with_an_independent_calculation(demo_night) -> None:
    settings = demo_night.settings
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        cases = con.execute(
            "select case_id, source_key, first_contact_sla from fct_cases "
            f"where rule_id = '{RULE}' and not is_withdrawn"
        ).df()
        published = {
            row[0]: row[1:]
            for row in con.execute(
                "select measure, reached_cases, reached_successes, reached_rate, reached_ci_low, "
                "reached_ci_high, not_reached_cases, not_reached_successes, rate_difference, "
                "difference_ci_low, difference_ci_high "
                f"from fct_case_recovery where rule_id = '{RULE}'"
            ).fetchall()
        }
    finally:
        con.close()
    expected = _independent_recovery(settings.landing_dir, cases, PLANTED["recovery_window_days"])
    for measure in ("recovery", "repurchase"):
        n1, k1 = expected[(measure, "reached")]
        n0, k0 = expected[(measure, "not_reached")]
        got = published[measure]
        assert got[0:2] == (n1, k1) and got[5:7] == (n0, k0), measure
        p1, p0 = k1 / n1, k0 / n0
        assert got[2] == pytest.approx(p1)
        assert got[3:5] == pytest.approx(_wilson(k1, n1))
        se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
        assert got[7:10] == pytest.approx((p1 - p0, p1 - p0 - Z * se, p1 - p0 + Z * se))


def test_the_loop_kpis_count_the_cases_of_the_marts(demo_night) -> None:
    """The catalog's loop KPIs at HQ, summed over the months, count the cases fct_cases and
    fct_case_recovery count."""
    published = demo_night.settings.published_path
    hq = (
        "org_level = 'hq' and period_grain = 'month' and channel = 'all' "
        "and segment = 'all' and touchpoint = 'all' and topic = 'all'"
    )

    def kpi(kpi_id: str) -> tuple:
        sql = "select sum(numerator), sum(denominator) from kpi_values where kpi_id = "
        return query(published, f"{sql}'{kpi_id}' and {hq}")[0]

    recovery = {
        row[0]: row[1:]
        for row in query(
            published,
            "select measure, reached_cases, reached_successes, not_reached_cases, "
            f"not_reached_successes from fct_case_recovery where rule_id = '{RULE}'",
        )
    }
    # a rule's recovery: the KPI counts every survey rule's detractor cases; the demo's
    # other survey rule (late deliveries, never worked) has none reached in time
    assert kpi("detractor_recovery_rate") == recovery["recovery"][1::-1]
    assert kpi("follow_up_repurchase_rate") == recovery["repurchase"][1::-1]
    count = "select count(*) filter (where {}), count(*) filter (where {} <> 'pending') "
    cases = " from fct_cases where not is_withdrawn"
    ((closed, judged),) = query(published, count.format("state = 'closed'", "close_sla") + cases)
    assert kpi("close_the_loop_rate") == (closed, judged)
    contact = count.format("first_contact_sla = 'met'", "first_contact_sla")
    ((met, due),) = query(published, contact + cases)
    assert kpi("first_contact_within_sla") == (met, due)


def test_the_demo_rules_follow_up_as_the_demo_ticketing_tool_does() -> None:
    """The demo's simulated ticketing tool works the repository's rules with their SLAs."""
    import yaml

    rules = {
        r["id"]: r
        for r in yaml.safe_load((REPO / "case_rules" / "follow_up.yml").read_text())["case_rules"]
    }
    sla = lambda rule: (rule["sla_hours"]["first_contact"], rule["sla_hours"]["close"])
    assert sla(rules[PLANTED["follow_up_rule"]]) == FOLLOW_UP_SLA_HOURS
    assert sla(rules["repeated_ticket"]) == REPEATED_TICKET_SLA_HOURS
    assert (
        rules[PLANTED["follow_up_rule"]]["recovery_window_days"] == PLANTED["recovery_window_days"]
    )


EVENT_HEADER = ["event_id", "case_id", "event_at", "status", "resolution", "root_cause", "agent_id"]
PLACEBO_RULE = """\
case_rules:
  - id: placebo_callback
    label: Placebo
    description: The same detractors, followed up as other detractors' cases were.
    source: survey_responses
    when: nps <= 6
    owner_level: store
    sla_hours: {first_contact: 48, close: 168}
    carries: [nps]
    effective_from: 2025-01-01
"""


def _case_id(rule: str, key: str) -> str:
    digest = hashlib.md5(f"{rule}|{key}".encode()).hexdigest()
    return digest.translate(str.maketrans("0123456789", "ghijklmnop"))


def test_the_planted_recovery_is_found_and_a_placebo_rule_finds_none(tmp_path: Path) -> None:
    """On the demo at full scale, a second rule opens a case for every detractor too, and
    the ticketing export gets each of its cases the events of another detractor's callback
    case (a seeded shuffle, timed from the case's own answer). Reaching in time then says
    nothing about the customer: its differences must hold 0, while the real rule's lie
    above it."""
    from cxkpi import demo

    rules = shutil.copytree(REPO / "case_rules", tmp_path / "case_rules")
    (rules / "placebo.yml").write_text(PLACEBO_RULE, encoding="utf-8")
    dbt_dir = shutil.copytree(
        REPO / "dbt_project",
        tmp_path / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs"),
    )
    settings = make_settings(tmp_path, case_rules_dir=rules, dbt_project_dir=dbt_dir)
    demo.generate(settings.landing_dir, scale=1)

    responses = _landing_responses(settings.landing_dir)
    detractors = responses[responses["nps"] <= 6].sort_values(["at", "response_id"])
    loop = settings.landing_dir / "loop"
    events = pd.concat(
        [pd.read_csv(p, dtype=str, keep_default_na=False) for p in sorted(loop.glob("*.csv"))]
    ).groupby("case_id")
    keys, opened = detractors["response_id"].tolist(), detractors["at"].tolist()
    order = np.random.default_rng(7).permutation(len(keys))
    rows = []
    for i, j in enumerate(order):
        case_id = _case_id(RULE, keys[i])
        if case_id not in events.groups:
            continue
        for event in events.get_group(case_id).itertuples():
            at = pd.Timestamp(event.event_at) - opened[i] + opened[j]
            if at.date().isoformat() > DEMO_DATE:
                continue  # after the export
            placebo = _case_id("placebo_callback", keys[j])
            moved = [f"P{event.event_id}", placebo, f"{at:%Y-%m-%d %H:%M:%S}"]
            rows.append([*moved, event.status, event.resolution, event.root_cause, event.agent_id])
    with open(loop / "case_events_placebo.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(EVENT_HEADER)
        writer.writerows(rows)

    result = pipeline.run_all(settings, pipeline.RunContext.new("placebo", DEMO_DATE))
    assert "publish" in result.stages, result.error
    got = {
        (row[0], row[1]): row[2:]
        for row in query(
            settings.published_path,
            "select rule_id, measure, reached_cases, not_reached_cases, rate_difference, "
            "difference_ci_low, difference_ci_high from fct_case_recovery",
        )
    }
    assert query(settings.published_path, "select count(*) from fct_case_events_unmatched") == [
        (0,)
    ]
    for measure in ("recovery", "repurchase"):
        reached, not_reached, difference, low, high = got[(RULE, measure)]
        assert low > 0, (measure, difference, low, high)
        reached, not_reached, difference, low, high = got[("placebo_callback", measure)]
        assert reached >= 30 and not_reached >= 30, (measure, reached, not_reached)
        assert low < 0 < high, (measure, difference, low, high)
