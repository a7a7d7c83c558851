"""The quality gate: the suites of ``expectations/``, run before anything is published.

A suite holds two kinds of checks:

* **Great Expectations expectations** (``expect: ...``) audit the marts about to be
  published, read into pandas batches (``cxkpi.gate.gx``).
* **cxkpi checks** (``check: <kind>``) need what GX does not have: the run (its id and
  logical date), the load registry, the last published version. They are SQL run by DuckDB
  in the warehouse, so they scale with the database, not with memory (see
  docs/quality-gate.md). One module per kind in ``cxkpi.gate.checks``, registered in
  ``cxkpi.gate.registry``.

dbt's own tests run earlier, inside ``dbt build``. A check with severity ``error`` blocks
the publish; ``warn`` is reported and published.

The package: ``suites`` (suite files, parameter validation), ``registry`` (check kinds),
``checks/`` (one module per kind, shared SQL in ``checks/_common``), ``gx`` (the Great
Expectations adapter), ``report`` (results), ``runner`` (``run_gate``, evidence),
``notifiers`` (``notify`` and the notifiers).
"""

from __future__ import annotations

from cxkpi.gate import checks  # noqa: F401  (registers every check kind)
from cxkpi.gate.checks._common import mask_pii
from cxkpi.gate.gx import data_docs_index
from cxkpi.gate.notifiers import (
    NOTIFIERS,
    GateNotice,
    Notifier,
    email_notifier,
    log_notifier,
    notify,
    webhook_notifier,
)
from cxkpi.gate.registry import CHECK_KINDS, CheckKind, GateContext, Outcome, Param, check_kind
from cxkpi.gate.report import CheckResult, GateReport
from cxkpi.gate.runner import run_gate
from cxkpi.gate.suites import SEVERITIES, Check, Suite, load_suites

__all__ = [
    "CHECK_KINDS",
    "NOTIFIERS",
    "SEVERITIES",
    "Check",
    "CheckKind",
    "CheckResult",
    "GateContext",
    "GateNotice",
    "GateReport",
    "Notifier",
    "Outcome",
    "Param",
    "Suite",
    "check_kind",
    "data_docs_index",
    "email_notifier",
    "load_suites",
    "log_notifier",
    "mask_pii",
    "notify",
    "run_gate",
    "webhook_notifier",
]
