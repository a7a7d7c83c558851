"""``cxkpi``: the command line, a thin layer over the library."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from cxkpi.config import DEFAULT_MIN_SAMPLE, DEFAULT_ORG_LEVELS, Settings, load_settings
from cxkpi.errors import CxkpiError
from cxkpi.packs import PACKS


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(
        Path(args.config) if args.config else None,
        landing_dir=getattr(args, "landing_dir", None),
        warehouse_path=getattr(args, "warehouse", None),
        published_dir=getattr(args, "published_dir", None),
        dbt_target=getattr(args, "target", None),
    )


def _print_summary(rows: list[dict[str, Any]]) -> None:
    print("\nGoals and outcome KPIs (HQ, all channels, latest month with a reliable value)")
    header = f"  {'KPI':<28} {'month':<8} {'value':>8} {'n':>7} {'target':>7}  status"
    print(header)
    print("  " + "-" * (len(header) - 2))
    for r in rows:
        target = "" if r["target"] is None else f"{r['target']:g}"
        # a goal or KPI without any data has no month and no value, only its status
        month = "" if r["period_start"] is None else f"{r['period_start']:%Y-%m}"
        value = "" if r["value"] is None else f"{r['value']:.1f}"
        print(
            f"  {r['kpi_label'][:28]:<28} {month:<7} {value:>8} "
            f"{r['n']:>7,} {target:>7}  {r['status']}"
        )


def cmd_run(args: argparse.Namespace) -> int:
    from cxkpi import pipeline

    settings = _settings(args)
    ctx = pipeline.RunContext.new(logical_date=args.logical_date)
    print(f"cxkpi run {ctx.run_id} (logical date {ctx.logical_date})")

    def progress(stage: str, state: str, seconds: float, summary: dict | None) -> None:
        if state == "start":
            print(f"  {stage:<10} ...", end="", flush=True)
        elif state == "done":
            detail = ", ".join(f"{k}={v}" for k, v in (summary or {}).items() if k != "rows")
            print(f" done in {seconds:6.2f}s  {detail}", flush=True)
        else:
            print(f" FAILED after {seconds:.2f}s", flush=True)

    started = time.perf_counter()
    result = pipeline.run_all(settings, ctx, progress, full_refresh=args.full_refresh)
    total = time.perf_counter() - started
    print("\nStage timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in result.seconds.items()))
    loaded = sum(result.stages[s]["rows_loaded"] for s in ("load_x", "load_o"))
    print(f"Total {total:.2f}s; {loaded:,} rows loaded this run")
    _print_summary(pipeline.kpi_summary(settings.published_path))
    print(f"\nPublished: {settings.published_path} (version {result.stages['publish']['version']})")
    print(f"Run log:   {ctx.run_dir(settings) / 'run.json'}")
    _print_served(settings)
    print(f"Rejects:   table raw.load_rejects in {settings.warehouse}")
    return 0


def cmd_demo_data(args: argparse.Namespace) -> int:
    from cxkpi import demo

    settings = _settings(args)
    out = Path(args.out) if args.out else settings.landing_dir
    started = time.perf_counter()
    if args.company not in demo.COMPANIES:
        known = ", ".join(demo.COMPANIES)
        raise CxkpiError(f"no demo company {args.company!r}; known: {known}")
    generate = demo.COMPANIES[args.company]
    counts = generate(
        out, scale=args.scale, seed=args.seed, end_date=date.fromisoformat(args.end_date)
    )
    seconds = time.perf_counter() - started
    total = sum(counts.values())
    print(f"{args.company} demo data in {out} ({seconds:.1f}s, {total:,} rows):")
    for name, count in counts.items():
        print(f"  {name:<28} {count:>10,}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check KPI definitions (all problems at once), and with no paths also the sources
    and the quality suites of the project."""
    from cxkpi import kpi_spec
    from cxkpi.gate import checks  # noqa: F401  (registers the check kinds suites name)
    from cxkpi.gate.suites import load_suites

    try:
        settings: Settings | None = _settings(args)
    except CxkpiError:
        if not args.paths:
            raise
        settings = None  # checking given files needs no project
    if args.paths:
        paths = [Path(p) for p in args.paths]
    else:
        assert settings is not None  # only checking given files may go without a project
        paths = [settings.kpi_definitions_dir]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise CxkpiError(f"no such file or folder: {', '.join(map(str, missing))}")
    catalog = kpi_spec.load_catalog(
        paths,
        settings.min_sample if settings else DEFAULT_MIN_SAMPLE,
        settings.org_levels if settings else DEFAULT_ORG_LEVELS,
    )
    for problem in sorted(catalog.problems, key=lambda p: (str(p.file), p.line, p.column)):
        print(problem)
    for note in catalog.notes:
        print(f"note: {note}")
    failed = bool(catalog.problems)
    kinds = {k: sum(d.kind == k for d in catalog.definitions) for k in kpi_spec.KINDS}
    off = f", {len(catalog.switched_off)} switched off" if catalog.switched_off else ""
    if catalog.not_chosen:
        not_chosen = ", ".join(sorted(set(catalog.not_chosen.values())))
        off += f", links into packs not chosen: {not_chosen}"
    print(
        f"{'error' if failed else 'ok   '} kpi definitions: {kinds['goal']} goals, "
        f"{kinds['kpi']} KPIs, {kinds['factor']} factors, {len(catalog.problems)} problems{off}"
    )
    if settings is not None and not args.paths:
        from cxkpi.sources import check_sources

        specs, source_problems = check_sources(
            settings.sources_dir, settings.dbt_project_dir, settings.vocabularies
        )
        for source_problem in source_problems:
            print(source_problem)
        failed = failed or bool(source_problems)
        print(
            f"{'error' if source_problems else 'ok   '} sources: {len(specs)} source "
            f"declarations, {len(source_problems)} problems"
            + ("" if specs else " (none yet: a night needs at least one)")
        )
        if settings.landing_dir.is_dir():
            from cxkpi.source_headers import check_landing_headers

            files, file_problems = check_landing_headers(specs, settings.landing_dir)
            for file_problem in file_problems:
                print(file_problem)
            failed = failed or bool(file_problems)
            print(
                f"{'error' if file_problems else 'ok   '} landing files: {files} files' "
                f"headers checked, {len(file_problems)} problems"
            )
        try:
            print(f"ok    expectations: {len(load_suites(settings.expectations_dir))} suites")
        except CxkpiError as exc:
            failed = True
            print(f"error expectations: {exc}")
        from cxkpi.case_rules import load_loop_rules

        try:
            rules = load_loop_rules(settings)
            keywords = sum(len(t.keywords) for t in rules.topics.topics)
            print(f"ok    topics: {len(rules.topics.topics)} topics, {keywords} keywords")
            print(f"ok    case rules: {len(rules.case_rules.rules)} rules")
        except CxkpiError as exc:
            failed = True
            print(f"error topic and case rules: {exc}")
        from cxkpi.access import load_access

        try:
            access = load_access(settings.access_file, settings.org_levels)
            print(
                f"ok    access: {len(access.scope_levels)} scope levels, "
                f"{len(access.grants)} grants"
            )
        except CxkpiError as exc:
            failed = True
            print(f"error access: {exc}")
    return 1 if failed else 0


def cmd_compile(args: argparse.Namespace) -> int:
    from cxkpi import dbt_runner, pipeline

    settings = _settings(args)
    started = time.perf_counter()
    summary = pipeline.compile_catalog(settings)
    print(
        f"compiled {summary['kpis']} KPIs ({summary['goals']} goals, {summary['factors']} "
        f"factors) into {settings.dbt_project_dir / 'models' / 'kpis'}: "
        f"{summary['models_changed']} file(s) changed in {time.perf_counter() - started:.2f}s"
    )
    if not args.no_parse:
        print(f"wrote {dbt_runner.parse(settings)}")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from cxkpi.scaffold import new_definition

    settings = _settings(args)
    path = new_definition(args.kind, args.id, settings.kpi_definitions_dir)
    print(f"wrote {path}: edit it, then run `cxkpi validate`")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from cxkpi.new_project import init_project

    project = init_project(Path(args.folder), args.packs.split(","))
    others = [name for name in PACKS if name not in project.packs]
    compiled = project.compiled
    print(
        f"created {project.folder}: packs {', '.join(project.packs)}"
        + (f" (not chosen: {', '.join(others)})" if others else "")
        + f"; {compiled['kpis']} KPIs ({compiled['goals']} goals, {compiled['factors']} "
        "factors) compiled into its dbt project\n"
    )
    print(project.next_steps, end="")
    return 0


def cmd_gap(args: argparse.Namespace) -> int:
    from cxkpi.methods import gap

    rows = gap.read_input(Path(args.input))
    results = gap.analyse(rows)
    print(gap.render_table(results))
    if args.output:
        gap.write_output(results, Path(args.output))
        print(f"\nwrote {args.output}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from cxkpi import publish

    settings = _settings(args)
    result = publish.rollback(settings, args.to)
    history = publish.read_publish_log(settings.published_path)
    print(
        f"published version {result.version}: the content of version "
        f"{history[-1]['source_version']} ({history[-1]['row_counts']})"
    )
    print(f"kept versions: {publish.kept_versions(settings)}")
    _print_served(settings)
    return 0


def _print_served(settings) -> None:
    if settings.postgres is not None and settings.warehouse.is_postgres:
        print(
            f"Served:    schema {settings.postgres.published_schema} of {settings.warehouse} "
            "(row-level security per scope)"
        )


def cmd_report(args: argparse.Namespace) -> int:
    from cxkpi.report import regenerate

    settings = _settings(args)
    written = regenerate(settings, args.version, args.scope, Path(args.out))
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from cxkpi import pipeline

    settings = _settings(args)
    if not settings.published_path.exists():
        raise CxkpiError(f"nothing published yet at {settings.published_path}: run `cxkpi run`")
    _print_summary(pipeline.kpi_summary(settings.published_path))
    return 0


def cmd_airflow_env(args: argparse.Namespace) -> int:
    """Print the exports every Airflow process of this project needs (the README's recipe:
    ``eval "$(cxkpi airflow-env)"`` before starting each service)."""
    from cxkpi.airflow_local import recipe_environment, shell_exports
    from cxkpi.config import find_config

    config = find_config(None) if args.config is None else Path(args.config)
    environment = recipe_environment(
        config,
        Path(args.airflow_home),
        dags_folder=Path(args.dags_folder) if args.dags_folder else None,
        host=args.host,
        port=args.port,
    )
    print(shell_exports(environment), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cxkpi", description=__doc__)
    parser.add_argument("--config", help="path to cxkpi.yml (default: found from the cwd)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_paths(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--landing-dir", help="override landing_dir")
        p.add_argument("--warehouse", help="override warehouse_path")
        p.add_argument("--published-dir", help="override published_dir")
        p.add_argument("--target", help="override the dbt target")
        return p

    run = with_paths(sub.add_parser("run", help="run the nightly pipeline once, in-process"))
    run.add_argument("--logical-date", help="YYYY-MM-DD the run is for (default: today, UTC)")
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every dbt model from all data, whatever the last build left",
    )
    run.set_defaults(func=cmd_run)

    demo = with_paths(sub.add_parser("demo-data", help="generate the demo landing files"))
    demo.add_argument(
        "--company",
        default="retailer",
        help="retailer (the demo, default) or marketplace (examples/marketplace)",
    )
    demo.add_argument("--scale", type=float, default=1.0, help="row-count multiplier")
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--end-date", default="2026-10-31", help="last day of demo data")
    demo.add_argument("--out", help="folder to write (default: landing_dir)")
    demo.set_defaults(func=cmd_demo_data)

    validate = with_paths(
        sub.add_parser("validate", help="check KPI definitions (and sources, suites)")
    )
    validate.add_argument("paths", nargs="*", help="KPI definition files or folders")
    validate.set_defaults(func=cmd_validate)

    compile_ = with_paths(
        sub.add_parser("compile", help="compile KPI definitions into dbt models, parse dbt")
    )
    compile_.add_argument("--no-parse", action="store_true", help="skip `dbt parse`")
    compile_.set_defaults(func=cmd_compile)

    new = with_paths(sub.add_parser("new", help="write a commented KPI/goal/factor template"))
    new.add_argument("kind", choices=("kpi", "goal", "factor"))
    new.add_argument("id", help="id of the new definition, e.g. delivery_csat")
    new.set_defaults(func=cmd_new)

    init = sub.add_parser(
        "init",
        help="create a new company project in an empty folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create a new project: cxkpi.yml, source templates, the catalog packs "
        "chosen, the quality suites and a dbt project of its own. Packs:\n"
        + "\n".join(f"  {name:<10} {summary}" for name, summary in PACKS.items()),
    )
    init.add_argument("folder", help="a new or empty folder")
    init.add_argument(
        "--packs",
        default="core",
        help="comma-separated catalog packs; core is always included (default: core)",
    )
    init.set_defaults(func=cmd_init)

    gap_ = sub.add_parser("gap", help="factor gap analysis of a small CSV (no warehouse)")
    gap_.add_argument(
        "--input", required=True, help="CSV: factor, experience, expectation, importance, ideal"
    )
    gap_.add_argument("--output", help="write the step-by-step table as CSV")
    gap_.set_defaults(func=cmd_gap)

    rollback = with_paths(sub.add_parser("rollback", help="publish an earlier version again"))
    rollback.add_argument("--to", type=int, help="version to restore (default: the previous)")
    rollback.set_defaults(func=cmd_rollback)

    airflow_env = sub.add_parser(
        "airflow-env", help="print the environment of this project's Airflow services"
    )
    airflow_env.add_argument("--airflow-home", default="airflow_home", help="AIRFLOW_HOME")
    airflow_env.add_argument("--dags-folder", help="default: dags/ beside cxkpi.yml")
    airflow_env.add_argument("--host", default="127.0.0.1", help="where the api-server binds")
    airflow_env.add_argument("--port", type=int, default=8080, help="the api-server's port")
    airflow_env.set_defaults(func=cmd_airflow_env)

    report = with_paths(
        sub.add_parser("report", help="draw the role reports of a published version again")
    )
    report.add_argument("--scope", help="the scope's org unit id (default: every scope)")
    report.add_argument("--version", type=int, help="published version (default: current)")
    report.add_argument("--out", default="reports", help="folder to write <unit>/report.html")
    report.set_defaults(func=cmd_report)

    summary = with_paths(sub.add_parser("summary", help="print the published headline KPIs"))
    summary.set_defaults(func=cmd_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except BrokenPipeError:  # e.g. `cxkpi validate | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except CxkpiError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
