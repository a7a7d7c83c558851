"""Who sees what: the access file, and the scopes it publishes (issue 13, role views).

A data engineer writes ``access/access.yml`` (the ``access_file`` setting)::

    scopes:                       # which units get their own extract and report
      - level: hq
      - level: region
        sees_above: [hq]          # a region's extract also holds HQ's aggregate values
      - level: store
        sees_above: [region, hq]
    grants:                       # people and groups, to the scopes they may open
      - who: [maria.rossi@acme.example, group:store-managers-s01]
        units: [S01]
      - who: [group:cx-team]
        units: [HQ]               # the top unit: everything

A scope is an org unit and everything below it. Every unit at a scope level gets one
extract: the rows of its subtree in every table keyed by org unit, and, for each level its
scope names in ``sees_above``, the aggregate values of its ancestor at that level - never a
sibling's rows. A grant gives people or groups the scopes of the units it names (any of
them at a scope level). Problems are reported with file:line:column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cxkpi.errors import ConfigError
from cxkpi.kpi_yaml import Document, FieldReader, Problem, read_documents

MAX_GRANTS = 10_000
_FILE_KEYS = {"scopes": "the scope levels", "grants": "who may open which scopes"}
_SCOPE_KEYS = {"level": "an org level", "sees_above": "levels above it whose aggregates it shows"}
_GRANT_KEYS = {"who": "people or group:<name>", "units": "org unit ids"}


@dataclass(frozen=True)
class ScopeLevel:
    level: str
    sees_above: tuple[str, ...]  # higher levels whose aggregate values its extracts hold


@dataclass(frozen=True)
class Grant:
    who: tuple[str, ...]
    units: tuple[str, ...]
    declared_in: str  # file:line


@dataclass
class Access:
    scope_levels: list[ScopeLevel] = field(default_factory=list)
    grants: list[Grant] = field(default_factory=list)

    def level(self, name: str) -> ScopeLevel | None:
        return next((s for s in self.scope_levels if s.level == name), None)

    def units_of(self, who: str) -> list[str]:
        """The units (scopes) a person or group may open, in the order granted."""
        return list(dict.fromkeys(u for g in self.grants if who in g.who for u in g.units))


def _scope_levels(
    reader: FieldReader, value: object, org_levels: tuple[str, ...]
) -> list[ScopeLevel]:
    levels: list[ScopeLevel] = []
    for index, entry in enumerate(reader.list_of(("scopes",), value)):
        path = ("scopes", index)
        data = reader.mapping_keys(path, entry, _SCOPE_KEYS)
        level = reader.choice((*path, "level"), data.get("level"), org_levels)
        if data.get("level") is None and isinstance(entry, dict):
            reader.problem(path, "a scope needs a level", "one of " + ", ".join(org_levels))
        if level is None:
            continue
        if any(s.level == level for s in levels):
            reader.problem((*path, "level"), f"scope level {level} is listed twice")
            continue
        above = org_levels[: org_levels.index(level)]
        sees: list[str] = []
        for position, name in enumerate(
            reader.list_of((*path, "sees_above"), data.get("sees_above"))
        ):
            if name not in above:
                hint = "levels above it: " + (", ".join(above) or "none, it is the top")
                reader.problem(
                    (*path, "sees_above", position), f"{name!r} is not above {level}", hint
                )
            elif name not in sees:
                sees.append(name)
        levels.append(ScopeLevel(level, tuple(n for n in above if n in sees)))
    return levels


def _grants(doc: Document, reader: FieldReader, value: object) -> list[Grant]:
    grants: list[Grant] = []
    for index, entry in enumerate(reader.list_of(("grants",), value)):
        path = ("grants", index)
        data = reader.mapping_keys(path, entry, _GRANT_KEYS)
        who = [
            reader.text((*path, "who", i), w)
            for i, w in enumerate(reader.list_of((*path, "who"), data.get("who")))
        ]
        units = [
            reader.text((*path, "units", i), u)
            for i, u in enumerate(reader.list_of((*path, "units"), data.get("units")))
        ]
        if not who or not units:
            reader.problem(
                path, "a grant needs who (people or group:<name>) and units (org unit ids)"
            )
            continue
        line, _ = doc.at(path)
        grants.append(
            Grant(
                tuple(w for w in who if w), tuple(u for u in units if u), f"{doc.file.name}:{line}"
            )
        )
    return grants


def load_access(file: Path, org_levels: tuple[str, ...]) -> Access:
    """The access file (an empty Access when there is none), checked against the project's
    org levels; raise ConfigError naming file:line:column of every problem."""
    if not file.exists():
        return Access()
    problems: list[Problem] = []
    access = Access()
    documents = read_documents(file, problems)
    if len(documents) > 1:
        problems.append(Problem(file, documents[1].line, 1, "the access file holds one document"))
    for doc in documents[:1]:
        reader = FieldReader(doc, problems)
        data = reader.mapping_keys((), doc.data, _FILE_KEYS)
        access.scope_levels = _scope_levels(reader, data.get("scopes"), org_levels)
        access.grants = _grants(doc, reader, data.get("grants"))
        if len(access.grants) > MAX_GRANTS:
            reader.problem(("grants",), f"{len(access.grants)} grants; at most {MAX_GRANTS}")
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise ConfigError(f"{len(problems)} problem(s) in the access file:\n{lines}")
    return access


def check_units(access: Access, units: dict[str, str]) -> list[str]:
    """Problems of the grants against the org units the data holds (unit id -> level):
    an unknown unit, or one at a level that gets no extract."""
    levels = {s.level for s in access.scope_levels}
    problems = []
    for grant in access.grants:
        for unit in grant.units:
            if unit not in units:
                problems.append(f"{grant.declared_in}: unit {unit!r} is not in the org units")
            elif units[unit] not in levels:
                problems.append(
                    f"{grant.declared_in}: unit {unit!r} is at level {units[unit]}; scopes "
                    f"are published for {', '.join(sorted(levels)) or 'no level'}"
                )
    return problems
