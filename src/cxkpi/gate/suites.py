"""Suite files of ``expectations/``: parsing, and validation of every check's parameters.

Suite file format::

    table: marts.kpi_values          # schema.table the expectations run on (optional
                                     # when the suite holds only cxkpi checks)
    checks:
      - expect: column_values_to_not_be_null   # any GX expectation, without "expect_"...
        column: kpi_value_id                   # ...and its arguments
        severity: error                        # error (default) or warn
      - check: volume_change                   # a cxkpi check kind...
        max_ratio: 10                          # ...and its parameters
        severity: error
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cxkpi.errors import ConfigError
from cxkpi.gate import gx_catalog
from cxkpi.gate.registry import CHECK_KINDS, Param

SEVERITIES = ("error", "warn")


@dataclass(frozen=True)
class Check:
    expectation: str | None  # GX class name (ExpectColumnValuesToNotBeNull), None for cxkpi
    kwargs: dict[str, Any]  # GX arguments, or the cxkpi check's parameters (defaults filled)
    severity: str
    label: str  # as the suite file wrote it, for messages
    kind: str = "expect"  # "expect" or a cxkpi check kind
    table: str = ""  # the table the check is about, for messages


@dataclass(frozen=True)
class Suite:
    name: str
    table: str | None  # schema.table of the expectations
    checks: tuple[Check, ...]
    path: Path

    @property
    def expectations(self) -> list[Check]:
        return [c for c in self.checks if c.expectation is not None]

    @property
    def cxkpi_checks(self) -> list[Check]:
        return [c for c in self.checks if c.expectation is None]


def _validate_param(name: str, spec: Param, value: Any) -> Any:
    def fail(expected: str) -> ConfigError:
        return ConfigError(f"parameter {name!r} must be {expected}, got {value!r}")

    number = isinstance(value, int | float) and not isinstance(value, bool)
    if spec.type == "table":
        if not isinstance(value, str) or value.count(".") != 1:
            raise fail("schema.table")
    elif spec.type == "column":
        if not isinstance(value, str) or not value:
            raise fail("a column name")
    elif spec.type == "share":
        if not number or not 0 <= value <= 1:
            raise fail("a share between 0 and 1 (0.05 = 5%)")
    elif spec.type == "ratio":
        if not number or value <= 1:
            raise fail("a ratio above 1 (3 = three times more or less)")
    elif spec.type in ("number", "days"):
        if not number or value < 0:
            raise fail("a number >= 0")
    elif spec.type == "names":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("a list of names")
    elif spec.type == "bounds":
        if number and value >= 0:
            return {"default": value}
        if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for v in value.values()
        ):
            raise fail("a number or a mapping of unit to number, e.g. {points: 30}")
        return {str(k): v for k, v in value.items()}
    elif spec.type == "bool" and not isinstance(value, bool):
        raise fail("true or false")
    return value


def _parse_cxkpi_check(raw: dict, suite_table: str | None) -> Check:
    kind_name = str(raw["check"])
    kind = CHECK_KINDS.get(kind_name)
    if kind is None:
        raise ConfigError(f"unknown check kind {kind_name!r}; known: {sorted(CHECK_KINDS)}")
    given = {k: v for k, v in raw.items() if k not in ("check", "severity")}
    if "table" in kind.params and "table" not in given and suite_table:
        given["table"] = suite_table
    unknown = sorted(set(given) - set(kind.params))
    if unknown:
        raise ConfigError(
            f"{kind_name}: unknown parameter(s) {unknown}; known: {sorted(kind.params)}"
        )
    params: dict[str, Any] = {}
    for name, spec in kind.params.items():
        if name in given:
            params[name] = _validate_param(name, spec, given[name])
        elif spec.required:
            raise ConfigError(f"{kind_name}: parameter {name!r} is required")
        else:
            params[name] = spec.default
    return Check(
        None,
        params,
        str(raw.get("severity", "error")),
        kind.label(params),
        kind_name,
        kind.table(params),
    )


def _suite_name(class_name: str) -> str:
    """ExpectColumnValuesToBeUnique -> column_values_to_be_unique, as a suite writes it."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name.removeprefix("Expect")).lower()


def _expectation_class_name(name: str) -> str:
    name = name.removeprefix("expect_")
    return "Expect" + "".join(part.capitalize() for part in name.split("_"))


def _parse_expectation(raw: dict, table: str | None) -> Check:
    """Checked against the installed GX's expectations and their arguments, as listed in
    gx_catalog (without importing GX: validate answers in well under a second)."""
    if table is None:
        raise ConfigError("an expectation needs the suite's 'table: schema.table'")
    kwargs = {k: v for k, v in raw.items() if k not in ("expect", "severity")}
    class_name = _expectation_class_name(str(raw["expect"]))
    known = gx_catalog.expectations()
    if class_name not in known:
        close = difflib.get_close_matches(class_name, known, n=1)
        hint = f"; did you mean {_suite_name(close[0])!r}?" if close else ""
        raise ConfigError(
            f"{raw['expect']!r} is not a Great Expectations expectation "
            f"(looked for gx.expectations.{class_name}){hint}"
        )
    unknown = sorted(set(kwargs) - set(known[class_name]))
    if unknown:
        raise ConfigError(
            f"{raw['expect']}: unknown argument(s) {unknown}; "
            f"it takes {', '.join(known[class_name])}"
        )
    label = str(raw["expect"]) + (f"({raw['column']})" if "column" in raw else "")
    return Check(class_name, kwargs, str(raw.get("severity", "error")), label, "expect", table)


def load_suites(directory: Path) -> list[Suite]:
    suites = []
    for path in sorted([*directory.glob("*.yml"), *directory.glob("*.yaml")]):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("checks"), list):
            raise ConfigError(f"{path}: a suite needs 'checks: [...]' (and 'table: schema.table')")
        table = str(data["table"]) if data.get("table") is not None else None
        if table is not None and table.count(".") != 1:
            raise ConfigError(f"{path}: table must be schema.table, got {table!r}")
        checks = []
        for i, raw in enumerate(data["checks"], start=1):
            if not isinstance(raw, dict) or ("expect" in raw) == ("check" in raw):
                raise ConfigError(
                    f"{path}: check {i}: needs either 'expect: <expectation name>' "
                    "or 'check: <cxkpi check kind>'"
                )
            if raw.get("severity", "error") not in SEVERITIES:
                raise ConfigError(f"{path}: check {i}: severity must be one of {SEVERITIES}")
            try:
                if "expect" in raw:
                    checks.append(_parse_expectation(raw, table))
                else:
                    checks.append(_parse_cxkpi_check(raw, table))
            except ConfigError as exc:
                raise ConfigError(f"{path}: check {i}: {exc}") from None
        suites.append(Suite(path.stem, table, tuple(checks), path))
    return suites
