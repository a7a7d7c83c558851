"""The Great Expectations adapter: ``expect:`` checks run on pandas batches of the marts.

GX's SQL datasource is broken on DuckDB upstream (GX issue 11579) while its pandas
datasource is correct, and the published marts are aggregates, small enough for memory.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

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


def run_expectations(
    suites: list[Suite], frames: dict[str, Any], evidence_dir: Path | None
) -> list[CheckResult]:
    import great_expectations as gx
    from great_expectations.checkpoint.actions import ValidationAction

    # GX logs each step at INFO: the gate's log leads with its verdict, not with GX's steps
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = _gx_context(evidence_dir)
    datasource = context.data_sources.add_pandas("cxkpi_warehouse")
    results = []
    for suite in suites:
        asset = datasource.add_dataframe_asset(name=suite.name)
        batch = asset.add_batch_definition_whole_dataframe(f"{suite.name}_batch")
        gx_suite = context.suites.add(gx.ExpectationSuite(name=suite.name))
        check_of_id: dict[str, Check] = {}
        for check in suite.expectations:
            assert check.expectation is not None
            added = gx_suite.add_expectation(
                getattr(gx.expectations, check.expectation)(**check.kwargs)
            )
            check_of_id[str(added.id)] = check
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(data=batch, suite=gx_suite, name=f"{suite.name}_validation")
        )
        assert suite.table is not None
        actions: list[ValidationAction] = (
            [] if evidence_dir is None else [gx.checkpoint.UpdateDataDocsAction(name="data_docs")]
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{suite.name}_checkpoint",
                validation_definitions=[definition],
                actions=actions,
                result_format="SUMMARY",
            )
        )
        outcome_of_run = checkpoint.run(batch_parameters={"dataframe": frames[suite.table]})
        [result] = outcome_of_run.run_results.values()
        if evidence_dir is not None:
            (evidence_dir / f"{suite.name}.json").write_text(
                json.dumps(result.to_json_dict(), indent=2, default=str), encoding="utf-8"
            )
        for outcome in result.results:
            check = check_of_id[str(outcome.expectation_config.id)]
            details = outcome.result or {}
            results.append(
                CheckResult(
                    suite=suite.name,
                    table=suite.table,
                    check=check.label,
                    severity=check.severity,
                    success=bool(outcome.success),
                    unexpected_count=details.get("unexpected_count"),
                    sample=list(details.get("partial_unexpected_list") or [])[:SAMPLE_ROWS],
                )
            )
    return results
