"""The enumerations of the KPI model, defined once.

The KPI language (kpi_spec), the compiler (kpi_compile), the dbt marts' tests
(``_marts.yml``) and the quality suites (``expectations/``) all speak these words;
``tests/test_one_definition.py`` fails when a copy in SQL or YAML drifts from them.
"""

from __future__ import annotations

# Time grains a KPI value is computed at (period_grain).
TIME_GRAINS = ("day", "week", "month")
# Org levels (org_level) are not a vocabulary: each company declares its own in cxkpi.yml
# (cxkpi.org).
# Breakdowns a KPI value can be sliced by; 'all' is the value of a slice not broken down.
# topic (of the verbatim, topics/) is many-valued: a value per topic counts every row whose
# verbatim has that topic, so the topic slices of a KPI do not add up to its total.
TOPIC_BREAKDOWN = "topic"
BREAKDOWNS = ("channel", "segment", "touchpoint", TOPIC_BREAKDOWN)
UNITS = ("points", "percent", "ratio", "score", "count", "currency", "days", "hours")
DIRECTIONS = ("higher", "lower")
# kpi_values.status, in the order the mart decides it.
VALUE_STATUSES = ("no_target", "not_reliable", "no_value", "on_track", "at_risk", "off_track")
# A goal or KPI whose inputs have no data at all over the whole data (a source without
# rows, a question nobody answered; kpi_catalog.has_data false): it has no row in
# kpi_values, so this is not a value's status but the catalog's, shown by kpi_tree and
# kpi_alignment_report and left out of roll-ups, effectiveness, the roadmap and the gate.
NO_DATA = "no_data"
# Every status a goal or KPI can have: its values' or, without any data, no_data.
KPI_STATUSES = (*VALUE_STATUSES, NO_DATA)
