"""Domain errors: each says what went wrong, where, and what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the gate imports this module: only the type checker follows this import
    from cxkpi.gate.report import GateReport


class CxkpiError(Exception):
    """Base class; the CLI prints these without a traceback and exits non-zero."""


class ConfigError(CxkpiError):
    """A configuration or source declaration is invalid."""


class LoadError(CxkpiError):
    """Landing files could not be loaded (the rows are kept in the rejects table)."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class DbtError(CxkpiError):
    """A dbt command failed: a model did not build or a dbt test failed."""


class GateFailed(CxkpiError):
    """The quality gate found errors: nothing was published.

    ``report`` is the whole ``cxkpi.gate.GateReport`` of the run (every check, passed or
    not) when the gate raised it; ``failures`` the failed checks as dicts.
    """

    def __init__(
        self,
        message: str,
        failures: list[dict] | None = None,
        report: GateReport | None = None,
    ) -> None:
        super().__init__(message)
        self.failures = failures or []
        self.report = report


class PublishError(CxkpiError):
    """Publishing failed; the previously published version is still in place."""
