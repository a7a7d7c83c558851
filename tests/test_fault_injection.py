"""Fault injection: a bad night is blocked (error) or flagged (warn), never published silently.

One demo project (scale 0.2) is loaded, built and published once (the baseline, logical
date 2026-10-31). Each fault is then a night of its own: a private copy of the baseline,
one fault injected into the landing files (mostly a new survey export for 2026-11-01, so
it is a new load), and the whole pipeline (``pipeline.run_all``). Every test asserts

(a) the publish is blocked (a check with severity error) or flagged (warn) as designed,
(b) when blocked, ``published/cx.duckdb`` is byte-identical to before,
(c) the failure message or gate evidence names the check that caught the fault,
(d) no input row was lost: for every file of the night, rows read = loaded + rejected in
    ``raw.load_files``, and those counts match the rows really in ``raw.*`` and
    ``raw.load_rejects`` (and the records written, where the fault leaves them countable).

Each night runs in the pytest process (worker), in one fixed folder per worker, restored
from the baseline before every night: dbt's partial parse stays valid there, and the
loader's file registry (keyed by path relative to the landing folder) holds for the copy
as is, so only the night's files are new loads. The tests are grouped in classes by what
catches the fault; pytest-xdist (``--dist loadscope``) hands each class to a worker, so
the two workers share the nights and the baseline is built once for both.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import make_settings, shared_folder

from cxkpi import demo, pipeline
from cxkpi.errors import CxkpiError

pytestmark = pytest.mark.integration

BASELINE_DATE = "2026-10-31"
NIGHT_DATE = "2026-11-01"
NIGHT_FILE = "responses_2026-11-01.csv"


# === the faults =============================================================================


def october(landing: Path) -> pd.DataFrame:
    return pd.read_csv(
        landing / "surveys" / "responses_2026-10.csv", dtype=str, keep_default_na=False
    )


def night_of_responses(landing: Path, n: int = 40) -> pd.DataFrame:
    """A plausible export for the night: n October-like responses, new ids, dated 1 Nov."""
    night = october(landing).head(n).reset_index(drop=True)
    night["ResponseId"] = [f"NIGHT-{i:04d}" for i in range(n)]
    night["RecordedDate"] = [f"{NIGHT_DATE} {8 + i % 12:02d}:{i % 60:02d}:00" for i in range(n)]
    return night


def write_responses(landing: Path, frame: pd.DataFrame, name: str = NIGHT_FILE) -> dict:
    frame.to_csv(landing / "surveys" / name, index=False)
    return {name: len(frame)}


def night_of_orders(landing: Path, day: str, n: int = 12) -> pd.DataFrame:
    orders = pd.read_parquet(landing / "orders" / "orders_2026-10.parquet").head(n)
    orders["order_id"] = [f"NIGHT-O{i:03d}" for i in range(n)]
    orders["ordered_at"] = pd.Timestamp(f"{day} 09:00:00")
    return orders


def out_of_range_scores(landing: Path) -> dict:
    night = night_of_responses(landing)
    night.loc[0:3, "NPS"] = ["11", "12", "-1", "15"]
    night.loc[4, "Effort"] = "9"
    return write_responses(landing, night)


def null_keys(landing: Path) -> dict:
    night = night_of_responses(landing)
    night.loc[7, "ResponseId"] = ""
    return write_responses(landing, night)


def duplicate_response_ids(landing: Path) -> dict:
    night = night_of_responses(landing)
    night.loc[0:2, "ResponseId"] = october(landing)["ResponseId"].head(3).to_list()
    night.loc[3:4, "ResponseId"] = "NIGHT-0005"  # and twice within the file
    return write_responses(landing, night)


def orphan_reviews(landing: Path) -> dict:
    night = night_of_responses(landing)
    night.loc[0:2, "OrderId"] = ["O-404-1", "O-404-2", "O-404-3"]
    return write_responses(landing, night)


def missing_survey_file(landing: Path) -> dict:
    # three nights later: the shop exported its orders, the survey tool nothing
    orders = night_of_orders(landing, "2026-11-03")
    orders.to_parquet(landing / "orders" / "orders_2026-11-03.parquet", index=False)
    return {"orders_2026-11-03.parquet": len(orders)}


def empty_file(landing: Path) -> dict:
    (landing / "surveys" / NIGHT_FILE).write_bytes(b"")
    return {NIGHT_FILE: 0}


def garbled_file(landing: Path) -> dict:
    """Junk bytes (not UTF-8) in the middle, and the transfer cut off mid-record."""
    lines = night_of_responses(landing).to_csv(index=False).encode("utf-8").split(b"\n")
    junk = [bytes(range(128 + i, 256, 3)) + b",\xff,\xfe" for i in range(6)]
    blob = b"\n".join([*lines[:20], *junk, *lines[20:]]).rstrip(b"\n")
    (landing / "surveys" / NIGHT_FILE).write_bytes(blob[: blob.rfind(b"\n") + 40])
    return {}  # how many records a garbled file holds is what the loader decides


def schema_change(landing: Path) -> dict:
    night = night_of_responses(landing).rename(columns={"NPS": "LikelihoodToRecommend"})
    return write_responses(landing, night)


def volume_spike(landing: Path) -> dict:
    """The whole survey history exported ten times over, with fresh ids."""
    history = pd.concat(
        pd.read_csv(path, dtype=str, keep_default_na=False)
        for path in sorted((landing / "surveys").glob("responses_*.csv"))
    )
    spike = pd.concat([history] * 10, ignore_index=True)
    spike["ResponseId"] = [f"SPIKE-{i:06d}" for i in range(len(spike))]
    spike["RecordedDate"] = f"{NIGHT_DATE} 10:00:00"
    return write_responses(landing, spike)


def kpi_shift(landing: Path) -> dict:
    """September re-exported with every NPS answer rewritten to 10."""
    september = pd.read_csv(
        landing / "surveys" / "responses_2026-09.csv", dtype=str, keep_default_na=False
    )
    september["NPS"] = "10"
    return write_responses(landing, september, "responses_2026-09.csv")


def unparseable_timestamp(landing: Path) -> dict:
    night = night_of_responses(landing)
    night.loc[5, "RecordedDate"] = "2026-11-01T25:61:00"
    return write_responses(landing, night)


def text_in_numeric_column(landing: Path) -> dict:
    night = night_of_responses(landing)
    night.loc[0:3, "NPS"] = ["ten", "n/a", "7,5", "neun"]
    return write_responses(landing, night)


def truncated_parquet(landing: Path) -> dict:
    path = landing / "orders" / "orders_2026-11-01.parquet"
    night_of_orders(landing, NIGHT_DATE).to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return {}


def missing_required_source(landing: Path) -> dict:
    (landing / "org" / "org_units.csv").unlink()
    return {}


@dataclass(frozen=True)
class Fault:
    inject: Callable[[Path], dict]
    logical_date: str = NIGHT_DATE


FAULTS = {
    f.inject.__name__: f
    for f in (
        Fault(volume_spike),  # the longest night first
        Fault(out_of_range_scores),
        Fault(null_keys),
        Fault(duplicate_response_ids),
        Fault(orphan_reviews),
        Fault(missing_survey_file, logical_date="2026-11-03"),
        Fault(empty_file),
        Fault(garbled_file),
        Fault(schema_change),
        Fault(kpi_shift),
        Fault(unparseable_timestamp),
        Fault(text_in_numeric_column),
        Fault(truncated_parquet),
        Fault(missing_required_source),
    )
}


# === one night ==============================================================================


@dataclass
class Night:
    """What a night left behind."""

    fault: str
    run_id: str
    error: str | None  # "ExceptionType: message" if run_all raised
    stages: list[str]  # the stages that completed
    published_before: str  # sha256 of published/cx.duckdb (and of latest.json)
    published_after: str
    seconds: float
    versions: list[int]
    audit_summary: dict | None  # of the last published version
    gate: dict | None  # runs/<run_id>/gate/gate.json
    files: list[dict] = field(default_factory=list)  # raw.load_files of the run, and more
    written: dict = field(default_factory=dict)  # file name -> records the fault wrote

    def gate_lines(self, status: str) -> list[str]:
        """describe() of the checks that failed with severity error or warn."""
        severity = {"failed": "error", "warned": "warn"}[status]
        return [
            r["describe"]
            for r in (self.gate or {}).get("results", [])
            if not r["success"] and r["severity"] == severity
        ]


def sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def restore(baseline: Path, slot: Path) -> None:
    """Make ``slot`` the baseline project again, as if it had always lived at ``slot``."""
    for part in baseline.iterdir():
        target = slot / part.name
        if part.name == "dbt_target" and target.exists():
            continue  # keep the slot's partial-parse state: same path, same project
        if part.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(part, target)
        else:
            shutil.copy2(part, target)


def _file_counts(warehouse: Path, run_id: str) -> list[dict]:
    """raw.load_files of the run, with the rows really in raw.* and raw.load_rejects."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cursor = con.execute(
            "select source_name, entity, source_file, status, rows_read, rows_loaded, "
            "rows_rejected from raw.load_files where batch_id = ? order by source_file",
            [run_id],
        )
        names = [d[0] for d in cursor.description]
        files = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        for f in files:
            [(loaded,)] = con.execute(
                f"select count(*) from raw.{f['entity']} where _batch_id = ? and _source_file = ?",
                [run_id, f["source_file"]],
            ).fetchall()
            [(rejected,)] = con.execute(
                "select count(*) from raw.load_rejects where batch_id = ? and source_file = ? "
                "and source_record is not null",
                [run_id, f["source_file"]],
            ).fetchall()
            f.update(in_raw=loaded, in_rejects=rejected, name=Path(f["source_file"]).name)
        return files
    finally:
        con.close()


def _published(path: Path) -> tuple[list[int], dict | None]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("select version, audit_summary from publish_log order by version")
        log = rows.fetchall()
    finally:
        con.close()
    return [v for v, _ in log], json.loads(log[-1][1]) if log[-1][1] else None


def run_night(fault_name: str, baseline: Path, slot: Path) -> Night:
    """Restore the slot from the baseline, inject the fault, run the night."""
    restore(baseline, slot)
    settings = make_settings(slot)
    fault = FAULTS[fault_name]
    written = fault.inject(settings.landing_dir)
    published = (settings.published_path, settings.published_dir / "latest.json")
    before = sha256(*published)
    ctx = pipeline.RunContext.new(f"fault-{fault_name}", fault.logical_date)
    error, started = None, time.perf_counter()
    try:
        pipeline.run_all(settings, ctx)
    except CxkpiError as exc:  # anything else is a bug: let it fail the test
        error = f"{type(exc).__name__}: {exc}"
    run_log = json.loads((ctx.run_dir(settings) / "run.json").read_text())
    evidence = ctx.run_dir(settings) / "gate" / "gate.json"
    versions, audit = _published(settings.published_path)
    return Night(
        fault=fault_name,
        run_id=ctx.run_id,
        error=error,
        stages=list(run_log["stages"]),
        published_before=before,
        published_after=sha256(*published),
        seconds=round(time.perf_counter() - started, 1),
        versions=versions,
        audit_summary=audit,
        gate=json.loads(evidence.read_text()) if evidence.exists() else None,
        files=_file_counts(settings.warehouse_path, ctx.run_id),
        written=written,
    )


# === fixtures ===============================================================================


def _build_baseline(folder: Path) -> None:
    settings = make_settings(folder)
    demo.generate(settings.landing_dir, scale=0.2)
    pipeline.run_all(settings, pipeline.RunContext.new("baseline", BASELINE_DATE))


@pytest.fixture(scope="session")
def baseline(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The published demo project every fault night starts from, shared by the workers."""
    return shared_folder(tmp_path_factory, worker_id, "fault-baseline", _build_baseline)


@pytest.fixture(scope="session")
def slot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's folder for the nights (one path: dbt's partial parse stays valid)."""
    return tmp_path_factory.mktemp("fault-slot")


@pytest.fixture
def night(request: pytest.FixtureRequest, baseline: Path, slot: Path) -> Night:
    """The night of the fault this test is named after (test_<fault>)."""
    return run_night(request.function.__name__.removeprefix("test_"), baseline, slot)


# === assertions =============================================================================


def assert_no_row_lost(night: Night) -> None:
    assert night.files, "the night loaded no file"
    for f in night.files:
        assert f["rows_read"] == f["rows_loaded"] + f["rows_rejected"], f
        assert (f["in_raw"], f["in_rejects"]) == (f["rows_loaded"], f["rows_rejected"]), f
    read = {f["name"]: f["rows_read"] for f in night.files}
    for name, records in night.written.items():
        assert read[name] == records, (name, read)


def assert_blocked(night: Night, error_type: str, *names: str) -> str:
    """(a) blocked, (b) nothing published, (c) the message names the check; returns it."""
    assert night.error is not None, f"{night.fault} was published: {night.gate}"
    assert night.error.startswith(f"{error_type}: "), night.error
    assert "publish" not in night.stages
    assert night.published_after == night.published_before
    assert night.versions == [1]
    for name in names:
        assert name in night.error, night.error
    return night.error


def assert_flagged(night: Night, *names: str) -> str:
    """(a) published as a new version with the warning counted; (c) the check is named."""
    assert night.error is None, night.error
    assert night.versions == [1, 2] and night.published_after != night.published_before
    assert night.audit_summary is not None
    assert night.audit_summary["failed"] == 0 and night.audit_summary["warned"] >= 1
    warnings = "\n".join(night.gate_lines("warned"))
    for name in names:
        assert name in warnings, warnings
    return warnings


# === the faults, one test each, grouped by what catches them ===============================


class TestRejectedRowsBlock:
    """Rows the loader rejects, too many for the rejects check (error): blocked."""

    def test_out_of_range_scores(self, night: Night) -> None:
        message = assert_blocked(
            night,
            "GateFailed",
            "raw.load_rejects: load_rejects(max_share=0.05) [error], 5 rows: survey_export "
            "rejected 5 of 40 rows (12.5%, max 5.0%); top reasons: 5x range "
            "(e.g. 'nps: 11 is above the maximum 10')",
        )
        assert "'file': 'responses_2026-11-01.csv'" in message
        assert_no_row_lost(night)

    def test_duplicate_response_ids(self, night: Night) -> None:
        message = assert_blocked(
            night,
            "GateFailed",
            "load_rejects(max_share=0.05) [error], 5 rows: survey_export rejected 5 of 40 rows",
        )
        assert "3x duplicate_key (e.g. 'duplicate response_id " in message
        assert "2x duplicate_in_file (e.g. 'duplicate response_id " in message
        assert_no_row_lost(night)

    def test_garbled_file(self, night: Night) -> None:
        message = assert_blocked(night, "GateFailed", "load_rejects(max_share=0.05) [error]")
        # grouped by code: both kinds of broken record are "malformed", one example shown
        assert "x malformed (e.g. 'malformed CSV record: " in message
        [file] = night.files
        assert file["rows_rejected"] >= 7 and file["rows_loaded"] >= 30
        assert_no_row_lost(night)

    def test_schema_change(self, night: Night) -> None:
        assert_blocked(
            night,
            "GateFailed",
            "survey_export rejected 40 of 40 rows (100.0%, max 5.0%)",
            "40x missing_column (e.g. \"file lacks mapped column(s) ['NPS']",
        )
        assert_no_row_lost(night)

    def test_text_in_numeric_column(self, night: Night) -> None:
        assert_blocked(
            night,
            "GateFailed",
            "survey_export rejected 4 of 40 rows (10.0%, max 5.0%)",
            "4x type (e.g. \"nps: '",
            "' is not a valid integer\")",
        )
        assert_no_row_lost(night)


class TestSuspiciousMarts:
    """Loaded cleanly, caught in the marts: orphans (warn), volume and KPI movement (error)."""

    def test_orphan_reviews(self, night: Night) -> None:
        warnings = assert_flagged(
            night,
            "staging.stg_surveys__responses: orphans(order_id -> staging.stg_ops__orders.order_id)"
            " [warn], 3 rows: 3 of 840 rows (0.4%, max 0.0%) have order_id values not found in "
            "staging.stg_ops__orders.order_id",
        )
        assert "{'key': 'NIGHT-0000', 'order_id': 'O-404-1'}" in warnings
        assert_no_row_lost(night)

    def test_volume_spike(self, night: Night) -> None:
        message = assert_blocked(
            night,
            "GateFailed",
            "marts.fct_verbatims: volume_change(max_ratio=5) [error]",
            "in published version 1 (x",
        )
        assert "volume_change(max_ratio=2)" not in message  # a warning, not in the error
        assert any("volume_change(max_ratio=2) [warn]" in w for w in night.gate_lines("warned"))
        assert_no_row_lost(night)

    def test_kpi_shift(self, night: Night) -> None:
        assert_blocked(
            night,
            "GateFailed",
            "marts.kpi_values: kpi_movement(points: 30, percent: 25) [error], 1 rows",
            "nps 2026-09: 11.25 -> 100 points, moved",
        )
        [file] = night.files
        assert (file["name"], file["status"]) == ("responses_2026-09.csv", "replaced")
        assert_no_row_lost(night)


class TestFewRejectsAndEmptyFilesWarn:
    """A few rejected rows or an empty file: published, flagged (warn)."""

    def test_null_keys(self, night: Night) -> None:
        assert_flagged(
            night,
            "load_rejects(max_share=0) [warn], 1 rows: survey_export rejected 1 of 40 rows (2.5%",
            "1x required (e.g. 'response_id: required value missing')",
        )
        assert_no_row_lost(night)

    def test_unparseable_timestamp(self, night: Night) -> None:
        assert_flagged(
            night,
            "load_rejects(max_share=0) [warn], 1 rows",
            "1x type (e.g. \"responded_at: '",
            "' is not a valid timestamp in format %Y-%m-%d %H:%M:%S\")",
        )
        assert_no_row_lost(night)

    def test_empty_file(self, night: Night) -> None:
        assert_flagged(
            night,
            "raw.load_files: empty_files [warn], 1 rows: 1 file(s) of this run have no records "
            "(survey_export: responses_2026-11-01.csv)",
        )
        [file] = night.files
        assert (file["status"], file["rows_read"]) == ("empty", 0)
        assert_no_row_lost(night)


class TestMissingAndUnreadableFiles:
    """A file missing or unreadable: the load stops the night, or freshness warns."""

    def test_truncated_parquet(self, night: Night) -> None:
        """A file that cannot be read at all stops the night at the load, before the gate."""
        assert_blocked(
            night,
            "LoadError",
            "orders_2026-11-01.parquet: file could not be read as parquet",
        )
        assert night.gate is None and "dbt_build" not in night.stages
        [file] = night.files
        assert (file["status"], file["rows_read"]) == ("failed", 0)
        assert_no_row_lost(night)

    def test_missing_required_source(self, night: Night) -> None:
        assert_blocked(night, "LoadError", "no file matches org/org_units.csv")
        assert night.gate is None

    def test_missing_survey_file(self, night: Night) -> None:
        warnings = assert_flagged(
            night,
            "staging.stg_surveys__responses: freshness(responded_at) [warn]: latest responded_at "
            "is 2026-10-31 17:51:23, 3 day(s) before the logical date 2026-11-03",
            "is a source file missing?",
        )
        assert "freshness(ordered_at)" not in warnings  # the orders did arrive
        assert_no_row_lost(night)
