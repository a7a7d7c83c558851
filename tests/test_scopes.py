"""Role views (issue 13): one extract and one report per scope, in the same versioned
commit as the main publish; no scope holds a row of a unit outside its subtree (or a
granted aggregate); unchanged scopes are reused; rollback restores them; the report opens
in a real browser with no network."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import REPO, copy_tree, make_settings, query, repository_read_paths

from cxkpi import publish, scopes
from cxkpi.access import load_access
from cxkpi.cli import main
from cxkpi.errors import PublishError
from cxkpi.report import format_value

pytestmark = pytest.mark.integration
ACCESS = REPO / "access" / "access.yml"
ARTIFACTS = REPO / "build" / "test-artifacts"


def publish_now(settings, run_id: str) -> publish.PublishResult:
    return publish.publish(settings, run_id, "2026-10-31", datetime.now(UTC), {"passed": 1})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def scoped(demo_night, tmp_path_factory):
    """The demo night's project published again with the demo's access file: version 2."""
    folder = copy_tree(demo_night.folder, tmp_path_factory.mktemp("scoped"))
    settings = make_settings(folder, access_file=ACCESS)
    result = publish_now(settings, "scoped-1")
    return settings, result


def manifest_of(settings) -> dict:
    return json.loads((settings.published_dir / "latest.json").read_text())


def test_one_extract_and_report_per_scope_in_the_version(scoped) -> None:
    settings, result = scoped
    manifest = manifest_of(settings)
    units = query(
        settings.published_path,
        "select org_unit_id from dim_org_units where org_level in ('hq', 'region', 'store')",
    )
    assert sorted(manifest["scopes"]) == sorted(u for (u,) in units)
    assert len(manifest["scopes"]) == 1 + 3 + 20
    assert result.scope_timing["scopes_written"] == 24
    archive = settings.published_dir / manifest["path"]
    for unit, entry in manifest["scopes"].items():
        # the archive: a Parquet file per table (and the scope's own row) and the report
        files = set(entry["files"])
        expected_tables = {f"{t}.parquet" for t in [*entry["rows"], "extract_scope"]}
        assert {"report.html"} | expected_tables == files
        for name, checksum in entry["files"].items():
            assert sha256(archive / "scopes" / unit / name) == checksum
        # what readers open, through the published/scopes link: the DuckDB extract holding
        # exactly the archived rows, and the report
        live = settings.published_dir / "scopes" / unit
        assert sorted(p.name for p in live.iterdir()) == ["cx.duckdb", "report.html"]
        assert (live / "report.html").read_bytes() == (
            archive / "scopes" / unit / "report.html"
        ).read_bytes()
        assert query(live / "cx.duckdb", "select scope_unit_id from extract_scope") == [(unit,)]
        for table, count in entry["rows"].items():
            parquet = archive / "scopes" / unit / f"{table}.parquet"
            assert query(live / "cx.duckdb", f"select count(*) from {table}")[0][0] == count
            assert query(live / "cx.duckdb", f"select count(*) from '{parquet}'")[0][0] == count
    publish.verify_version(settings, manifest["version"])


def _sql_list(units: set[str]) -> str:
    return ", ".join(repr(u) for u in sorted(units)) or "null"


def _subtree(main: Path, unit: str, level: str) -> set[str]:
    return {
        u
        for (u,) in query(
            main, f"select org_unit_id from dim_org_units where {level}_id = '{unit}'"
        )
    }


def test_no_scope_holds_a_row_of_another_scope(scoped) -> None:
    """For every scope and every table, each row's unit is in the scope's subtree, or (for
    aggregate values) one of the ancestors its level is granted - worked out here from the
    main file's org units, not from the publisher's plan."""
    settings, _ = scoped
    manifest = manifest_of(settings)
    main = settings.published_path
    access = load_access(ACCESS, settings.org_levels)
    models = {m["name"]: m for m in publish.published_tables(settings)}
    rules = scopes.table_rules(list(models.values()))
    main_counts = {t: query(main, f"select count(*) from {t}")[0][0] for t in rules}
    for unit, entry in manifest["scopes"].items():
        level = entry["level"]
        own = _subtree(main, unit, level)
        path = query(
            main,
            f"select {', '.join(f'{lv}_id' for lv in settings.org_levels)} "
            f"from dim_org_units where org_unit_id = '{unit}'",
        )[0]
        granted = {
            path[settings.org_levels.index(above)] for above in access.level(level).sees_above
        }
        sees_company = level == "hq" or "hq" in access.level(level).sees_above
        extract = settings.published_dir / "scopes" / unit / "cx.duckdb"
        for table, rule in rules.items():
            count = query(extract, f"select count(*) from {table}")[0][0]
            if rule.rows in ("unit_values", "unit_records"):
                found = {
                    u for (u,) in query(extract, f"select distinct {rule.column} from {table}")
                }
                allowed = own | granted if rule.rows == "unit_values" else own
                assert found <= allowed, (unit, table, found - allowed)
                # and nothing of its own is missing
                ancestors = granted if rule.rows == "unit_values" else set()
                expected = query(
                    main,
                    f"select count(*) from {table} where {rule.column} in ({_sql_list(own)})"
                    f" or ({rule.column} in ({_sql_list(ancestors)})"
                    f" and ({rule.ancestors_where or 'true'}))",
                )[0][0]
                assert count == expected, (unit, table)
            elif rule.rows == "follows":
                keys = {k for (k,) in query(extract, f"select {rule.column} from {table}")}
                parent = {k for (k,) in query(extract, f"select {rule.column} from {rule.parent}")}
                assert keys <= parent, (unit, table)
            elif rule.rows == "company":
                assert count == (main_counts[table] if sees_company else 0), (unit, table)
            else:
                assert count == main_counts[table], (unit, table)


def test_a_manager_of_two_stores_sees_both_and_nothing_between(scoped) -> None:
    settings, _ = scoped
    access = load_access(ACCESS, settings.org_levels)
    assert access.units_of("group:manager-hamburg-kiel") == ["S001", "S003"]
    main = settings.published_path
    between = _subtree(main, "S002", "store")
    for unit in ("S001", "S003"):
        extract = settings.published_dir / "scopes" / unit / "cx.duckdb"
        for table, column in [
            ("kpi_values", "org_unit_id"),
            ("fct_verbatims", "org_unit_id"),
            ("fct_cases", "owner_unit_id"),
            ("dim_org_units", "org_unit_id"),
        ]:
            found = {u for (u,) in query(extract, f"select distinct {column} from {table}")}
            assert not found & between, (unit, table)
            assert not found & _subtree(main, "S003" if unit == "S001" else "S001", "store")
        # the region's and HQ's aggregates, as the access file grants a store
        levels = {lv for (lv,) in query(extract, "select distinct org_level from kpi_values")}
        assert levels == {"hq", "region", "store", "advisor"}


def test_unchanged_scopes_are_reused_and_rollback_restores_them(demo_night, tmp_path) -> None:
    folder = copy_tree(demo_night.folder, tmp_path)
    settings = make_settings(folder, access_file=ACCESS)
    first = publish_now(settings, "scoped-1")
    first_manifest = manifest_of(settings)
    # the same marts again: every scope is lent by hard link, nothing is drawn again
    again = publish_now(settings, "scoped-2")
    assert again.scope_timing["scopes_reused"] == 24 and again.scope_timing["scopes_written"] == 0
    v1 = settings.published_dir / first_manifest["path"] / "scopes" / "S001" / "report.html"
    v2 = settings.published_dir / manifest_of(settings)["path"] / "scopes" / "S001" / "report.html"
    assert v1.stat().st_ino == v2.stat().st_ino
    # a night that changes one store's values rewrites that store and the scopes above it
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("delete from marts.kpi_values where org_unit_id = 'A0001'")
    con.close()
    changed = publish_now(settings, "scoped-3")
    written = {
        u
        for u, e in manifest_of(settings)["scopes"].items()
        if e["written_in_version"] == changed.version
    }
    assert written == {"HQ", "R01", "S001"}
    assert changed.scope_timing["scopes_reused"] == 21
    restored = publish.rollback(settings, first.version)
    manifest = manifest_of(settings)
    assert restored.scope_timing["scopes_reused"] == 24
    for unit, entry in manifest["scopes"].items():
        assert entry["files"] == first_manifest["scopes"][unit]["files"], unit
    live = settings.published_dir / "scopes" / "S001" / "cx.duckdb"
    assert query(live, "select count(*) from kpi_values where org_unit_id = 'A0001'")[0][0] > 0


def test_a_published_table_without_a_scope_rule_stops_the_publish() -> None:
    models = [
        {
            "name": "kpi_values",
            "columns": ["org_unit_id"],
            "scope": {"rows": "unit_values", "column": "org_unit_id"},
        },
        {"name": "my_new_mart", "columns": ["x"], "scope": None},
        {"name": "typo", "columns": ["x"], "scope": {"rows": "unit_values", "column": "unit"}},
        {"name": "odd", "columns": ["x"], "scope": {"rows": "company", "column": "x"}},
        {
            "name": "chain",
            "columns": ["k"],
            "scope": {"rows": "follows", "table": "chained", "column": "k"},
        },
        {
            "name": "chained",
            "columns": ["k"],
            "scope": {"rows": "follows", "table": "kpi_values", "column": "k"},
        },
    ]
    with pytest.raises(PublishError) as raised:
        scopes.table_rules(models)
    message = str(raised.value)
    assert "my_new_mart: declare which rows" in message
    assert "typo: scope column 'unit' is not a column" in message
    assert "odd: rows company takes no other key; unknown ['column']" in message
    assert "chain: follows chained, which itself follows a table" in message
    assert "kpi_values" not in message


# -- the report, in a real browser ---------------------------------------------------------

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    # no network at all: every host name fails to resolve, and no proxy is reachable
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "Debian's chromium is missing: `make test` installs it (the browser target)"
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class _Figures(HTMLParser):
    """Each chart figure of the page, and what was drawn in it."""

    def __init__(self):
        super().__init__()
        self.figures: list[dict] = []
        self.cards: dict[str, str] = {}
        self._figure: dict | None = None
        self._card: str | None = None
        self._value = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "figure" and "chart" in (attributes.get("class") or ""):
            self._figure = {"name": attributes.get("data-chart"), "svg": 0, "marks": 0}
        elif self._figure is not None and tag == "svg":
            self._figure["svg"] += 1
        elif (
            self._figure is not None
            and tag in ("path", "rect", "line")
            and (attributes.get("d") or attributes.get("width") or attributes.get("x2"))
        ):
            self._figure["marks"] += 1
        if attributes.get("data-kpi-id"):
            self._card = attributes["data-kpi-id"]
        if self._card and (attributes.get("class") == "value"):
            self._value = True

    def handle_endtag(self, tag):
        if tag == "figure" and self._figure is not None:
            self.figures.append(self._figure)
            self._figure = None
        if tag == "div" and self._value:
            self._value = False
            self._card = None

    def handle_data(self, data):
        if self._value and self._card:
            self.cards[self._card] = self.cards.get(self._card, "") + data


@pytest.mark.parametrize("unit", ["S001", "R01", "HQ"])
def test_the_report_opens_in_a_browser_with_no_network(scoped, unit, tmp_path) -> None:
    settings, _ = scoped
    folder = settings.published_dir / "scopes" / unit
    page = (folder / "report.html").resolve()
    shown = chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile")
    assert shown.returncode == 0, shown.stderr[-2000:]
    console = [line for line in shown.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    parsed = _Figures()
    parsed.feed(shown.stdout)
    expected_charts = int(re.search(r'data-charts="(\d+)"', shown.stdout).group(1))
    assert len(parsed.figures) == expected_charts >= 5
    for figure in parsed.figures:
        assert figure["svg"] == 1 and figure["marks"] >= 3, figure
    # the headline numbers are the extract's latest monthly values at the unit
    headline = query(
        folder / "cx.duckdb",
        f"""select c.kpi_id, v.value, c.unit from kpi_catalog c join kpi_values v using (kpi_id)
        where c.kind = 'kpi' and c.kpi_level = 'outcome' and v.org_unit_id = '{unit}'
          and v.period_grain = 'month' and v.channel = 'all' and v.segment = 'all'
          and v.touchpoint = 'all' and v.topic = 'all' and v.value is not null
        qualify v.period_start = max(v.period_start) over (partition by c.kpi_id)""",
    )
    assert len(headline) >= 5
    for kpi_id, value, kpi_unit in headline:
        assert parsed.cards[kpi_id].strip().startswith(format_value(value, kpi_unit)), kpi_id
    # laptop and phone widths, kept as artifacts (docs/ keeps one of them)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, size in [("laptop", "1280,2400"), ("phone", "390,2400")]:
        shot = ARTIFACTS / f"report-{unit}-{name}.png"
        shot.unlink(missing_ok=True)
        taken = chromium(
            f"--screenshot={shot}",
            f"--window-size={size}",
            "--hide-scrollbars",
            page.as_uri(),
            profile=tmp_path / f"profile-{name}",
        )
        assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]


def test_cxkpi_report_regenerates_a_scope_from_a_published_version(scoped, tmp_path) -> None:
    """``cxkpi report`` draws a version's report again from its archived Parquet files: the
    same bytes as the night drew."""
    settings, result = scoped
    config = yaml.safe_load((REPO / "cxkpi.yml").read_text(encoding="utf-8"))
    config.update(repository_read_paths())
    config.update(
        published_dir=str(settings.published_dir),
        access_file=str(ACCESS),
        warehouse_path=str(tmp_path / "warehouse.duckdb"),
        runs_dir=str(tmp_path / "runs"),
    )
    (tmp_path / "cxkpi.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    out = tmp_path / "reports"
    code = main(
        [
            "--config",
            str(tmp_path / "cxkpi.yml"),
            "report",
            "--scope",
            "R01",
            "--version",
            str(result.version),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    archive = settings.published_dir / manifest_of(settings)["path"] / "scopes" / "R01"
    assert (out / "R01" / "report.html").read_bytes() == (archive / "report.html").read_bytes()
    assert (
        main(
            [
                "--config",
                str(tmp_path / "cxkpi.yml"),
                "report",
                "--scope",
                "S999",
                "--out",
                str(out),
            ]
        )
        != 0
    )
