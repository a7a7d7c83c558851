"""The nightly pipeline as plain functions: the CLI, the tests and the Airflow DAG call these.

    prepare -> load X-data | load O-data -> dbt build (models + tests) -> gate -> publish

Each step takes the settings and the run's context and returns a JSON-friendly summary,
so Airflow can pass it between tasks and ``cxkpi run`` can print it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import cxkpi
from cxkpi import (
    build_state,
    case_rules,
    dbt_runner,
    dbt_sources,
    gate,
    kpi_compile,
    kpi_spec,
    loader,
    night_lease,
    outbox,
    package_macros,
    pii,
    publish,
    published_folder,
    vocabulary,
)
from cxkpi.config import Settings
from cxkpi.errors import ConfigError, CxkpiError, GateFailed
from cxkpi.sources import load_sources
from cxkpi.warehouse import connect, process_lock, quote_literal

log = logging.getLogger(__name__)

STAGES = (
    "prepare",
    "load_x",
    "load_o",
    "load_gate",
    "dbt_build",
    "analyze",
    "gate",
    "publish",
    "hand_over_cases",
)


@dataclass
class RunContext:
    run_id: str
    logical_date: str
    started_at: datetime

    @classmethod
    def new(cls, run_id: str | None = None, logical_date: str | None = None) -> RunContext:
        now = datetime.now(UTC)
        day = logical_date or now.date().isoformat()
        date.fromisoformat(day)  # fail early on a malformed date
        # microseconds and a random suffix: two runs started in the same second differ
        unique = f"cli__{now:%Y%m%dT%H%M%S_%f}_{secrets.token_hex(2)}"
        return cls(run_id or unique, day, now)

    def run_dir(self, settings: Settings) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.run_id)
        return settings.runs_dir / safe


def compile_catalog(settings: Settings, write: bool = True) -> dict[str, Any]:
    """Validate the KPI definitions and (re)generate the dbt models they compile to.

    With ``write=False`` only check that the generated models are current: the Airflow DAG
    renders its dbt tasks from a manifest compiled at deploy time, so a night must not run
    definitions that changed since (run ``cxkpi compile`` and redeploy).
    """
    catalog = kpi_spec.load_catalog(
        [settings.kpi_definitions_dir], settings.min_sample, settings.org_levels
    )
    if catalog.problems:
        shown = "\n".join(f"  {p}" for p in catalog.problems[:50])
        more = len(catalog.problems) - 50
        raise ConfigError(
            f"{len(catalog.problems)} problem(s) in the KPI definitions "
            f"(`cxkpi validate` lists them all):\n{shown}"
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
    rules = case_rules.load_loop_rules(settings)
    if write:
        result = kpi_compile.write(
            catalog,
            settings.dbt_project_dir,
            settings.kpi_definitions_dir.parent,
            rules.topics,
            rules.case_rules,
        )
        dbt_sources.write(settings.dbt_project_dir, settings.vocabularies)
        changed = result.changed + package_macros.write(settings.dbt_project_dir)
    else:
        rendered = kpi_compile.render(
            catalog, settings.kpi_definitions_dir.parent, rules.topics, rules.case_rules
        )
        directory = settings.dbt_project_dir / kpi_compile.GENERATED_DIR
        changed = [
            name
            for name, content in rendered.items()
            if not (directory / name).exists()
            or (directory / name).read_text(encoding="utf-8") != content
        ]
        if changed:
            raise ConfigError(
                f"the KPI definitions, topic or case rules changed since the dbt models were "
                f"compiled ({', '.join(changed)}): run `cxkpi compile` and redeploy the DAG"
            )
        if not dbt_sources.is_current(settings.dbt_project_dir, settings.vocabularies):
            raise ConfigError(
                f"the dbt sources file {dbt_sources.SOURCES_FILE} differs from what "
                "canonical.py and cxkpi.yml (channels, touchpoints) give: run `cxkpi compile` "
                "and redeploy the DAG"
            )
        stale_macros = package_macros.stale(settings.dbt_project_dir)
        if stale_macros:
            raise ConfigError(
                f"the dbt project's copies of the cxkpi package's macros are missing or "
                f"differ from the installed package ({', '.join(stale_macros)}): run "
                f"`cxkpi compile` and redeploy the DAG"
            )
    return {
        "kpis": sum(d.measurable for d in catalog.kpis),
        "goals": sum(d.kind == "goal" for d in catalog.kpis),
        "factors": len(catalog.factors),
        "topics": len(rules.topics.topics),
        "case_rules": len(rules.case_rules.rules),
        "models_changed": len(changed),
    }


def _prepare_inputs(settings: Settings) -> str:
    """A digest of everything prepare checks and writes: the sources, suites and KPI
    definitions, the dbt project (where the compiled models and macros land), the
    settings they are compiled with, and the cxkpi package that compiles them."""
    digest = hashlib.sha256()
    digest.update(json.dumps(dbt_runner.dbt_vars(settings), sort_keys=True).encode())
    digest.update(json.dumps(settings.vocabularies, sort_keys=True, default=str).encode())
    for folder in (
        settings.sources_dir,
        settings.expectations_dir,
        settings.kpi_definitions_dir,
        settings.topics_dir,
        settings.case_rules_dir,
    ):
        build_state.digest_folder(digest, folder)
    build_state.digest_folder(digest, settings.dbt_project_dir, frozenset({"target", "logs"}))
    package = resources.files("cxkpi")
    with resources.as_file(package) as folder:
        build_state.digest_folder(digest, folder, frozenset({"__pycache__"}))
    return digest.hexdigest()


def prepare(settings: Settings, ctx: RunContext, write: bool = True) -> dict[str, Any]:
    """Check sources and suites, compile the KPI definitions into dbt models: unless none
    of their inputs changed since the last prepare that succeeded (the stamp in the dbt
    target folder), when it would check and write the same things again."""
    stamp_path = settings.dbt_target_dir / "cxkpi_prepared.json"
    inputs = _prepare_inputs(settings)
    try:
        stamp = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamp = {}
    if stamp.get("inputs") == inputs:
        return {**stamp["summary"], "prepare": f"skipped: nothing changed since {stamp['at']}"}
    specs = load_sources(settings.sources_dir, settings.dbt_project_dir, settings.vocabularies)
    gate.load_suites(settings.expectations_dir)
    summary = {"sources": len(specs), **compile_catalog(settings, write)}
    stamp_path.parent.mkdir(parents=True, exist_ok=True)
    stamp = {
        "inputs": _prepare_inputs(settings),  # after writing: the compiled models included
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": {**summary, "models_changed": 0},
    }
    stamp_path.write_text(json.dumps(stamp), encoding="utf-8")
    return summary


def load(settings: Settings, ctx: RunContext, kind: str | None = None) -> dict[str, Any]:
    """Load the landing files of X-data (``kind='x'``), O-data (``'o'``) or both.

    The summary names the optional sources (``required: false``) none of whose files
    arrived (``sources_without_files``), so that the run log says why they loaded nothing.
    """
    specs = [
        s
        for s in load_sources(settings.sources_dir, vocabularies=settings.vocabularies)
        if kind is None or s.kind == kind
    ]
    with pii.phone_regions(settings.pii_phone_regions):
        report = loader.load(
            settings.warehouse,
            settings.landing_dir,
            specs,
            ctx.run_id,
            max_record_bytes=settings.max_record_bytes,
        )
    summary: dict[str, Any] = {
        "files": len(report.files),
        "files_loaded": sum(f.status in ("loaded", "replaced") for f in report.files),
        "rows_read": report.total("rows_read"),
        "rows_loaded": report.total("rows_loaded"),
        "rows_rejected": report.total("rows_rejected"),
    }
    if report.absent_sources:
        summary["sources_without_files"] = report.absent_sources
    return summary


def plan_build(settings: Settings, ctx: RunContext, full_refresh: bool = False) -> dict[str, Any]:
    """What this night's ``dbt build`` must do, decided from the build state, and the build
    recorded as started unless there is nothing to do. A plain dict (an Airflow XCom):

    - ``skip``: True when neither the data nor the definitions changed since the last
      successful build; ``reason`` says since which build;
    - ``full_refresh``: True when the definitions changed, there is no earlier build, or
      ``full_refresh`` asks for one (``reason`` says which), else the build is incremental
      and its KPI models recompute only the periods whose observations changed;
    - ``build_id``: the started build, for ``finish_build``.

    The CLI's ``build`` and the Airflow DAG's ``plan_build`` task both decide here: a
    definition change is a full refresh however the night is run."""
    inputs = build_state.current_inputs(settings)
    previous = build_state.latest(settings)
    if not full_refresh and previous is not None and build_state.is_unchanged(previous, inputs):
        return {
            "skip": True,
            "full_refresh": False,
            "build_id": None,
            "reason": f"nothing new since build {previous.build_id} (run {previous.run_id}, "
            f"finished {previous.finished_at:%Y-%m-%d %H:%M:%S} UTC)",
        }
    reason = build_state.full_refresh_reason(settings, inputs, full_refresh)
    build_id = build_state.start(settings, ctx.run_id, inputs, full_refresh=reason is not None)
    return {
        "skip": False,
        "full_refresh": reason is not None,
        "build_id": build_id,
        "reason": f"full refresh: {reason}" if reason else "incremental",
    }


def finish_build(settings: Settings, plan: dict[str, Any], succeeded: bool) -> None:
    """Record how the build ``plan_build`` started ended (nothing for a skipped one)."""
    if plan.get("build_id") is not None:
        build_state.finish(settings, plan["build_id"], succeeded=succeeded)


def build(settings: Settings, ctx: RunContext, full_refresh: bool = False) -> dict[str, Any]:
    """``dbt build`` of what is new, as ``plan_build`` decides: nothing, a full refresh or
    an incremental build."""
    plan = plan_build(settings, ctx, full_refresh)
    if plan["skip"]:
        return {"dbt": f"skipped: {plan['reason']}", "warnings": []}
    try:
        outcome = dbt_runner.build(settings, full_refresh=plan["full_refresh"])
    except BaseException:
        finish_build(settings, plan, succeeded=False)
        raise
    finish_build(settings, plan, succeeded=True)
    return {
        "dbt": outcome.summary(),
        "mode": plan["reason"],
        "warnings": [w["name"] for w in outcome.warnings],
    }


def analyze(settings: Settings, ctx: RunContext) -> dict[str, Any]:
    """Analyses that need more than SQL: derived factor importance per outcome. Skipped
    when it already ran on the latest build and that build's inputs are still current."""
    from cxkpi.methods import factor_importance

    # the build whose outputs the warehouse holds, unless data or definitions moved since
    built = build_state.latest(settings)
    if not build_state.is_unchanged(built, build_state.current_inputs(settings)):
        built = None
    if built is not None and built.analyzed_at is not None:
        return {
            "factor_importance": f"skipped: its inputs are unchanged since build "
            f"{built.build_id}, analyzed at {built.analyzed_at:%Y-%m-%d %H:%M:%S} UTC"
        }
    rows = factor_importance.compute(settings.warehouse)
    factor_importance.write(settings.warehouse, rows)
    if built is not None:
        build_state.mark_analyzed(settings, built.build_id)
    return {"factor_importance_rows": len(rows)}


def _published_version(settings: Settings) -> int | None:
    manifest = published_folder.current_manifest(settings.published_dir)
    return None if manifest is None else int(manifest["version"])


def gate_key(settings: Settings) -> str:
    """A digest of what the gate's verdict on given tables depends on besides the night:
    the suites, the settings (published tables, PII regions, minimum samples...) and the
    cxkpi version (its check kinds)."""
    digest = hashlib.sha256()
    digest.update(cxkpi.__version__.encode())
    digest.update(json.dumps(asdict(settings), sort_keys=True, default=str).encode())
    build_state.digest_folder(digest, settings.expectations_dir)
    return digest.hexdigest()


def _nothing_new_since_published(
    settings: Settings, built: build_state.BuildRecord | None, key: str
) -> build_state.BuildRecord | None:
    """The warehouse's build, if the full gate passed on it with today's suites and
    settings and the current version was published from it: a night that built nothing
    new then has nothing new to check or publish. A changed suite, setting or published
    version, or a build since, and the whole gate runs again."""
    if built is None or built.gate_key != key or built.published_version is None:
        return None
    return built if built.published_version == _published_version(settings) else None


def audit(settings: Settings, ctx: RunContext) -> dict[str, Any]:
    """Run the quality gate on the built warehouse; tell the notifiers how it went.

    On a night that built nothing new, whose build the gate passed and the current version
    came from, only the checks that depend on the night itself run (freshness for its
    date, its loads): every other check would read the same tables and the same
    published version, and give the same verdict."""
    # the raw watermark digests every raw row: computed once per stage
    built, key = build_state.current_build(settings), gate_key(settings)
    unchanged = _nothing_new_since_published(settings, built, key)
    try:
        with pii.phone_regions(settings.pii_phone_regions):
            report = gate.run_gate(
                settings.warehouse,
                settings.expectations_dir,
                ctx.run_dir(settings) / "gate",
                published_path=settings.published_path,
                run_id=ctx.run_id,
                logical_date=ctx.logical_date,
                published_tables=[
                    f"{t['schema']}.{t['name']}" for t in publish.published_tables(settings)
                ],
                scope="all" if unchanged is None else "night",
            )
    except GateFailed as failure:
        gate.notify(failure, settings)
        raise
    gate.notify(report, settings)
    if built is not None and unchanged is None:
        build_state.mark_gated(settings, built.build_id, key)
    summary: dict[str, Any] = dict(report.summary())
    if unchanged is not None:
        summary["scope"] = (
            f"night checks only: nothing new since build {unchanged.build_id}, which the "
            f"gate passed and version {unchanged.published_version} was published from"
        )
    return summary


def audit_load(settings: Settings, ctx: RunContext) -> dict[str, Any]:
    """The gate's checks of the night's load (rejects, empty files), right after loading:
    a night whose load rejected more than the suites allow stops here, before dbt."""
    try:
        report = gate.run_gate(
            settings.warehouse,
            settings.expectations_dir,
            ctx.run_dir(settings) / "load_gate",
            run_id=ctx.run_id,
            logical_date=ctx.logical_date,
            scope="load",
        )
    except GateFailed as failure:
        gate.notify(failure, settings)
        raise
    return report.summary()


def publish_marts(
    settings: Settings, ctx: RunContext, audit_summary: dict | None = None
) -> dict[str, Any]:
    """Publish a new version, unless this night's gate checked only the night (nothing new
    since a build the full gate passed and the current version came from): then the
    current version stays current and no copy of it is written."""
    built, key = build_state.current_build(settings), gate_key(settings)
    unchanged = _nothing_new_since_published(settings, built, key)
    if unchanged is not None and (audit_summary or {}).get("scope", "").startswith("night"):
        return {
            "version": unchanged.published_version,
            "path": str(settings.published_path),
            "skipped": f"nothing new since build {unchanged.build_id}: version "
            f"{unchanged.published_version} is current",
            "rows": {},
        }
    result = publish.publish(settings, ctx.run_id, ctx.logical_date, ctx.started_at, audit_summary)
    if built is not None and built.gate_key == key:
        build_state.mark_published(settings, built.build_id, result.version)
    return {
        "version": result.version,
        "path": str(result.path),
        "rows": result.row_counts,
        **result.scope_timing,
    }


def hand_over_cases(settings: Settings, ctx: RunContext) -> dict[str, Any]:
    """Give the case outbox this night published to the case handlers (cxkpi.outbox:
    the log by default; a ticketing API's webhook, e-mail). A stage of its own, after the
    publish: a handler that fails fails this stage alone, which can be retried without
    publishing again."""
    manifest = published_folder.current_manifest(settings.published_dir) or {}
    entry = manifest.get("outbox")
    if not entry or entry["night"] != ctx.logical_date:
        return {"cases": 0, "skipped": f"the current version has no outbox of {ctx.logical_date}"}
    folder = published_folder.version_folder(settings, manifest["version"])
    notice = outbox.published_notice(folder, manifest)
    assert notice is not None
    failures = outbox.hand_over(notice)
    if failures:
        raise CxkpiError(
            f"{len(failures)} case handler(s) failed ({'; '.join(failures)}); the outbox of "
            f"{notice.night} is published in {folder}: retry this stage to hand it over again"
        )
    return {"night": notice.night, "version": notice.version, "cases": len(notice.cases)}


@dataclass
class RunResult:
    ctx: RunContext
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def run_lock_path(settings: Settings) -> Path:
    return Path(f"{settings.warehouse_path}.run.lock")


def run_all(
    settings: Settings,
    ctx: RunContext,
    on_stage: Callable[[str, str, float, dict | None], None] | None = None,
    full_refresh: bool = False,
) -> RunResult:
    """Run every stage in order in this process; stop at the first failure.

    ``on_stage(stage, state, seconds, summary)`` is called with state 'start', 'done' or
    'failed' so a caller can show progress. The run log goes to runs/<run_id>/run.json,
    written at the start (state ``running``) and at the end (``succeeded``/``failed``).

    One run per project at a time: the run lock (next to the warehouse) is held for every
    stage, dbt included, and the night lease (cxkpi.night_lease) is claimed, so a second
    run, or an Airflow night of the same project, fails at once naming the running one
    (an Airflow night waits for the lease instead). Under the lock
    the run first marks runs that were killed as ``interrupted`` and keeps only the last
    ``keep_runs`` run folders. ``full_refresh`` rebuilds every dbt model from all data.
    """
    with process_lock(run_lock_path(settings), "run"), night_lease.cli_night(settings, ctx.run_id):
        mark_interrupted_runs(settings)
        prune_runs(settings, keep=max(settings.keep_runs - 1, 0))
        return _run_stages(settings, ctx, on_stage, full_refresh)


def _run_stages(
    settings: Settings,
    ctx: RunContext,
    on_stage: Callable[[str, str, float, dict | None], None] | None,
    full_refresh: bool,
) -> RunResult:
    result = RunResult(ctx)
    write_run_log(settings, result, "running")
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("prepare", lambda: prepare(settings, ctx)),
        ("load_x", lambda: load(settings, ctx, "x")),
        ("load_o", lambda: load(settings, ctx, "o")),
        ("load_gate", lambda: audit_load(settings, ctx)),
        ("dbt_build", lambda: build(settings, ctx, full_refresh)),
        ("analyze", lambda: analyze(settings, ctx)),
        ("gate", lambda: audit(settings, ctx)),
        ("publish", lambda: publish_marts(settings, ctx, result.stages.get("gate"))),
        ("hand_over_cases", lambda: hand_over_cases(settings, ctx)),
    ]
    state = "failed"
    try:
        for stage, step in steps:
            if on_stage:
                on_stage(stage, "start", 0.0, None)
            started = time.perf_counter()
            try:
                result.stages[stage] = step()
            except Exception as exc:
                result.seconds[stage] = time.perf_counter() - started
                result.error = f"{stage}: {exc}"
                if on_stage:
                    on_stage(stage, "failed", result.seconds[stage], None)
                raise
            result.seconds[stage] = time.perf_counter() - started
            if on_stage:
                on_stage(stage, "done", result.seconds[stage], result.stages[stage])
        state = "succeeded"
    finally:
        write_run_log(settings, result, state)
    return result


def write_run_log(settings: Settings, result: RunResult, state: str) -> Path:
    """runs/<run_id>/run.json: state (running, succeeded, failed; ``interrupted`` when a
    later run finds it still running), stage summaries and timings, the error."""
    folder = result.ctx.run_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "run.json"
    payload = {
        "run_id": result.ctx.run_id,
        "state": state,
        "pid": os.getpid(),
        "logical_date": result.ctx.logical_date,
        "started_at": result.ctx.started_at.isoformat(),
        "finished_at": None if state == "running" else datetime.now(UTC).isoformat(),
        "stages": result.stages,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "error": result.error,
    }
    tmp = folder / ".run.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _run_logs(settings: Settings) -> list[Path]:
    if not settings.runs_dir.is_dir():
        return []
    return [p for p in settings.runs_dir.glob("*/run.json") if p.is_file()]


def mark_interrupted_runs(settings: Settings) -> list[str]:
    """Runs whose run.json still says ``running``: with the run lock held, none of them is
    alive, so they were killed; record it (state ``interrupted``)."""
    marked = []
    for path in _run_logs(settings):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        if payload.get("state") != "running":
            continue
        payload["state"] = "interrupted"
        payload["error"] = payload.get("error") or (
            "interrupted: the process stopped before the run ended (killed?); found by the next run"
        )
        path.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        log.warning("run %s (pid %s) was interrupted", payload.get("run_id"), payload.get("pid"))
        marked.append(str(payload.get("run_id")))
    return marked


def prune_runs(settings: Settings, keep: int) -> list[str]:
    """Keep the ``keep`` most recent run folders (by start time in run.json)."""

    def started(path: Path) -> str:
        try:
            return str(json.loads(path.read_text(encoding="utf-8")).get("started_at") or "")
        except ValueError:
            return ""

    logs = sorted(_run_logs(settings), key=started)
    removed = []
    for path in logs[: max(len(logs) - keep, 0)]:
        shutil.rmtree(path.parent)
        removed.append(path.parent.name)
    return removed


def kpi_summary(published_path: Path) -> list[dict[str, Any]]:
    """Goals and outcome KPIs at HQ without breakdown: the latest month with a reliable
    value (else the latest month, marked not reliable), and those without any data as
    ``no_data`` (no month, no value, n 0) rather than left out. Read from the current
    version's archived Parquet files, which no BI client's lock on ``cx.duckdb`` can
    block."""
    archive = publish.current_archive(published_path.parent)
    if archive is None:
        raise ConfigError(f"nothing published yet at {published_path}: run `cxkpi run`")
    con = connect()
    try:
        for table in ("kpi_values", "kpi_catalog"):
            parquet = quote_literal(archive / f"{table}.parquet")
            con.execute(f"create view {table} as select * from read_parquet({parquet})")
        catalog_columns = {row[0] for row in con.execute("describe kpi_catalog").fetchall()}
        # versions published before kpi_catalog.has_data existed have no such KPIs to show
        no_data = "not has_data" if "has_data" in catalog_columns else "false"
        cursor = con.execute(
            f"""
            with hq_months as (
                select v.*, c.kpi_level
                from (select * from kpi_values where {package_macros.headline_slice()}) as v
                inner join kpi_catalog c using (kpi_id)
                where c.kpi_level in ('goal', 'outcome')
            ),
            latest as (
                -- the latest month with a reliable value, else the latest month
                select
                    kpi_id,
                    coalesce(max(case when is_reliable then period_start end),
                             max(period_start)) as period_start
                from hq_months group by kpi_id
            ),
            summary as (
                select v.kpi_id, v.kpi_label, v.kpi_level, v.period_start, v.value, v.unit,
                       v.n, v.target, v.status
                from hq_months v
                inner join latest using (kpi_id, period_start)

                union all

                select kpi_id, kpi_label, kpi_level, null, null, unit, 0, target,
                       '{vocabulary.NO_DATA}'
                from kpi_catalog
                where {no_data} and kpi_level in ('goal', 'outcome')
            )
            select * from summary
            order by kpi_level = 'outcome', kpi_id
            """
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
