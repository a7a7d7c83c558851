"""Shared fixtures: an isolated project per test (own landing, warehouse, published, runs,
dbt target dirs) that uses the repository's dbt project, sources, KPIs and suites, and
one demo night built once per test session (``demo_night``, ``demo_project``)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from cxkpi.config import Settings, scratch_settings

REPO = Path(__file__).resolve().parents[1]

# No test may phone home.
os.environ.update(
    {
        "DO_NOT_TRACK": "1",
        "SCARF_NO_ANALYTICS": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    }
)


# Longest first: Airflow nights (e2e), then dbt nights (integration), then unit tests.
LONGEST_FIRST = ("e2e", "integration")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the tests longest first. pytest-xdist hands out its work units (a module, or a
    class) in this order (``make test`` turns off xdist's own reordering by test count),
    so no long night starts last and keeps one worker busy alone at the end."""

    def rank(item: pytest.Item) -> int:
        for position, marker in enumerate(LONGEST_FIRST):
            if item.get_closest_marker(marker):
                return position
        return len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: a module's tests keep their order


# The path settings a night writes to; every other path setting it only reads.
WRITTEN_PATHS = frozenset(
    {"landing_dir", "warehouse_path", "published_dir", "runs_dir", "dbt_target_dir"}
)
# Read paths a test's night goes without unless it asks: the access file makes every
# publish write an extract and draw a report per scope (24 in the demo), which only the
# role-view tests look at (they pass access_file).
OPT_IN_PATHS = frozenset({"access_file"})


def repository_read_paths() -> dict[str, str]:
    """Every path setting a night only reads (sources, KPI definitions, suites, topic and
    case rules, the dbt project), as the repository's absolute paths: for a config file
    written into a test's folder, whose relative paths would resolve there."""
    from cxkpi.config import _DEFAULTS, _PATH_FIELDS

    read = _PATH_FIELDS - WRITTEN_PATHS - OPT_IN_PATHS
    return {key: str(REPO / _DEFAULTS[key]) for key in sorted(read)}


def make_settings(tmp_path: Path, **overrides) -> Settings:
    """Settings of the repository's project with every mutable path under ``tmp_path``
    and no access file (no scoped extracts) unless ``access_file`` is given."""
    overrides.setdefault("access_file", tmp_path / "access.yml")
    return scratch_settings(REPO / "cxkpi.yml", tmp_path, **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def settings_with_catalog(tmp_path: Path, catalog_yaml: str) -> Settings:
    """Settings whose KPI definitions are ``catalog_yaml``: the models it compiles to go to
    a copy of the dbt project (and suites), never to the repository's."""
    kpi_dir = tmp_path / "kpi_definitions"
    kpi_dir.mkdir()
    (kpi_dir / "catalog.yml").write_text(catalog_yaml, encoding="utf-8")
    dbt_dir = shutil.copytree(
        REPO / "dbt_project",
        tmp_path / "dbt_project",
        ignore=shutil.ignore_patterns("target", "logs"),
    )
    suites = shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    return make_settings(
        tmp_path, kpi_definitions_dir=kpi_dir, dbt_project_dir=dbt_dir, expectations_dir=suites
    )


def copy_tree(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
    return target


# The session's demo night: demo data at this scale, one full night on this logical date
# under this run id. Tests whose data is exactly this use it instead of a night of their own.
DEMO_SCALE = 0.3
DEMO_DATE = "2026-10-31"
DEMO_RUN_ID = "night-1"


@dataclass(frozen=True)
class DemoNight:
    """A project folder that has published one demo night. Read it, never write it: a test
    that changes anything takes ``demo_project`` (a private copy) instead."""

    folder: Path
    written: dict[str, int]  # entity -> rows demo.generate wrote

    @property
    def settings(self) -> Settings:
        return make_settings(self.folder)


def _build_demo_night(folder: Path) -> None:
    from cxkpi import demo, pipeline

    settings = make_settings(folder)
    written = demo.generate(settings.landing_dir, scale=DEMO_SCALE)
    pipeline.run_all(settings, pipeline.RunContext.new(DEMO_RUN_ID, DEMO_DATE))
    (folder / "written.json").write_text(json.dumps(written))


def shared_folder(
    tmp_path_factory: pytest.TempPathFactory,
    worker_id: str,
    name: str,
    build: Callable[[Path], None],
) -> Path:
    """A folder built once per test session by ``build(folder)``. Under pytest-xdist the
    workers share the session's temporary root: the first to take the lock builds, the
    others wait and reuse it."""
    if worker_id == "master":
        root = tmp_path_factory.getbasetemp()
    else:
        root = tmp_path_factory.getbasetemp().parent
    folder = root / name
    # fcntl, not a package: the lock dies with its process, so a crashed builder frees it
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / "done").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build a crashed worker left
            build(folder)
            (folder / "done").touch()  # last: its presence means a complete build
    return folder


@pytest.fixture(scope="session")
def demo_night(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> DemoNight:
    """One demo night per session, shared by the xdist workers."""
    name = f"demo-night-{DEMO_SCALE}-{DEMO_DATE}"
    folder = shared_folder(tmp_path_factory, worker_id, name, _build_demo_night)
    return DemoNight(folder, json.loads((folder / "written.json").read_text()))


@pytest.fixture
def demo_project(demo_night: DemoNight, tmp_path: Path) -> Settings:
    """A private copy of the demo night's project (landing, warehouse, published, runs),
    for a test that runs another night or changes files."""
    copy_tree(demo_night.folder, tmp_path)
    return make_settings(tmp_path)


def query(database: Path, sql: str) -> list[tuple]:
    """Run ``sql`` on a DuckDB file through a short read-only connection."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def inject_out_of_range_nps(warehouse: Path, responded_at: str = "2026-10-31 10:00") -> None:
    """A value that never passed the loader (e.g. written by another tool): NPS 42."""
    con = duckdb.connect(str(warehouse))
    try:
        con.execute(
            """insert into raw.survey_responses (response_id, channel, responded_at, nps,
                   org_unit_id, _source_name, _source_file)
               select 'INJECTED', 'web', ?::timestamp, 42, min(org_unit_id),
                      'fault-injection', 'none'
               from raw.org_units where level = 'store'""",
            [responded_at],
        )
    finally:
        con.close()
