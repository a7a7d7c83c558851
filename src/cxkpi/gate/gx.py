"""The Great Expectations adapter: ``expect:`` checks run on pandas batches of the marts.

GX's SQL datasource is broken on DuckDB upstream (GX issue 11579) while its pandas
datasource is correct, and the published marts are aggregates, small enough for memory.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cxkpi.gate.batches import Batch
from cxkpi.gate.report import SAMPLE_ROWS, CheckResult
from cxkpi.gate.suites import Check, Suite


def _gx_context(evidence_dir: Path | None):
    """An ephemeral GX context; with an evidence folder, its stores and Data Docs site
    live in ``<evidence_dir>/gx`` so every run keeps its own validation results and HTML."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        FilesystemStoreBackendDefaults,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    if evidence_dir is not None:
        # a retried task (same run id) replaces the evidence of the attempt before
        shutil.rmtree(evidence_dir / "gx", ignore_errors=True)
    stores = (
        FilesystemStoreBackendDefaults(root_directory=str((evidence_dir / "gx").resolve()))
        if evidence_dir is not None
        else InMemoryStoreBackendDefaults()
    )
    config = DataContextConfig(
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        store_backend_defaults=stores,
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def data_docs_index(evidence_dir: Path) -> Path:
    """Where a run's Great Expectations Data Docs start."""
    return evidence_dir / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"


def _skip_batch_fingerprints() -> None:
    """GX hashes every pandas batch under 1 GB of memory (``HASH_THRESHOLD``) into a
    ``pandas_data_fingerprint`` batch marker that nothing of ours reads: on kpi_values'
    2.9 M rows at --scale 10 that hashing was a third of the gate's GX time. The threshold
    is a module constant of GX's pandas engine; without it (another GX version), GX hashes
    as before and only time is lost."""
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


def run_expectations(
    suites: list[Suite],
    batches: list[Batch],
    frame_of: Callable[[Batch], Any],
    evidence_dir: Path | None,
) -> list[CheckResult]:
    """Validate ``batches`` (``cxkpi.gate.batches.plan`` of ``suites``) one at a time,
    ``frame_of`` giving each its pandas frame; one result per expectation of ``suites``:
    it passed if it passed on every batch it was validated on, its unexpected rows are
    theirs together. Evidence: ``<batch>.json`` per batch, and GX's Data Docs."""
    if not batches:
        return []  # the load and night scopes: importing GX alone costs seconds
    import great_expectations as gx

    # GX logs each step at INFO: the gate's log leads with its verdict, not with GX's steps
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    _skip_batch_fingerprints()
    context = _gx_context(evidence_dir)
    datasource = context.data_sources.add_pandas("cxkpi_warehouse")
    outcomes: dict[int, list[Any]] = {}
    for batch_of_rows in batches:
        name = batch_of_rows.name
        asset = datasource.add_dataframe_asset(name=name)
        batch = asset.add_batch_definition_whole_dataframe(f"{name}_batch")
        gx_suite = context.suites.add(gx.ExpectationSuite(name=name))
        check_of_id: dict[str, Check] = {}
        for check in batch_of_rows.suite.expectations:
            assert check.expectation is not None
            added = gx_suite.add_expectation(
                getattr(gx.expectations, check.expectation)(**check.kwargs)
            )
            check_of_id[str(added.id)] = check
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch, suite=gx_suite, name=f"{name}_validation")
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{name}_checkpoint",
                validation_definitions=[definition],
                actions=[],
                result_format="SUMMARY",
            )
        )
        frame = frame_of(batch_of_rows)
        outcome_of_run = checkpoint.run(batch_parameters={"dataframe": frame})
        del frame  # one batch in memory at a time
        [result] = outcome_of_run.run_results.values()
        if evidence_dir is not None:
            (evidence_dir / f"{name}.json").write_text(
                json.dumps(result.to_json_dict(), indent=2, default=str), encoding="utf-8"
            )
        for outcome in result.results:
            check = check_of_id[str(outcome.expectation_config.id)]
            outcomes.setdefault(id(check), []).append(outcome)
    if evidence_dir is not None:
        # once for the night: a docs action per checkpoint rebuilt the whole site per batch
        # (5 s of Jinja at --scale 10, eight batches)
        context.build_data_docs()
    results = []
    for suite in suites:
        assert suite.table is not None
        for check in suite.expectations:
            parts = outcomes[id(check)]
            details = [outcome.result or {} for outcome in parts]
            counts = [
                d["unexpected_count"] for d in details if d.get("unexpected_count") is not None
            ]
            sample = [value for d in details for value in d.get("partial_unexpected_list") or []]
            results.append(
                CheckResult(
                    suite=suite.name,
                    table=suite.table,
                    check=check.label,
                    severity=check.severity,
                    success=all(bool(outcome.success) for outcome in parts),
                    unexpected_count=sum(counts) if counts else None,
                    sample=sample[:SAMPLE_ROWS],
                )
            )
    return results
