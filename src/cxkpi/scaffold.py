"""``cxkpi new kpi|goal|factor <id>``: a commented template, in the right place.

The choices it lists (sources, KPI types) come from ``kpi_sources`` and ``kpi_types``, so a
new type or source shows up here without an edit.
"""

from __future__ import annotations

import re
from pathlib import Path

from cxkpi.errors import CxkpiError
from cxkpi.kpi_sources import SOURCES
from cxkpi.kpi_spec import ID_PATTERN
from cxkpi.kpi_types import TYPES

FOLDERS = {"kpi": "kpis", "goal": "goals", "factor": "factors"}

TEMPLATES = {
    "kpi": """\
# KPI {id}: fill in, then run `cxkpi validate` and `cxkpi run`.
# Language reference: docs/analysts.md. Editors: kpi_definitions/kpi.schema.json.
id: {id}
label: {label}
description: >
  What this measures, and why moving it matters.
owner: CX Insights              # who answers for it
level: driver                   # goal | outcome | driver | operational
parents: []                     # ids it moves, e.g. [service_quality] or [{{id: nps, weight: 2}}]

source: survey_responses        # {sources}
type: top_box                   # {types}
measure: csat                   # a column or SQL expression of the source
# filters:                      # rows to count, e.g.
#   - channel = 'web'
# dimensions:
#   time_grains: [day, week, month]
#   org_levels: [store, region, hq]
#   breakdowns: [channel]       # channel | segment | touchpoint

direction: higher               # higher | lower is better
# unit: percent                 # inferred from the type
target: 80
# target:                       # or with milestones:
#   value: 85
#   by: 2027-12-31
#   milestones:
#     - {{date: 2027-06-30, value: 82}}
thresholds:
  at_risk: 75                   # from here up to the target: at risk, below: off track
# min_sample: 50               # default: min_sample in cxkpi.yml
# (benchmarks are data: rows of the benchmarks export, docs/analysts.md, Benchmarks)
# effort: medium                # low | medium | high
# actions: [Train advisors on follow-up calls]
""",
    "goal": """\
# Goal {id}: the future you work back from (theory of change).
id: {id}
kind: goal
label: {label}
description: >
  The change the business wants, and by when.
owner: Leadership team
# A goal can be measured like a KPI (source, type, measure, target), or stay a
# statement that KPIs link to with `parents: [{id}]`.
# source: orders
# type: share
# condition: repurchased_within_90d
# filters: [is_observable_90d]
# target: {{value: 80, by: 2028-12-31}}
""",
    "factor": """\
# Experience factor {id}: rated by customers on experience, expectation and importance.
id: {id}
kind: factor
label: {label}
description: >
  What customers rate under this factor.
ideal: 8                        # the level worth reaching (0-10): not every expectation
                                # must be exceeded
""",
}


# where a trailing comment starts in the templates
_COMMENT_COLUMN = 32


def _choices(options: tuple[str, ...] | list[str]) -> str:
    """Options for a trailing comment, ``a | b | c``, wrapped under the comment column."""
    lines, line = [], ""
    for option in options:
        candidate = f"{line} | {option}" if line else option
        if line and _COMMENT_COLUMN + 2 + len(candidate) + 2 > 100:
            lines.append(line + " |")
            candidate = option
        line = candidate
    lines.append(line)
    return ("\n" + " " * _COMMENT_COLUMN + "# ").join(lines)


def new_definition(kind: str, definition_id: str, directory: Path) -> Path:
    if kind not in TEMPLATES:
        raise CxkpiError(f"can scaffold {', '.join(TEMPLATES)}, not {kind!r}")
    if not re.match(ID_PATTERN, definition_id):
        raise CxkpiError(
            f"id {definition_id!r} must be lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    target = directory / FOLDERS[kind] / f"{definition_id}.yml"
    if target.exists():
        raise CxkpiError(f"{target} already exists")
    existing = [
        p
        for p in directory.rglob("*.yml")
        if f"id: {definition_id}\n" in p.read_text(encoding="utf-8")
    ]
    if existing:
        raise CxkpiError(f"id {definition_id!r} is already used in {existing[0]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    label = definition_id.replace("_", " ").capitalize()
    text = TEMPLATES[kind].format(
        id=definition_id, label=label, sources=_choices(list(SOURCES)), types=_choices(TYPES)
    )
    target.write_text(text, encoding="utf-8")
    return target
