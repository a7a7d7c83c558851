"""The gate's cxkpi checks on small hand-made warehouses (real loader, real DuckDB, no dbt).

Each test writes a suite, builds the tables the check reads, and calls ``gate.run_gate``
with explicit context (published file, run id, logical date), as ``pipeline.audit`` does.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from cxkpi import gate
from cxkpi.errors import ConfigError, GateFailed
from cxkpi.loader import load
from cxkpi.sources import parse_source

pytestmark = pytest.mark.integration

SURVEYS = {
    "name": "test_surveys",
    "entity": "survey_responses",
    "path": "surveys/*.csv",
    "columns": {
        "response_id": "Id",
        "channel": "Channel",
        "responded_at": "When",
        "nps": "NPS",
        "comment": "Comment",
    },
    "timestamps": {"format": "%Y-%m-%d %H:%M:%S"},
}
HEADER = "Id,Channel,When,NPS,Comment\n"


def good_rows(prefix: str, n: int, day: str = "2026-11-01") -> str:
    return "".join(f"{prefix}{i},web,{day} 10:00:00,{i % 11},fine\n" for i in range(n))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def suite(directory: Path, checks: list[dict], table: str | None = None, name="s") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    body: dict = {"checks": checks}
    if table:
        body["table"] = table
    (directory / f"{name}.yml").write_text(yaml.safe_dump(body, sort_keys=False))
    return directory


def execute(database: Path, *statements: str) -> None:
    con = duckdb.connect(str(database))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def run(tmp_path: Path, checks: list[dict], table: str | None = None, **context):
    """run_gate on tmp_path/wh.duckdb with one suite; returns the report or the failure."""
    suites = suite(tmp_path / "suites", checks, table)
    try:
        return gate.run_gate(tmp_path / "wh.duckdb", suites, tmp_path / "evidence", **context)
    except GateFailed as failure:
        return failure


@pytest.fixture
def surveys():
    return parse_source(SURVEYS, Path("test_surveys.yml"))


# --- suite format ---------------------------------------------------------------------


def test_suites_hold_expectations_and_checks_with_defaults(tmp_path: Path) -> None:
    suites = suite(
        tmp_path,
        [
            {"expect": "column_values_to_not_be_null", "column": "id"},
            {"check": "orphans", "column": "order_id", "ref_table": "s.o", "ref_column": "id"},
            {"check": "kpi_movement", "max_change": 30, "severity": "warn"},
        ],
        table="marts.t",
    )
    [loaded] = gate.load_suites(suites)
    expectation, orphans, movement = loaded.checks
    assert expectation.expectation == "ExpectColumnValuesToNotBeNull"
    assert orphans.kind == "orphans" and orphans.table == "marts.t"  # the suite's table
    assert orphans.kwargs["max_share"] == 0.0 and orphans.severity == "error"
    assert movement.kwargs["max_change"] == {"default": 30}
    assert movement.kwargs["table"] == "marts.t" and movement.severity == "warn"
    assert movement.kwargs["published_table"] == "kpi_values"  # its own default
    assert [c.label for c in loaded.cxkpi_checks] == [
        "orphans(order_id -> s.o.id)",
        "kpi_movement(default: 30)",
    ]


@pytest.mark.parametrize(
    ("check", "error"),
    [
        ({"check": "row_magic"}, "unknown check kind 'row_magic'; known: ["),
        ({"check": "load_rejects"}, "load_rejects: parameter 'max_share' is required"),
        ({"check": "load_rejects", "max_share": 5}, "'max_share' must be a share between 0"),
        ({"check": "load_rejects", "max_share": 0, "maxshare": 1}, "unknown parameter(s) ['m"),
        ({"check": "volume_change", "table": "t", "max_ratio": 3}, "must be schema.table"),
        ({"check": "volume_change", "table": "a.t", "max_ratio": 0.5}, "a ratio above 1"),
        ({"check": "empty_files", "severity": "fatal"}, "severity must be one of"),
        ({"check": "empty_files", "expect": "x"}, "needs either 'expect"),
    ],
)
def test_a_bad_check_is_named_with_its_file_and_position(tmp_path: Path, check, error) -> None:
    suites = suite(tmp_path, [{"check": "empty_files"}, check])
    with pytest.raises(ConfigError) as failure:
        gate.load_suites(suites)
    assert f"{suites / 's.yml'}: check 2: " in str(failure.value)
    assert error in str(failure.value)


@pytest.mark.parametrize(
    ("check", "error"),
    [
        (
            {"expect": "column_values_to_be_unqiue", "column": "x"},
            (
                "(looked for gx.expectations.ExpectColumnValuesToBeUnqiue); "
                "did you mean 'column_values_to_be_unique'?"
            ),
        ),
        (
            {"expect": "column_values_to_be_in_set", "column": "x", "values": [1]},
            (
                "column_values_to_be_in_set: unknown argument(s) ['values']; "
                "it takes column, condition_parser, mostly, row_condition, value_set"
            ),
        ),
    ],
)
def test_an_expectation_is_checked_against_the_installed_gx_list(
    tmp_path: Path, check, error
) -> None:
    """Without importing GX: the name (with the closest one) and every argument."""
    suites = suite(tmp_path, [check], table="marts.kpi_values")
    with pytest.raises(ConfigError, match=re.escape(f"{suites / 's.yml'}: check 1: ")) as failure:
        gate.load_suites(suites)
    assert error in str(failure.value)


@pytest.mark.integration  # imports Great Expectations (about 8 s)
def test_the_expectation_list_matches_the_installed_great_expectations() -> None:
    """gx_expectations.json is what suites are checked against; regenerate it with
    `python -m cxkpi.gate.gx_catalog` after upgrading GX."""
    from cxkpi.gate import gx_catalog

    assert gx_catalog.CATALOG_FILE.read_text(encoding="utf-8") == gx_catalog.render()


def test_validating_suites_does_not_import_great_expectations() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from pathlib import Path; from cxkpi.gate.suites import load_suites; "
        f"load_suites(Path({str(Path(__file__).resolve().parents[1] / 'expectations')!r})); "
        "print('great_expectations' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "False", result.stderr


def test_repository_suites_load() -> None:
    suites = gate.load_suites(Path(__file__).resolve().parents[1] / "expectations")
    kinds = {c.kind for s in suites for c in s.checks}
    assert set(gate.CHECK_KINDS) <= kinds | {"expect"}


# --- load_rejects and empty_files -------------------------------------------------------


def test_load_rejects_names_source_count_share_and_top_reasons(tmp_path, surveys) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing / "surveys" / "old.csv", HEADER + good_rows("OLD", 5, "2026-10-01"))
    load(warehouse, landing, [surveys], "night-1")
    write(
        landing / "surveys" / "new.csv",
        HEADER
        + good_rows("N", 12)
        + "X1,web,2026-11-01 10:00:00,11,jane.doe@example.com\n"
        + "X2,web,2026-11-01 10:00:00,12,\n"
        + "X3,web,2026-11-01 10:00:00,13,\n"
        + "X4,web,yesterday,7,\n"
        + ",web,2026-11-01 10:00:00,7,\n"
        + "OLD1,web,2026-11-01 10:00:00,7,\n",
    )
    load(warehouse, landing, [surveys], "night-2")
    checks = [
        {"check": "load_rejects", "max_share": 0.0, "severity": "warn"},
        {"check": "load_rejects", "max_share": 0.25},
        {"check": "load_rejects", "max_share": 0.5},
    ]
    failure = run(tmp_path, checks, run_id="night-2")
    assert isinstance(failure, GateFailed)
    report = failure.report
    assert report.summary() == {"passed": 1, "warned": 1, "failed": 1}
    [error] = report.errors
    assert error.table == "raw.load_rejects" and error.unexpected_count == 6
    assert error.check == "load_rejects(max_share=0.25)"
    assert "test_surveys rejected 6 of 18 rows (33.3%, max 25.0%)" in error.message
    # grouped by the loader's reason code, each with its first record's reason
    assert (
        "top reasons: 3x range (e.g. 'nps: 11 is above the maximum 10'), 1x type (e.g. "
        "\"responded_at: 'yesterday' is not a valid timestamp"
    ) in error.message
    assert "1x required (e.g. 'response_id: required value missing')" in error.message
    assert {row["code"] for row in error.sample} <= {"range", "type", "required"}
    assert len(error.sample) == 5 and error.sample[0]["file"] == "new.csv"
    # sampled raw values are shown with personal data masked
    text = str(failure)
    assert "raw.load_rejects: load_rejects(max_share=0.25) [error], 6 rows: test_surveys" in text
    assert "jane.doe@example.com" not in text and "[email]" in text
    # the first night's load is not this run's business
    assert run(tmp_path, checks, run_id="night-1").summary()["failed"] == 0


def test_a_file_redelivered_under_another_name_is_not_counted(tmp_path, surveys) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing / "surveys" / "a.csv", HEADER + good_rows("R", 10))
    load(warehouse, landing, [surveys], "night-1")
    write(landing / "surveys" / "a_copy.csv", HEADER + good_rows("R", 10))
    [copy] = [f for f in load(warehouse, landing, [surveys], "night-2").files if f.rows_read]
    assert copy.rows_rejected == 10  # every row is a duplicate of a.csv's
    report = run(tmp_path, [{"check": "load_rejects", "max_share": 0.0}], run_id="night-2")
    assert report.summary() == {"passed": 1, "warned": 0, "failed": 0}
    observed = report.results[0].observed["sources"]["test_surveys"]
    assert observed["redelivered_files"] == 1 and observed["rows_rejected"] == 0


def test_empty_files_of_the_run_are_flagged(tmp_path, surveys) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing / "surveys" / "a.csv", HEADER + good_rows("R", 3))
    write(landing / "surveys" / "empty.csv", "")
    write(landing / "surveys" / "header_only.csv", HEADER)
    load(warehouse, landing, [surveys], "night-1")
    report = run(tmp_path, [{"check": "empty_files", "severity": "warn"}], run_id="night-1")
    [warning] = report.warnings
    assert warning.unexpected_count == 2
    assert "test_surveys: empty.csv, test_surveys: header_only.csv" in warning.message
    assert {s["status"] for s in warning.sample} == {"empty", "loaded"}


def test_checks_without_their_context_are_skipped_and_counted_as_passed(tmp_path) -> None:
    execute(tmp_path / "wh.duckdb", "create schema marts", "create table marts.t (x int)")
    checks = [
        {"check": "load_rejects", "max_share": 0.0},
        {"check": "freshness", "table": "marts.t", "column": "x"},
        {"check": "volume_change", "table": "marts.t", "max_ratio": 3},
        {"check": "kpi_movement", "max_change": 1},
    ]
    report = run(tmp_path, checks)  # the gate's old signature: no context at all
    assert report.summary() == {"passed": 4, "warned": 0, "failed": 0}
    assert [r.skipped for r in report.results] == [
        "no run_id given: the run's loads are unknown",
        "no logical date given",
        "nothing published yet",
        "nothing published yet",
    ]


# --- freshness --------------------------------------------------------------------------


@pytest.fixture
def responses(tmp_path: Path) -> Path:
    execute(
        tmp_path / "wh.duckdb",
        "create schema staging",
        "create table staging.responses (id varchar, responded_at timestamp)",
        """insert into staging.responses values ('a', '2026-10-30 23:59:00'),
               ('b', '2026-10-31 08:00:00'), ('garbled', '2099-01-01 00:00:00')""",
    )
    return tmp_path


@pytest.mark.parametrize(
    ("logical_date", "lag", "fresh"),
    [("2026-10-31", 0, True), ("2026-11-02", 2, True), ("2026-11-02", 1, False)],
)
def test_freshness_wants_the_logical_date_minus_the_lag(responses, logical_date, lag, fresh):
    check = {"check": "freshness", "table": "staging.responses", "column": "responded_at"}
    outcome = run(responses, [{**check, "max_lag_days": lag}], logical_date=logical_date)
    assert isinstance(outcome, gate.GateReport) == fresh
    if not fresh:
        text = str(outcome)
        assert "staging.responses: freshness(responded_at) [error]: latest responded_at is " in text
        assert (
            "2026-10-31 08:00:00, 2 day(s) before the logical date 2026-11-02 (allowed lag:" in text
        )
        assert "1 value(s) after 2026-11-04 ignored: is a source file missing?" in text


def test_freshness_of_an_empty_table_fails(tmp_path: Path) -> None:
    execute(tmp_path / "wh.duckdb", "create schema s", "create table s.t (seen_at timestamp)")
    failure = run(
        tmp_path,
        [{"check": "freshness", "table": "s.t", "column": "seen_at"}],
        logical_date=date(2026, 1, 1),
    )
    assert "no seen_at value at all up to the logical date 2026-01-01" in str(failure)


def test_a_missing_table_fails_the_check(tmp_path: Path) -> None:
    execute(tmp_path / "wh.duckdb", "create schema s")
    failure = run(
        tmp_path, [{"check": "orphans", "table": "s.t", "column": "k", "ref_table": "s.r",
                    "ref_column": "k"}],
    )  # fmt: skip
    assert "s.t: orphans(k -> s.r.k) [error]: table s.t does not exist in the warehouse" in str(
        failure
    )


# --- against the last published version --------------------------------------------------

KPI_COLUMNS = (
    "kpi_id varchar, period_grain varchar, period_start date, org_level varchar, "
    "org_level_depth integer, channel varchar, segment varchar, touchpoint varchar, "
    "topic varchar, value double, unit varchar, n bigint, is_reliable boolean"
)


def kpi_rows(values: dict[tuple[str, str], float | None], unreliable=()) -> str:
    rows = []
    for (kpi, month), value in values.items():
        unit = "points" if kpi == "nps" else "percent"
        reliable = "false" if (kpi, month) in unreliable else "true"
        rows.append(
            f"('{kpi}', 'month', date '{month}-01', 'hq', 1, 'all', 'all', 'all', 'all', "
            f"{'null' if value is None else value}, '{unit}', 60, {reliable})"
        )
    # a slice that must be ignored: a region, and a week
    rows.append(
        "('nps', 'month', date '2026-09-01', 'region', 2, 'all', 'all', 'all', 'all', 99, "
        "'points', 60, true)"
    )
    rows.append(
        "('nps', 'week', date '2026-09-07', 'hq', 1, 'all', 'all', 'all', 'all', -99, "
        "'points', 60, true)"
    )
    return ", ".join(rows)


def publish_version(path: Path, version: int, row_counts: dict, kpis: str | None = None) -> None:
    """A published version as the publisher leaves it: the archive's Parquet files (what
    the gate compares with) and latest.json naming it."""
    folder = path.parent / "versions" / f"v{version:06d}"
    folder.mkdir(parents=True)
    statements = [
        "create table publish_log (version integer, run_id varchar, row_counts varchar)",
        f"insert into publish_log values ({version - 1}, 'older', '{{}}')",
        f"insert into publish_log values ({version}, 'last', '{json.dumps(row_counts)}')",
        f"copy publish_log to '{folder / 'publish_log.parquet'}' (format parquet)",
    ]
    if kpis:
        statements += [
            f"create table kpi_values ({KPI_COLUMNS})",
            f"insert into kpi_values values {kpis}",
            f"copy kpi_values to '{folder / 'kpi_values.parquet'}' (format parquet)",
        ]
    execute(path.parent / "scratch.duckdb", *statements)
    latest = {"version": version, "path": f"versions/{folder.name}"}
    (path.parent / "latest.json").write_text(json.dumps(latest))


def warehouse_kpis(tmp_path: Path, kpis: str, extra: int = 0) -> None:
    execute(
        tmp_path / "wh.duckdb",
        "create schema marts",
        f"create table marts.kpi_values ({KPI_COLUMNS})",
        f"insert into marts.kpi_values values {kpis}",
        f"insert into marts.kpi_values select * from marts.kpi_values limit {extra}",
    )


@pytest.mark.parametrize(("published_rows", "passes"), [(4, True), (1, False), (13, False)])
def test_volume_change_against_the_last_published_row_count(tmp_path, published_rows, passes):
    warehouse_kpis(tmp_path, kpi_rows({("nps", "2026-09"): 1.0, ("nps", "2026-10"): 2.0}))
    published = tmp_path / "published.duckdb"
    publish_version(published, 7, {"kpi_values": published_rows})
    check = {"check": "volume_change", "table": "marts.kpi_values", "max_ratio": 3}
    outcome = run(tmp_path, [check], published_path=published)
    assert isinstance(outcome, gate.GateReport) == passes
    if not passes:
        ratio = 4 / published_rows
        assert (
            f"marts.kpi_values: volume_change(max_ratio=3) [error], 4 rows: 4 rows vs "
            f"{published_rows} in published version 7 (x{ratio:.2f}; allowed between x0.33 and x3)"
        ) in str(outcome)


def test_volume_change_skips_a_table_the_last_version_did_not_publish(tmp_path) -> None:
    warehouse_kpis(tmp_path, kpi_rows({("nps", "2026-10"): 2.0}))
    publish_version(tmp_path / "p.duckdb", 1, {"other": 5})
    check = {"check": "volume_change", "table": "marts.kpi_values", "max_ratio": 3}
    report = run(tmp_path, [check], published_path=tmp_path / "p.duckdb")
    assert report.results[0].skipped == "kpi_values is not in the last published version"


def test_kpi_movement_names_kpi_period_old_and_new(tmp_path: Path) -> None:
    before = {
        ("nps", "2026-08"): 10.0,
        ("nps", "2026-09"): 8.0,
        ("nps", "2026-10"): 12.0,
        ("csat", "2026-10"): 80.0,
        ("ces_share", "2026-10"): 50.0,
    }
    after = {
        **before,
        ("nps", "2026-09"): 100.0,  # a closed month rewritten
        ("nps", "2026-08"): 30.0,  # moved, but within 30 points
        ("csat", "2026-10"): 40.0,  # moved, and unreliable now: not compared
        ("ces_share", "2026-10"): 0.0,  # not in the list of KPIs
    }
    warehouse_kpis(tmp_path, kpi_rows(after, unreliable={("csat", "2026-10")}))
    publish_version(tmp_path / "p.duckdb", 3, {}, kpi_rows(before))
    check = {"check": "kpi_movement", "kpis": ["nps", "csat"], "max_change": {"points": 30}}
    failure = run(tmp_path, [check], published_path=tmp_path / "p.duckdb")
    [error] = failure.report.errors
    assert error.table == "marts.kpi_values" and error.unexpected_count == 1
    assert error.message == ("1 KPI value(s) moved: nps 2026-09: 8 -> 100 points, moved 92.0 > 30")
    assert error.sample == [
        {
            "kpi": "nps",
            "comparison": "same month",
            "period": "2026-09-01",
            "published_period": "2026-09-01",
            "old": 8.0,
            "new": 100.0,
            "unit": "points",
            "max_change": 30,
        }
    ]


def test_kpi_movement_follows_the_catalog_when_given_levels_of_the_kpi_tree(tmp_path) -> None:
    """kpi_levels: [goal, outcome] compares the catalog's KPIs at those levels, whatever
    their ids: a company without NPS needs no edit of the suite."""
    before = {("csat", "2026-10"): 80.0, ("orders_share", "2026-10"): 50.0}
    after = {("csat", "2026-10"): 40.0, ("orders_share", "2026-10"): 0.0}
    warehouse_kpis(tmp_path, kpi_rows(after))
    execute(
        tmp_path / "wh.duckdb",
        "create schema intermediate",
        "create table intermediate.int_kpi__definitions as select * from (values"
        " ('csat', 'outcome'), ('orders_share', 'operational')) as t(kpi_id, kpi_level)",
    )
    publish_version(tmp_path / "p.duckdb", 3, {}, kpi_rows(before))
    check = {"check": "kpi_movement", "kpi_levels": ["goal", "outcome"], "max_change": 30}
    failure = run(tmp_path, [check], published_path=tmp_path / "p.duckdb")
    [error] = failure.report.errors
    assert error.message == "1 KPI value(s) moved: csat 2026-10: 80 -> 40 percent, moved 40.0 > 30"
    check["kpi_levels"] = ["goal"]
    report = run(tmp_path, [check], published_path=tmp_path / "p.duckdb")
    assert report.results[0].skipped == "the catalog has no KPI at levels ['goal']"


def test_kpi_movement_compares_the_new_latest_month_with_the_previous_one(tmp_path) -> None:
    before = {("nps", "2026-09"): 10.0, ("nps", "2026-10"): 12.0, ("csat", "2026-10"): 80.0}
    after = {**before, ("nps", "2026-11"): -40.0, ("csat", "2026-11"): 85.0}
    warehouse_kpis(tmp_path, kpi_rows(after))
    publish_version(tmp_path / "p.duckdb", 3, {}, kpi_rows(before))
    check = {"check": "kpi_movement", "max_change": {"points": 30, "percent": 15}}
    failure = run(tmp_path, [check], published_path=tmp_path / "p.duckdb")
    assert "nps 2026-11: 12 -> -40 points (published latest 2026-10), moved 52.0 > 30" in str(
        failure
    )
    assert failure.report.errors[0].unexpected_count == 1  # csat moved 5 < 15


# --- pii_in_published, withheld_texts and orphans -------------------------------------------


def test_pii_in_published_scans_every_text_column_and_shows_findings_masked(tmp_path) -> None:
    execute(
        tmp_path / "wh.duckdb",
        "create schema marts",
        "create table marts.fct_verbatims (response_id varchar, comment varchar)",
        """insert into marts.fct_verbatims values
           ('R1', 'Write to max.mustermann@example.com please'),
           ('R2', 'Ruf an: +49 151 1234567'),
           ('R3', 'Bitte 0171/7654321 anrufen'),
           ('R4', 'masked: [email] and [phone]'),
           ('R5', 'order 4711-0815-42 arrived 2026-10-31 after 48 hours, 3.5 stars'),
           ('R6', null)""",
        "create table marts.kpi_values (kpi_value_id varchar, touchpoint varchar, n int)",
        """insert into marts.kpi_values values
           ('nps|month|2026-10-01|web|all', 'all', 3),
           ('nps|month|2026-10-01|web|ann@example.org', 'ann@example.org', 1),
           ('nps|month|2026-11-01|web|all', 'all', 2)""",
        "create table marts.clean (id varchar, label varchar)",
        "insert into marts.clean values ('S001', 'Store Berlin'), ('2026-10-31', 'ok')",
    )
    checks = [{"check": "pii_in_published"}]
    failure = run(tmp_path, checks)
    [error] = failure.report.errors
    assert error.check == "pii_in_published" and error.table == "published tables"
    # R1-R3, and the kpi_values row counted once per column that holds it
    assert error.unexpected_count == 5
    assert "marts.fct_verbatims.comment, marts.kpi_values.kpi_value_id, " in error.message
    assert {(s["table"], s["column"]) for s in error.sample} == {
        ("marts.fct_verbatims", "comment"),
        ("marts.kpi_values", "kpi_value_id"),
        ("marts.kpi_values", "touchpoint"),
    }
    text = str(failure)
    for secret in ("mustermann", "1234567", "7654321", "ann@"):
        assert secret not in text
    observed = error.observed["columns"]
    # the prefilter (SQL) proves most values clean; only candidates reach the detector
    assert observed["marts.clean.label"] == {"candidates": 0, "flagged": 0}
    assert observed["marts.kpi_values.kpi_value_id"]["candidates"] == 3  # 2 dates + address
    # the publish list, when given, is what is scanned
    report = gate.run_gate(
        tmp_path / "wh.duckdb", tmp_path / "suites", published_tables=["marts.clean"]
    )
    assert report.summary() == {"passed": 1, "warned": 0, "failed": 0}


def test_withheld_texts_warn_and_never_block(tmp_path) -> None:
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    surveys = parse_source(SURVEYS, tmp_path / "src.yml")
    write(
        landing / "surveys" / "a.csv",
        HEADER + good_rows("R", 3) + f"W1,web,2026-11-01 10:00:00,7,{'long story ' * 2000}\n",
    )
    load(warehouse, landing, [surveys], "night-1")
    checks = [{"check": "withheld_texts", "severity": "warn"}]
    report = run(tmp_path, checks, run_id="night-1")
    [warning] = report.warnings
    assert warning.unexpected_count == 1 and warning.sample[0]["record"] == 4
    assert "withheld" in warning.message
    assert run(tmp_path, checks, run_id="night-2").summary()["warned"] == 0


def test_mask_pii() -> None:
    assert gate.mask_pii("a.b@c.de or 0151 23456789, ok") == "[email] or [phone], ok"


def test_orphans_share_and_sample(tmp_path: Path) -> None:
    execute(
        tmp_path / "wh.duckdb",
        "create schema staging",
        "create table staging.orders (order_id varchar)",
        "insert into staging.orders values ('O1'), ('O2')",
        "create table staging.responses (response_id varchar, order_id varchar)",
        """insert into staging.responses values ('R1', 'O1'), ('R2', 'O2'), ('R3', 'O9'),
               ('R4', null), ('R5', 'O8')""",
    )
    base = {
        "check": "orphans",
        "table": "staging.responses",
        "column": "order_id",
        "ref_table": "staging.orders",
        "ref_column": "order_id",
        "key": "response_id",
    }
    report = run(tmp_path, [{**base, "max_share": 0.5, "severity": "error"}])
    assert report.summary() == {"passed": 1, "warned": 0, "failed": 0}
    report = run(tmp_path, [{**base, "severity": "warn"}])
    [warning] = report.warnings
    assert warning.unexpected_count == 2
    assert warning.message == (
        "2 of 4 rows (50.0%, max 0.0%) have order_id values not found in staging.orders.order_id"
    )
    assert warning.sample == [
        {"key": "R3", "order_id": "O9"},
        {"key": "R5", "order_id": "O8"},
    ]


def catalog_tables(database: Path) -> None:
    """The catalog's fact tables as cxkpi compile builds them, and the data status dbt
    builds, for five KPIs and a goal; fcr has no data (the company has no tickets)."""
    execute(
        database,
        "create schema if not exists intermediate",
        "create schema if not exists marts",
        """create table intermediate.int_kpi__definitions as select * from (values
               ('nps', 'kpi', -100.0, 100.0), ('csat', 'kpi', 0.0, 100.0),
               ('effort', 'kpi', 1.0, 7.0), ('orders', 'kpi', null, null),
               ('fcr', 'kpi', 0.0, 100.0), ('grow', 'goal', null, null))
           as d(kpi_id, kind, value_min, value_max)""",
        # display_order: the level's place top-down (1: the top, hq)
        """create table intermediate.int_kpi__org_levels as select * from (values
               ('nps', 'hq', 1), ('nps', 'store', 2), ('csat', 'hq', 1), ('effort', 'store', 2),
               ('orders', 'hq', 1), ('fcr', 'hq', 1), ('grow', 'hq', 1))
           as l(kpi_id, org_level, display_order)""",
        """create table intermediate.int_kpi__data_status as select * from (values
               ('nps', true, null), ('csat', true, null), ('effort', true, null),
               ('orders', true, null), ('fcr', false, 'no data: tickets has no rows'),
               ('grow', true, null))
           as s(kpi_id, has_data, no_data_reason)""",
        """create table marts.kpi_values as select * from (values
               ('nps', 'month', date '2026-10-01', 'hq', 'HQ', 31.0),
               ('nps', 'month', date '2026-10-01', 'store', 'S1', 140.0),
               ('csat', 'month', date '2026-10-01', 'hq', 'HQ', null),
               ('effort', 'month', date '2026-10-01', 'store', 'S1', 0.5),
               ('orders', 'month', date '2026-10-01', 'hq', 'HQ', 12000.0))
           as v(kpi_id, period_grain, period_start, org_level, org_unit_id, value)""",
    )


NO_TICKETS = (
    "1 KPI(s) have no data and are not expected (no_data, see kpi_alignment_report): "
    "fcr (no data: tickets has no rows)"
)


def test_kpis_present_follows_the_catalog_and_names_the_missing(tmp_path: Path) -> None:
    """Which KPIs must have a value comes from the catalog's declared levels, not the
    suite: csat (declared at HQ, with data, value null) is named and fails the gate;
    fcr (at HQ, no data at all) is named as no_data, not failed; effort (store only) and
    the goal are not expected at HQ."""
    catalog_tables(tmp_path / "wh.duckdb")
    failure = run(tmp_path, [{"check": "kpis_present"}], table="marts.kpi_values")
    assert isinstance(failure, GateFailed)
    [failed] = failure.report.errors
    assert failed.message == f"1 of 3 KPIs have no value at the top level: csat; {NO_TICKETS}"
    assert failed.observed == {
        "kpis_expected": 3,
        "kpis_without_value": ["csat"],
        "kpis_without_data": {"fcr": "no data: tickets has no rows"},
    }
    assert "kpis_present(top level)" in str(failure) and "csat" in str(failure)
    store = run(tmp_path, [{"check": "kpis_present", "org_level": "store"}], "marts.kpi_values")
    assert store.summary() == {"passed": 1, "warned": 0, "failed": 0}
    assert store.notes == []


def test_kpis_present_passes_without_data_and_says_so(tmp_path: Path, caplog) -> None:
    """A company without tickets: fcr has no data and no value, the gate passes and the
    console (the log at warning level) names fcr with its reason. Once fcr has data (the
    first tickets arrive) and still no value, the same check fails."""
    database = tmp_path / "wh.duckdb"
    catalog_tables(database)
    execute(database, "update marts.kpi_values set value = 70.0 where kpi_id = 'csat'")
    with caplog.at_level(logging.WARNING, logger="cxkpi.gate"):
        report = run(tmp_path, [{"check": "kpis_present"}], table="marts.kpi_values")
    assert report.summary() == {"passed": 1, "warned": 0, "failed": 0}
    [note] = report.notes
    assert note.message == NO_TICKETS
    assert (
        f"quality gate note: marts.kpi_values: kpis_present(top level): {NO_TICKETS}" in caplog.text
    )
    execute(database, "update intermediate.int_kpi__data_status set has_data = true")
    failure = run(tmp_path, [{"check": "kpis_present"}], table="marts.kpi_values")
    assert isinstance(failure, GateFailed)
    assert failure.report.errors[0].message == "1 of 4 KPIs have no value at the top level: fcr"


def test_kpi_values_in_bounds_reads_each_kpis_range_from_the_catalog(tmp_path: Path) -> None:
    catalog_tables(tmp_path / "wh.duckdb")
    report = run(
        tmp_path, [{"check": "kpi_values_in_bounds", "severity": "warn"}], "marts.kpi_values"
    )
    [warning] = report.warnings
    assert warning.unexpected_count == 2  # NPS 140 and effort 0.5; the count is unbounded
    assert warning.message == (
        "2 of 3 values are outside the range their KPI can take (effort, nps)"
    )
    assert [(r["kpi_id"], r["value"], r["value_max"]) for r in warning.sample] == [
        ("nps", 140.0, 100.0),
        ("effort", 0.5, 7.0),
    ]


# --- the report, the evidence, the notifiers ---------------------------------------------


def test_report_counts_and_evidence_cover_both_kinds(tmp_path: Path) -> None:
    execute(
        tmp_path / "wh.duckdb",
        "create schema marts",
        "create table marts.t (id integer, note varchar)",
        "insert into marts.t values (1, 'call 0151 2345678'), (2, null)",
    )
    checks = [
        {"expect": "column_values_to_not_be_null", "column": "id"},
        {"expect": "column_values_to_not_be_null", "column": "note", "severity": "warn"},
        {"check": "pii_in_published", "tables": ["marts.t"]},
    ]
    failure = run(tmp_path, checks, table="marts.t", run_id="r1", logical_date="2026-11-01")
    assert failure.report.summary() == {"passed": 1, "warned": 1, "failed": 1}
    assert [f["check"] for f in failure.failures] == ["pii_in_published"]
    evidence = json.loads((tmp_path / "evidence" / "gate.json").read_text())
    assert evidence["status"] == "failed" and evidence["run_id"] == "r1"
    assert evidence["summary"] == {"passed": 1, "warned": 1, "failed": 1}
    assert [r["check"] for r in evidence["results"]] == [
        "column_values_to_not_be_null(id)",
        "column_values_to_not_be_null(note)",
        "pii_in_published",
    ]
    assert "2345678" not in json.dumps(evidence)
    assert (tmp_path / "evidence" / "s.json").exists()  # GX's own result, as before


def test_notify_calls_every_notifier_and_survives_a_broken_one(tmp_path, caplog) -> None:
    execute(tmp_path / "wh.duckdb", "create schema marts", "create table marts.t (id int)")
    failure = run(
        tmp_path,
        [{"expect": "table_row_count_to_be_between", "min_value": 1}],
        table="marts.t",
        run_id="r9",
        logical_date="2026-11-01",
    )
    received = []

    def broken(notice, settings):
        raise OSError("mail server down")

    with caplog.at_level(logging.INFO, logger="cxkpi.gate"):
        notice = gate.notify(
            failure, "settings", notifiers=[broken, lambda n, s: received.append((n, s))]
        )
    assert received == [(notice, "settings")]
    assert notice.status == "failed" and notice.run_id == "r9"
    assert notice.subject == (
        "cxkpi quality gate failed: run r9 (logical date 2026-11-01): 1 failed, 0 warned, 0 passed"
    )
    assert "- marts.t: table_row_count_to_be_between [error]" in notice.text
    assert "gate notifier" in caplog.text and "mail server down" in caplog.text


def test_default_notifier_logs_at_the_level_of_the_verdict(tmp_path, caplog) -> None:
    execute(tmp_path / "wh.duckdb", "create schema marts", "create table marts.t (id int)")
    report = run(
        tmp_path,
        [{"expect": "table_row_count_to_be_between", "min_value": 1, "severity": "warn"}],
        table="marts.t",
    )
    assert gate.NOTIFIERS == [gate.log_notifier]
    with caplog.at_level(logging.INFO, logger="cxkpi.gate"):
        gate.notify(report)
    [record] = [r for r in caplog.records if r.message.startswith("cxkpi quality gate")]
    assert record.levelno == logging.WARNING and "warned" in record.message


def test_example_notifiers_stay_quiet_on_a_passing_gate() -> None:
    passed = gate.GateNotice("passed", {"passed": 3}, "r1", "2026-11-01", (), None)
    # status "passed" is not in their statuses: neither opens a connection
    gate.email_notifier("smtp.invalid", "a@invalid", ["b@invalid"])(passed, None)
    gate.webhook_notifier("http://webhook.invalid/x")(passed, None)


def test_a_batch_holds_only_the_columns_its_expectations_read() -> None:
    """The gate reads a mart into pandas for GX: only the columns the expectations name
    (a row count needs none); every column when an expectation is about the columns or
    filters rows with a row_condition (which may name any column)."""
    from cxkpi.gate.batches import expectation_columns
    from cxkpi.gate.suites import Check

    def checks(*made: tuple[str, dict]) -> list[Check]:
        return [Check(name, kwargs, "error", name) for name, kwargs in made]

    columns = expectation_columns(
        checks(
            ("ExpectColumnValuesToNotBeNull", {"column": "value"}),
            ("ExpectCompoundColumnsToBeUnique", {"column_list": ["kpi_id", "period"]}),
            ("ExpectTableRowCountToBeBetween", {"min_value": 1}),
            ("ExpectColumnPairValuesAToBeGreaterThanB", {"column_A": "hi", "column_B": "lo"}),
        )
    )
    assert columns == '"hi", "kpi_id", "lo", "period", "value"'
    only_counted = checks(("ExpectTableRowCountToBeBetween", {"min_value": 1}))
    assert expectation_columns(only_counted) == "true as row_counted"
    about_columns = checks(("ExpectTableColumnsToMatchSet", {"column_set": ["a"]}))
    assert expectation_columns(only_counted + about_columns) == "*"
    filtered = checks(
        ("ExpectColumnValuesToNotBeNull", {"column": "value", "row_condition": 'grain=="day"'})
    )
    assert expectation_columns(filtered) == "*"


def test_the_early_load_gate_runs_only_the_checks_of_the_load(tmp_path: Path, surveys) -> None:
    """check_load (right after loading) runs load_rejects and empty_files and fails on too
    many rejects; checks of what dbt builds (here a freshness check of a staging table
    that does not exist yet) wait for the full gate."""
    landing, warehouse = tmp_path / "landing", tmp_path / "wh.duckdb"
    write(landing / "surveys" / "new.csv", HEADER + good_rows("N", 2) + "X1,web,never,7,\n")
    load(warehouse, landing, [surveys], "night-1")
    checks = [
        {"check": "load_rejects", "max_share": 0.05},
        {"check": "empty_files", "severity": "warn"},
        {"check": "freshness", "table": "staging.stg_x", "column": "at", "max_lag_days": 2},
    ]
    failure = run(tmp_path, checks, run_id="night-1", scope="load")
    assert isinstance(failure, GateFailed)
    assert [r.check for r in failure.report.results] == [
        "load_rejects(max_share=0.05)",
        "empty_files",
    ]
    assert failure.report.summary() == {"passed": 1, "warned": 0, "failed": 1}


def test_a_large_table_is_validated_in_partitions_with_the_same_verdicts(
    tmp_path: Path, monkeypatch
) -> None:
    """Above CXKPI_GATE_PARTITION_ROWS rows GX validates a table in partitions (row-wise
    expectations by rows, uniqueness by the hash of its columns, the row count on one
    column): every verdict, unexpected count and sample size is that of the whole table."""
    execute(
        tmp_path / "wh.duckdb",
        "create schema marts",
        """create table marts.t as
           select 'k' || (range % 4990) as id, range % 7 as n,
                  case when range % 101 = 0 then null else 'ok' end as status,
                  case when range % 3 = 0 then 'bad' else 'day' end as grain
           from range(5000)""",
    )
    checks = [
        {"expect": "table_row_count_to_be_between", "min_value": 1, "max_value": 4000},
        {"expect": "column_values_to_be_unique", "column": "id"},
        {"expect": "compound_columns_to_be_unique", "column_list": ["id", "n"]},
        {"expect": "column_values_to_not_be_null", "column": "status"},
        {"expect": "column_values_to_be_in_set", "column": "grain", "value_set": ["day"]},
        {"expect": "column_values_to_be_between", "column": "n", "min_value": 0, "max_value": 5},
        {"expect": "column_values_to_not_be_null", "column": "status", "mostly": 0.5},
        {"expect": "column_mean_to_be_between", "column": "n", "min_value": 2, "max_value": 4},
    ]

    def verdicts(evidence: str) -> list[tuple]:
        suites = suite(tmp_path / "suites", checks, "marts.t")
        try:
            report = gate.run_gate(tmp_path / "wh.duckdb", suites, tmp_path / evidence)
        except GateFailed as failure:
            report = failure.report
        return [(r.check, r.success, r.unexpected_count, len(r.sample)) for r in report.results]

    whole = verdicts("whole")
    monkeypatch.setenv("CXKPI_GATE_PARTITION_ROWS", "700")
    partitioned = verdicts("parts")
    assert partitioned == whole
    assert [v[1] for v in whole] == [False, False, True, False, False, False, True, True]
    files = sorted(p.name for p in (tmp_path / "parts").glob("s*.json"))
    assert "s.rows.1-of-8.json" in files and "s.by-id.8-of-8.json" in files
    assert {"s.json", "s.row-count.json"} <= set(files)  # whole-table ones, the row count
