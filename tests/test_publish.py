"""Write-audit-publish: versions, Parquet exports with a manifest, rollback, and
atomicity under kill -9, a full disk, concurrent readers and read-write clients, and a
second publisher (real processes, real files)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from cxkpi import pipeline, publish
from cxkpi.warehouse import LockBusy

pytestmark = pytest.mark.integration


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def project(demo_project):
    """A private copy of the session's demo night: published once, as "night-1"."""
    return demo_project


def publish_again(settings, run_id: str) -> publish.PublishResult:
    return publish.publish(settings, run_id, "2026-10-31", datetime.now(UTC), {"passed": 1})


def test_each_version_has_parquet_exports_and_a_manifest(project) -> None:
    settings = project
    manifest = json.loads((settings.published_dir / "latest.json").read_text())
    folder = settings.published_dir / manifest["path"]
    assert manifest["version"] == 1 and folder.name == "v000001"
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        for table, meta in manifest["tables"].items():
            parquet = folder / meta["file"]
            assert sha256(parquet) == meta["sha256"]
            rows = con.execute(f"select count(*) from read_parquet('{parquet}')").fetchone()[0]
            assert (
                rows == meta["rows"] == con.execute(f"select count(*) from {table}").fetchone()[0]
            ), table
            columns = [c[0] for c in con.execute(f"describe {table}").fetchall()]
            assert [c["name"] for c in meta["columns"]] == columns
    finally:
        con.close()
    assert sha256(folder / "cx.duckdb") == manifest["duckdb"]["sha256"]
    assert sha256(settings.published_path) == manifest["duckdb"]["sha256"]
    # data_through: the latest day any KPI has a value for (deliveries run past the
    # orders' last day), next to the night the run was for
    last_day = con_query(
        settings.published_path,
        "select max(period_start) from kpi_values where period_grain = 'day'",
    )
    assert manifest["logical_date"] == "2026-10-31"
    assert manifest["data_through"] == str(last_day) >= "2026-10-31"


def con_query(database: Path, sql: str):
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def both_readers(settings) -> tuple[int, int]:
    """The version a DuckDB reader and a Parquet reader see now."""
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        duck = con.execute("select max(version) from publish_log").fetchone()[0]
    finally:
        con.close()
    manifest = json.loads((settings.published_dir / "latest.json").read_text())
    log = settings.published_dir / manifest["path"] / "publish_log.parquet"
    con = duckdb.connect()
    parquet = con.execute(f"select max(version) from read_parquet('{log}')").fetchone()[0]
    assert parquet == manifest["version"]
    return duck, parquet


CLIENT = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1])          # read-write: DuckDB's default
con.execute("update kpi_values set value = 99 where kpi_id = 'nps'")
con.execute("create table my_scratch as select 1 as x")
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def hold_read_write(settings) -> subprocess.Popen:
    client = subprocess.Popen(
        [sys.executable, "-c", CLIENT, str(settings.published_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert client.stdout is not None and client.stdout.readline().strip() == "holding"
    return client


def release(client: subprocess.Popen) -> None:
    assert client.stdin is not None
    client.stdin.write("done\n")
    client.stdin.flush()
    client.wait(timeout=60)


def test_a_client_writing_the_published_file_never_changes_the_archive(project) -> None:
    """published/cx.duckdb was a hard link to versions/vN/cx.duckdb: a BI client opening it
    read-write changed the archive, and rollback restored the tampered copy."""
    settings = project
    archive = settings.published_dir / "versions" / "v000001"
    client = hold_read_write(settings)
    release(client)
    assert not os.path.samefile(settings.published_path, archive / "cx.duckdb")
    publish.verify_version(settings, 1)  # every checksum still matches
    for file in archive.iterdir():
        assert file.stat().st_mode & 0o222 == 0, f"{file} is writable"


@pytest.mark.parametrize("damaged", ["cx.duckdb", "kpi_values.parquet"])
def test_rollback_refuses_a_version_whose_files_changed(project, damaged: str) -> None:
    settings = project
    publish_again(settings, "night-2")
    target = settings.published_dir / "versions" / "v000001" / damaged
    target.chmod(0o644)
    if damaged == "cx.duckdb":
        con = duckdb.connect(str(target))
        con.execute("update kpi_values set value = 99 where kpi_id = 'nps'")
        con.close()
    else:
        with open(target, "ab") as handle:
            handle.write(b"\0")
    with pytest.raises(publish.PublishError, match=f"{target} does not match the checksum"):
        publish.rollback(settings, 1)
    assert both_readers(settings) == (2, 2)


def test_old_versions_are_pruned_and_rollback_restores_one(project) -> None:
    settings = project.with_overrides(keep_versions=2)
    first = sha256(settings.published_path)
    before = {
        r[0]
        for r in duckdb.connect(str(settings.published_path), read_only=True)
        .execute("select kpi_id from kpi_catalog")
        .fetchall()
    }
    publish_again(settings, "night-2")
    publish_again(settings, "night-3")
    assert publish.kept_versions(settings) == [2, 3]
    result = publish.rollback(settings, 2)
    assert result.version == 4
    log = publish.read_publish_log(settings.published_path)
    assert [(r["version"], r["kind"], r["source_version"]) for r in log] == [
        (1, "publish", None),
        (2, "publish", None),
        (3, "publish", None),
        (4, "rollback", 2),
    ]
    assert publish.kept_versions(settings) == [3, 4]
    after = {
        r[0]
        for r in duckdb.connect(str(settings.published_path), read_only=True)
        .execute("select kpi_id from kpi_catalog")
        .fetchall()
    }
    assert after == before and sha256(settings.published_path) != first
    with pytest.raises(publish.PublishError, match="not kept"):
        publish.rollback(settings, 1)


KILLER = r"""
import json, os, sys, time
from datetime import UTC, datetime
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from conftest import make_settings
from cxkpi import publish

settings = make_settings(Path(sys.argv[1]))
point, marker = sys.argv[2], Path(sys.argv[1]) / "marker"

def stall():
    marker.write_text(point)
    time.sleep(120)

if point == "build":
    original = publish._export_parquet
    def slow_export(*args):
        stall()
        return original(*args)
    publish._export_parquet = slow_export
else:
    original_replace = os.replace
    def slow_replace(src, dst):
        if Path(dst) == settings.published_dir / "current":   # the commit point
            stall()
        return original_replace(src, dst)
    publish.os.replace = slow_replace
publish.publish(settings, "doomed", "2026-10-31", datetime.now(UTC), {})
"""


@pytest.mark.parametrize("point", ["build", "commit"])
def test_kill_9_during_publish_leaves_the_previous_version(project, point: str) -> None:
    settings = project
    before = sha256(settings.published_path)
    latest = (settings.published_dir / "latest.json").read_text()
    script = settings.runs_dir / "killer.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(KILLER)
    tests_dir = str(Path(__file__).parent)
    process = subprocess.Popen(
        [sys.executable, str(script), str(settings.landing_dir.parent), point, tests_dir]
    )
    marker = settings.landing_dir.parent / "marker"
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), "the publish never reached the kill point"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # the previous version is intact and readable, the same for both kinds of reader
    assert sha256(settings.published_path) == before
    assert (settings.published_dir / "latest.json").read_text() == latest
    assert both_readers(settings) == (1, 1)
    # the next run recovers: the half-done version is undone and a new one published
    result = publish_again(settings, "night-2")
    assert result.version == 2
    assert both_readers(settings) == (2, 2)
    assert not list(settings.published_dir.rglob(".*.tmp"))
    assert publish.kept_versions(settings) == [1, 2]
    assert [p.name for p in (settings.published_dir / "live").iterdir()] == ["v000002"]


def test_a_full_disk_at_the_commit_changes_nothing_and_says_so(project, monkeypatch) -> None:
    settings = project
    before = sha256(settings.published_path)
    original_replace = os.replace

    def full_disk(src, dst):
        if Path(dst) == settings.published_dir / "current":
            raise OSError(errno.ENOSPC, "No space left on device")
        return original_replace(src, dst)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(publish.PublishError, match="published version is unchanged"):
        publish_again(settings, "night-2")
    monkeypatch.setattr(os, "replace", original_replace)
    assert sha256(settings.published_path) == before
    assert both_readers(settings) == (1, 1)
    # nothing of the failed version is left: no temporary files, no archive, no live copy
    assert not list(settings.published_dir.rglob(".*.tmp"))
    assert publish.kept_versions(settings) == [1]
    assert [p.name for p in (settings.published_dir / "live").iterdir()] == ["v000001"]
    assert publish_again(settings, "night-2").version == 2
    assert both_readers(settings) == (2, 2)


def test_publish_and_rollback_wait_for_each_other(project, monkeypatch) -> None:
    """A rollback during a publish deleted the publish's temporary files (and back)."""
    settings = project
    script = settings.runs_dir / "killer.py"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(KILLER)
    tests_dir = str(Path(__file__).parent)
    process = subprocess.Popen(
        [sys.executable, str(script), str(settings.landing_dir.parent), "build", tests_dir]
    )
    marker = settings.landing_dir.parent / "marker"
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        staged = list(settings.published_dir.rglob(".*.tmp"))
        assert staged, "the publish stages its version in temporary folders"
        monkeypatch.setattr(publish, "LOCK_WAIT_S", 0.5)
        with pytest.raises(
            LockBusy,
            match=rf"another publish or rollback is in progress \(pid {process.pid}, started at ",
        ):
            publish.rollback(settings)
        assert all(p.exists() for p in staged)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


READER = r"""
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
def snapshot(c):
    return [c.execute("select max(version) from publish_log").fetchone()[0],
            c.execute("select count(*) from kpi_values").fetchone()[0]]
print(*snapshot(con), flush=True)
sys.stdin.readline()                      # the publish happens now
print(*snapshot(con), flush=True)         # same connection: still the version it opened
con.close()
fresh = duckdb.connect(sys.argv[1], read_only=True)
print(*snapshot(fresh), flush=True)       # reconnected: the new version
"""


def test_a_reader_during_publish_keeps_a_complete_version(project) -> None:
    settings = project
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(settings.published_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdin is not None
    opened = reader.stdout.readline().split()
    publish_again(settings, "night-2")  # never blocked by the open reader
    reader.stdin.write("go\n")
    reader.stdin.flush()
    during = reader.stdout.readline().split()
    fresh = reader.stdout.readline().split()
    reader.wait(timeout=60)
    assert opened == during and opened[0] == "1"
    assert fresh[0] == "2"


def test_late_data_for_an_earlier_night_recomputes_and_publishes_a_new_version(
    project,
) -> None:
    """A backfill: September answers arrive late; re-running September's logical date
    recomputes September and publishes version 2, leaving October's values alone."""
    settings = project

    def hq_nps(month: str) -> tuple:
        return (
            duckdb.connect(str(settings.published_path), read_only=True)
            .execute(
                """select value, n from kpi_values where kpi_id = 'nps' and org_level = 'hq'
               and period_grain = 'month' and channel = 'all' and segment = 'all'
               and touchpoint = 'all' and topic = 'all' and period_start = ?""",
                [month],
            )
            .fetchone()
        )

    september, october = hq_nps("2026-09-01"), hq_nps("2026-10-01")
    surveys = settings.landing_dir / "surveys"
    header = (surveys / "responses_2026-09.csv").read_text().splitlines()[0]
    late = [header] + [
        f"LATE{i:02d},SRV-POST-PURCHASE,,,S001,,web,checkout,2026-09-15 12:00:00,10,"
        "Very satisfied,1,,en,Yes"
        for i in range(10)
    ]
    (surveys / "responses_2026-09_late.csv").write_text("\n".join(late) + "\n")
    result = pipeline.run_all(settings, pipeline.RunContext.new("backfill", "2026-09-30"))
    assert result.stages["publish"]["version"] == 2
    value, n = hq_nps("2026-09-01")
    assert n == september[1] + 10 and value > september[0]
    assert hq_nps("2026-10-01") == october
    log = publish.read_publish_log(settings.published_path)
    assert (log[-1]["run_id"], str(log[-1]["logical_date"])) == ("backfill", "2026-09-30")
    # a backfill says what it is: the night it was for, and how far the data reaches
    last_day = con_query(
        settings.published_path,
        "select max(period_start) from kpi_values where period_grain = 'day'",
    )
    assert str(log[-1]["data_through"]) == str(last_day) > "2026-10-30"
    manifest = json.loads((settings.published_dir / "latest.json").read_text())
    assert (manifest["logical_date"], manifest["data_through"]) == ("2026-09-30", str(last_day))


def test_a_night_with_a_client_holding_the_published_file_read_write(project) -> None:
    """A BI client with published/cx.duckdb open read-write (and writing) made three gate
    checks fail and publish die with a lock error: the night must not notice it."""
    settings = project
    client = hold_read_write(settings)
    try:
        result = pipeline.run_all(
            settings, pipeline.RunContext.new("night-2", "2026-10-31"), full_refresh=True
        )
        assert result.stages["publish"]["version"] == 2
        gate = json.loads((result.ctx.run_dir(settings) / "gate" / "gate.json").read_text())
        movement = [c for c in gate["results"] if c["check"].startswith(("volume", "kpi_mov"))]
        assert movement and all(c["success"] and not c["skipped"] for c in movement)
    finally:
        release(client)
    assert both_readers(settings) == (2, 2)
    # the client's writes stayed in its own copy: version 1 restores clean
    publish.rollback(settings, 1)
    archived = settings.published_dir / "versions" / "v000001" / "kpi_values.parquet"
    con = duckdb.connect(str(settings.published_path), read_only=True)
    try:
        tables = {r[0] for r in con.execute("show tables").fetchall()}
        changed = con.execute(
            f"select count(*) from (select * from kpi_values except all "
            f"select * from read_parquet('{archived}'))"
        ).fetchone()[0]
    finally:
        con.close()
    assert "my_scratch" not in tables and changed == 0
