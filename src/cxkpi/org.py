"""The org hierarchy a company declares: its levels and how orders find their org unit.

``cxkpi.yml`` names the levels top-down (``org_levels: [hq, region, store, advisor]``, or
``[hq, state, seller]`` for a marketplace). KPI values are computed at every level; each
level becomes a column ``<level>_id`` of ``dim_org_units`` and of the marts that carry an
org unit, so a level name must be a plain identifier that clashes with no other column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cxkpi.canonical import ENTITIES
from cxkpi.errors import ConfigError

MAX_LEVELS = 6
LEVEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,29}")
# Where an order sold by several org units (a marketplace order with two sellers) counts:
# at the unit of its line with the largest amount, of its first line, or at each unit.
MULTI_UNIT_RULES = {
    "largest_line": "the unit of the line with the largest amount (ties: the first line)",
    "first_line": "the unit of the first line (lowest line_number, then line_id)",
    "each_line": "every unit the order's lines name, once each; above them once per unit",
}
# ``<level>_id`` must not clash with a column the marts already have.
_TAKEN_PREFIXES = {
    column.name.removesuffix("_id")
    for entity in ENTITIES.values()
    for column in entity.columns
    if column.name.endswith("_id")
} | {"org_unit", "parent", "kpi", "kpi_value", "observation", "factor_rating", "top"}


def check_levels(levels: Sequence[str]) -> None:
    """ConfigError unless ``levels`` is 1-6 distinct identifiers usable as column names."""
    if not 1 <= len(levels) <= MAX_LEVELS:
        raise ConfigError(
            f"org_levels must name 1 to {MAX_LEVELS} levels, top-down (e.g. [hq, region, "
            f"store] or [hq, state, seller]), got {list(levels)}"
        )
    for level in levels:
        if not LEVEL_NAME.fullmatch(level):
            raise ConfigError(
                f"org_levels: {level!r} must be lowercase letters, digits and underscores, "
                "starting with a letter (at most 30): it becomes the column "
                f"<level>_id of dim_org_units"
            )
        if level in _TAKEN_PREFIXES:
            raise ConfigError(
                f"org_levels: {level!r} would make the column {level}_id, which the "
                f"canonical model already uses; name the level differently "
                f"(e.g. {level}_unit)"
            )
    duplicates = sorted({level for level in levels if list(levels).count(level) > 1})
    if duplicates:
        raise ConfigError(f"org_levels: {duplicates} named more than once")


def check_multi_unit_rule(rule: str) -> None:
    if rule not in MULTI_UNIT_RULES:
        raise ConfigError(
            f"multi_unit_orders {rule!r} unknown; use one of {sorted(MULTI_UNIT_RULES)}"
        )
